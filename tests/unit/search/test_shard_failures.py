"""A search answer missing shards: refused, and tried once more when the shards' node left the cluster."""

from __future__ import annotations

import pytest

from sas_core.errors import BackendUnavailable
from search_api.executor import ShardsOnLostNode, _again_if_a_node_was_lost, check_search_response


def _answer(failure_reason: dict, status: int = 500) -> dict:
    # The shape Elasticsearch 8 gives a search whose fetch phase lost a node (seen in tests/cluster).
    return {"timed_out": False, "_shards": {"total": 3, "successful": 2, "skipped": 0, "failed": 1, "failures": [
        {"shard": 1, "index": "p-slots-v4", "node": "x1", "status": status, "reason": failure_reason}]},
        "hits": {"hits": []}}


def test_shards_on_a_lost_node_are_told_apart():
    lost = {"type": "send_request_transport_exception", "reason": "[es02][127.0.0.1:9322][indices:data/read/search]",
            "caused_by": {"type": "node_not_connected_exception", "reason": "[es02] Node not connected"}}
    with pytest.raises(ShardsOnLostNode):
        check_search_response(_answer(lost))
    wrapped = {"type": "transport_exception", "reason": "failure",
               "caused_by": {"type": "node_disconnected_exception", "reason": "[es03] disconnected"}}
    with pytest.raises(ShardsOnLostNode):
        check_search_response(_answer(wrapped))


def test_other_shard_failures_stay_plain_errors():
    overloaded = {"type": "es_rejected_execution_exception", "reason": "rejected execution"}
    with pytest.raises(BackendUnavailable) as raised:
        check_search_response(_answer(overloaded, status=429))
    assert not isinstance(raised.value, ShardsOnLostNode)


def test_a_lost_node_gets_exactly_one_more_attempt():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) == 1:
            raise ShardsOnLostNode("1 of 3 shards failed")
        return "answer"

    assert _again_if_a_node_was_lost(flaky) == "answer" and len(calls) == 2

    def always_lost():
        calls.append(1)
        raise ShardsOnLostNode("1 of 3 shards failed")

    calls.clear()
    with pytest.raises(ShardsOnLostNode):
        _again_if_a_node_was_lost(always_lost)
    assert len(calls) == 2

    def overloaded():
        calls.append(1)
        raise BackendUnavailable("overloaded")

    calls.clear()
    with pytest.raises(BackendUnavailable):
        _again_if_a_node_was_lost(overloaded)
    assert len(calls) == 1
