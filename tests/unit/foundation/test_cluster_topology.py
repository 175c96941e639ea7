"""compose.yaml's ``cluster`` profile and ``sas es cluster`` describe the same cluster: node names, roles,
seed hosts, initial masters, cluster name and version (compose cannot run here; the local cluster can)."""

from __future__ import annotations

import pytest
import yaml

from sas_core.errors import ConfigurationError
from sas_core.es import make_client
from sas_core.local_cluster import LocalCluster
from sas_core.local_es import ES_VERSION
from sas_core.settings import PROJECT_ROOT, Settings


@pytest.fixture(scope="module")
def compose_nodes() -> dict[str, dict]:
    services = yaml.safe_load((PROJECT_ROOT / "compose.yaml").read_text())["services"]
    return {name: service for name, service in services.items()
            if "cluster" in (service.get("profiles") or []) and "node.name" in (service.get("environment") or {})}


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


def test_compose_cluster_and_local_cluster_have_the_same_topology(compose_nodes):
    local = LocalCluster(Settings()).topology()
    assert [n["name"] for n in local["nodes"]] == sorted(compose_nodes) == ["es01", "es02", "es03"]
    for node in local["nodes"]:
        env = compose_nodes[node["name"]]["environment"]
        assert env["node.name"] == node["name"]
        assert env["cluster.name"] == local["cluster_name"]
        assert sorted(_names(env["discovery.seed_hosts"])) == sorted(node["seed_hosts"])
        assert _names(env["cluster.initial_master_nodes"]) == local["initial_master_nodes"]
        # Neither sets node.roles: every node is master-eligible and holds data (the default roles).
        assert env.get("node.roles") == node["roles"] is None
        assert node["master_eligible"] and node["data"]
        assert compose_nodes[node["name"]]["image"].endswith(f":{local['version']}")
    assert local["version"] == ES_VERSION
    assert set(local["initial_master_nodes"]) == {n["name"] for n in local["nodes"]}


def test_the_local_cluster_keeps_off_the_single_nodes_ports():
    cluster = LocalCluster(Settings())
    ports = {n.http_port for n in cluster.nodes} | {n.transport_port for n in cluster.nodes}
    assert ports == {9221, 9222, 9223, 9321, 9322, 9323}
    with pytest.raises(ConfigurationError):
        LocalCluster(Settings(es_cluster_http_port=9199))      # es02 would take the single node's 9200


def test_the_node_count_and_ports_follow_the_settings():
    cluster = LocalCluster(Settings(es_cluster_nodes=5, es_cluster_http_port=9241, es_cluster_transport_port=9341))
    assert [n.name for n in cluster.nodes] == ["es01", "es02", "es03", "es04", "es05"]
    assert cluster.urls[-1] == "http://127.0.0.1:9245" and cluster.nodes[-1].transport_port == 9345
    assert cluster.node("es03").seeds == ("es01", "es02", "es04", "es05")


def test_the_client_is_given_every_node_of_es_urls():
    urls = LocalCluster(Settings()).urls
    client = make_client(Settings(es_urls=urls))
    assert sorted(node.base_url for node in client.transport.node_pool.all()) == urls
    # Three attempts on three nodes: a 503 from a survivor, then the lost node, then the other survivor (the
    # client hands its own ``max_retries`` to every request; the transport's default is not used).
    assert client._max_retries == 2
    single = make_client(Settings())
    assert [node.base_url for node in single.transport.node_pool.all()] == ["http://127.0.0.1:9200"]
    assert single._max_retries == 1


def test_the_local_nodes_run_the_client_compiler_only_unless_told_otherwise():
    # Three JVMs on one machine's cores: the optimising compiler's warm-up starved the others (README "Cluster").
    options = LocalCluster(Settings()).jvm_options()
    assert options["sas-heap.options"] == "-Xms512m\n-Xmx512m\n"
    assert options["sas-jit.options"] == "-XX:TieredStopAtLevel=1\n"
    assert LocalCluster(Settings(es_cluster_jit_client_only=False)).jvm_options()["sas-jit.options"] is None


def test_a_cluster_client_picks_nodes_by_answer_time_and_a_single_node_client_does_not():
    from elastic_transport import RoundRobinSelector

    from sas_core.es_selector import FastestOfTwoSelector, MeasuredNode

    urls = LocalCluster(Settings()).urls
    for stdlib_http in (False, True):
        client = make_client(Settings(es_urls=urls), stdlib_http=stdlib_http)
        assert isinstance(client.transport.node_pool.node_selector, FastestOfTwoSelector)
        assert all(isinstance(node, MeasuredNode) for node in client.transport.node_pool.all())
    single = make_client(Settings(), stdlib_http=True)
    assert isinstance(single.transport.node_pool.node_selector, RoundRobinSelector)
    assert not any(isinstance(node, MeasuredNode) for node in single.transport.node_pool.all())
