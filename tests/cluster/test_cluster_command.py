"""``sas es cluster``: ``start`` on a running cluster changes nothing, ``status`` reports every node and the
elected master (the session's cluster, reached through the same ``SAS_ES_CLUSTER_*`` variables)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sas_cli.main import app


@pytest.mark.timeout(120)
def test_start_is_a_no_op_on_a_running_cluster_and_status_reports_every_node(cluster):
    env = {"SAS_ES_CLUSTER_HOME": str(cluster.home), "COLUMNS": "200"}
    pids = {node.name: cluster.pid(node.name) for node in cluster.nodes}
    assert all(pids.values()), pids
    runner = CliRunner()
    started = runner.invoke(app, ["es", "cluster", "start", "--nodes", "3"], env=env)
    assert started.exit_code == 0, started.output
    assert "already running" in started.output
    assert {node.name: cluster.pid(node.name) for node in cluster.nodes} == pids
    status = runner.invoke(app, ["es", "cluster", "status"], env=env)
    assert status.exit_code == 0, status.output
    master = cluster.master()
    assert master is not None
    for node in cluster.nodes:
        assert node.name in status.output and str(pids[node.name]) in status.output
    assert f"green, 3 nodes, master {master}" in status.output
