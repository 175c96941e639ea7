"""compose.yaml cannot run here (no Docker engine): check it statically."""

from __future__ import annotations

import re

import pytest
import yaml

from sas_core.local_es import ES_VERSION
from sas_core.settings import PROJECT_ROOT, Settings

COMPOSE = PROJECT_ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_expected_services(compose):
    services = compose["services"]
    for name in ("elasticsearch", "kibana", "api", "scheduler", "simulator"):
        assert name in services, name


def test_elastic_images_use_the_pinned_version(compose):
    images = [s["image"] for s in compose["services"].values() if "docker.elastic.co" in s.get("image", "")]
    assert images
    for image in images:
        assert image.endswith(f":{ES_VERSION}"), image


def test_security_is_on_for_the_compose_cluster(compose):
    env = compose["services"]["elasticsearch"]["environment"]
    assert env["xpack.security.enabled"] == "true"
    assert "ELASTIC_PASSWORD" in env


def test_every_sas_variable_exists_in_settings(compose):
    fields = {name.upper() for name in Settings.model_fields}
    seen = set()
    for service in compose["services"].values():
        env = service.get("environment") or {}
        for key in env:
            if key.startswith("SAS_"):
                seen.add(key)
                assert key[4:] in fields, f"{key} is not a Settings field"
    assert {"SAS_ES_URL", "SAS_INDEX_PREFIX", "SAS_AUTH_MODE"} <= seen


def test_dependencies_name_existing_services_and_have_healthchecks(compose):
    services = compose["services"]
    for name, service in services.items():
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency], f"{dependency} has no healthcheck"
    for name in ("elasticsearch", "kibana", "api", "simulator"):
        assert "healthcheck" in services[name]


def test_ports_are_consistent(compose):
    services = compose["services"]
    es_url = services["api"]["environment"]["SAS_ES_URL"]
    # ``${SAS_ES_URL:-default}``: the single node unless the cluster profile's es01 is chosen.
    default = re.sub(r"^\$\{SAS_ES_URL:-(.*)\}$", r"\1", es_url)
    assert default.startswith("http://elasticsearch:9200")
    api_port = services["api"]["environment"]["SAS_API_PORT"]
    assert any(p.endswith(f":{api_port}") for p in services["api"]["ports"])
    assert api_port in services["api"]["healthcheck"]["test"][1]
    sim_port = services["simulator"]["environment"]["SAS_SIMULATOR_PORT"]
    assert any(p.endswith(f":{sim_port}") for p in services["simulator"]["ports"])
    assert sim_port in services["simulator"]["healthcheck"]["test"][1]
    kibana_hosts = services["kibana"]["environment"]["ELASTICSEARCH_HOSTS"]
    assert "elasticsearch:9200" in kibana_hosts
    host_ports = [p.rsplit(":", 1)[0].split(":")[-1] for s in services.values() for p in s.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), "two services publish the same host port"


def test_commands_exist_in_the_cli(compose):
    from typer.main import get_command

    from sas_cli.main import app

    cli = get_command(app)
    for name, service in compose["services"].items():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "sas":
            group = cli
            for word in command[1:]:
                if word.startswith("-"):
                    break
                assert word in group.commands, f"{name}: `{' '.join(command)}` is not a sas command"
                group = group.commands[word]


def test_dockerfile_copies_every_package():
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    pyproject = (PROJECT_ROOT / "pyproject.toml").read_text()
    include = re.search(r'include = \[([^\]]+)\]', pyproject).group(1)
    for package in re.findall(r'"([a-z_]+)\*"', include):
        assert f"COPY {package} {package}" in dockerfile, package


# --- Profile "cluster": three Elasticsearch nodes -------------------------------------------------

CLUSTER_NODES = ("es01", "es02", "es03")


def test_default_stack_has_no_profile_and_cluster_nodes_only_run_in_their_profile(compose):
    services = compose["services"]
    for name in ("elasticsearch", "kibana", "api", "scheduler", "simulator", "setup"):
        assert "profiles" not in services[name], f"{name} must start with a plain `docker compose up`"
    for name in (*CLUSTER_NODES, "es-certs"):
        assert services[name]["profiles"] == ["cluster"], name


def test_cluster_nodes_discover_each_other_and_bootstrap_together(compose):
    services = compose["services"]
    envs = {name: services[name]["environment"] for name in CLUSTER_NODES}
    assert len({env["cluster.name"] for env in envs.values()}) == 1
    assert {env["node.name"] for env in envs.values()} == set(CLUSTER_NODES)
    for name, env in envs.items():
        assert env["node.name"] == name
        assert "discovery.type" not in env, f"{name}: single-node discovery cannot form a cluster"
        seeds = set(env["discovery.seed_hosts"].split(","))
        assert seeds == set(CLUSTER_NODES) - {name}, f"{name} seeds {seeds}"
        assert env["cluster.initial_master_nodes"].split(",") == list(CLUSTER_NODES)
        # Security on: a multi-node cluster needs transport TLS, each node with its own certificate.
        assert env["xpack.security.enabled"] == "true"
        assert env["xpack.security.transport.ssl.enabled"] == "true"
        assert env["xpack.security.transport.ssl.certificate"] == f"certs/{name}/{name}.crt"
        assert env["xpack.security.transport.ssl.key"] == f"certs/{name}/{name}.key"
        assert services[name]["depends_on"]["es-certs"]["condition"] == "service_completed_successfully"
        assert "healthcheck" in services[name]
        assert env["path.repo"]
    assert "${SAS_ES_URL:-" in services["api"]["environment"]["SAS_ES_URL"], "the platform can be pointed at es01"
    certs = services["es-certs"]["command"]
    for name in CLUSTER_NODES:
        assert name in certs, f"es-certs makes no certificate for {name}"


def test_cluster_nodes_have_their_own_data_and_share_the_snapshot_repository(compose):
    services = compose["services"]
    declared = set(compose["volumes"])
    data, snapshots = set(), set()
    for name in CLUSTER_NODES:
        volumes = {v.split(":")[1]: v.split(":")[0] for v in services[name]["volumes"]}
        data.add(volumes["/usr/share/elasticsearch/data"])
        snapshots.add(volumes[services[name]["environment"]["path.repo"]])
        assert set(volumes.values()) <= declared
    assert len(data) == 3 and len(snapshots) == 1


def test_scheduler_serves_its_harvest_metrics_inside_the_network(compose):
    scheduler = compose["services"]["scheduler"]
    port = scheduler["environment"]["SAS_SCHEDULER_METRICS_PORT"]
    assert port in scheduler["expose"]
    assert scheduler["environment"]["SAS_SCHEDULER_METRICS_HOST"] == "0.0.0.0"
    assert not any(p.endswith(f":{port}") for p in scheduler.get("ports", [])), "metrics stay off the host"
