# Image of the platform (API, scheduler, simulator and CLI share it); used by compose.yaml.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY sas_core sas_core
COPY connectors connectors
COPY indexer indexer
COPY search_api search_api
COPY mappings mappings
COPY sas_cli sas_cli
COPY simulator simulator
# The benchmarks behind `sas bench` (their results folder comes along, 50 kB).
COPY bench bench
RUN pip install --no-cache-dir . && useradd --system sas
USER sas
ENTRYPOINT []
CMD ["sas", "serve"]
