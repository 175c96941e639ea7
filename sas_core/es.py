"""Building the Elasticsearch client from settings (the only place that knows credentials)."""

from __future__ import annotations

from elasticsearch import Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from sas_core.es_node import StdlibHttpNode
from sas_core.es_selector import FastestOfTwoSelector, MeasuredStdlibHttpNode, MeasuredUrllib3Node
from sas_core.settings import ElasticsearchSettings


def make_client(settings: ElasticsearchSettings, *, request_timeout: float | None = None,
                connections_per_node: int | None = None, stdlib_http: bool = False) -> Elasticsearch:
    """A client for ``settings.es_urls`` (else ``es_url``) with the configured credentials / API key / CA bundle.
    ``connections_per_node``: pooled connections (the client's default is 10). ``stdlib_http``: requests
    through ``http.client`` (``sas_core.es_node``: less CPU per request) when every URL is plain http."""
    hosts = list(settings.es_urls) or [settings.es_url]
    kwargs: dict = {
        "request_timeout": request_timeout or settings.es_request_timeout_s,
        "retry_on_timeout": False,
        # One retry on one node; on a cluster, as many attempts as nodes: a request answered 503 by a node
        # whose shard copy is being promoted must not spend its only retry on the node just lost (seen in
        # tests/cluster: 503 from a survivor, then connection refused by the dead node, and the harvest failed).
        "max_retries": max(1, len(hosts) - 1),
        # orjson (pinned) decodes answers several times faster than the json module: search answers
        # carry tens of kilobytes, and decoding them was a fifth of the API's CPU time.
        "serializer": OrjsonSerializer(),
    }
    if connections_per_node:
        kwargs["connections_per_node"] = connections_per_node
    stdlib = stdlib_http and all(host.startswith("http://") for host in hosts)
    if len(hosts) > 1:
        # A cluster: each request to the node answering fastest now (a node just back, cold, gets fewer).
        kwargs["node_class"] = MeasuredStdlibHttpNode if stdlib else MeasuredUrllib3Node
        kwargs["node_selector_class"] = FastestOfTwoSelector
    elif stdlib:
        kwargs["node_class"] = StdlibHttpNode
    if settings.es_api_key is not None:
        kwargs["api_key"] = settings.es_api_key.get_secret_value()
    elif settings.es_username:
        password = settings.es_password.get_secret_value() if settings.es_password else ""
        kwargs["basic_auth"] = (settings.es_username, password)
    if any(host.startswith("https") for host in hosts):
        if settings.es_ca_certs:
            kwargs["ca_certs"] = str(settings.es_ca_certs)
        kwargs["verify_certs"] = settings.es_verify_certs
    return Elasticsearch(hosts, **kwargs)
