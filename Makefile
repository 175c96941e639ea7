# One command runs the platform (`make run`), one command passes the tests (`make test`).
# Both install everything they need from nothing: the virtual environment, the project, and a real
# local Elasticsearch fetched through Maven and run as an unprivileged user.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: install es es-stop services setup demo run test test-unit test-integration test-cluster lint clean browser proxy web-assets

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $(STAMP)

install: $(STAMP)

es: install
	$(BIN)/sas es start

es-stop: install
	$(BIN)/sas es stop

# Creates what is missing, then moves existing aliases to the current mapping versions (a checkout
# updated over an earlier `make run` keeps its data; nothing else writes while this runs).
setup: es
	$(BIN)/sas setup
	$(BIN)/sas migrate

demo: setup
	$(BIN)/sas demo load

run: demo
	$(BIN)/sas run

# Local services the integration tests talk to (RabbitMQ for INT_L02), installed and started if missing.
services:
	bash scripts/rabbitmq.sh

# Debian's Chromium for the browser tests (Playwright drives it; its own browser download is not used).
browser:
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)

# Debian's HAProxy for `sas proxy` in front of several API replicas (tests/cluster/test_replicas.py).
proxy:
	test -x /usr/sbin/haproxy || (apt-get update && apt-get install -y haproxy)

# Front-end assets: re-vendor search_api/static/vendor/ from web/package-lock.json (files are committed).
web-assets:
	bash scripts/vendor_web_assets.sh

test: lint es services browser proxy
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The rules of ARCHITECTURE.md as import contracts, then style and types (configured in pyproject.toml);
# `make test` runs it first, so CI holds the line.
lint: install
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/mypy

test-unit: install
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: es services
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

# The three-node cluster suite alone (`make test` runs it too): it starts its own cluster on 9221-9223.
test-cluster: install
	$(BIN)/python -m pytest tests/cluster $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache
