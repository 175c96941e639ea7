"""The pure parts of ``sas bench search``: percentiles, the query mix, the vendor latency layer."""

from __future__ import annotations

import asyncio
from collections import Counter

import orjson
import pytest

from bench.common import percentile
from bench.search.latency import LogNormalLatency
from bench.search.mix import build_query_mix, mix_fingerprint
from bench.search.report import markdown_table, summarize
from connectors.reference import load_communes
from sas_core.settings import Settings


def test_percentile_interpolates_like_numpy():
    values = [float(v) for v in range(1, 101)]          # 1 … 100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile([3.0], 99) == 3.0
    assert percentile([5.0, 1.0], 50) == 3.0


def test_summary_in_milliseconds_and_queries_per_second():
    summary = summarize([0.010, 0.020, 0.030, 0.040], wall_s=2.0, errors=1)
    assert summary["p50_ms"] == 25.0 and summary["n"] == 4 and summary["errors"] == 1
    assert summary["qps"] == 2.0 and summary["max_ms"] == 40.0


@pytest.fixture(scope="module")
def communes():
    return load_communes(Settings().reference_data_dir)


def test_query_mix_is_fixed_population_weighted_and_mostly_general_practice(communes):
    mix = build_query_mix(communes=communes, other_specialties={"SM40": 3, "SM15": 1}, n=4000, seed=7)
    again = build_query_mix(communes=communes, other_specialties={"SM40": 3, "SM15": 1}, n=4000, seed=7)
    assert mix_fingerprint(mix) == mix_fingerprint(again)
    assert mix_fingerprint(mix) != mix_fingerprint(build_query_mix(communes=communes, other_specialties={"SM40": 1},
                                                                   n=4000, seed=8))
    specialties = Counter(q.specialty for q in mix)
    assert 0.67 < specialties["SM54"] / len(mix) < 0.73
    assert specialties["SM40"] > specialties["SM15"] > 0
    # Paris (2.1 M inhabitants) is drawn far more often than a village.
    places = Counter(q.insee for q in mix)
    assert places["75056"] > 50
    assert all(dict(q.params).keys() & {"q", "insee"} for q in mix)
    assert all(q.path().startswith("/v1/search?") for q in mix)


def test_lognormal_latency_has_the_documented_median_and_95th_percentile():
    layer = LogNormalLatency(app=None, p50_ms=250.0, p95_ms=1500.0, seed=3)
    draws = sorted(layer.delay_s() * 1000 for _ in range(40000))
    assert percentile(draws, 50) == pytest.approx(250.0, rel=0.04)
    assert percentile(draws, 95) == pytest.approx(1500.0, rel=0.06)


def test_latency_layer_delays_only_vendor_requests():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["path"])

    layer = LogNormalLatency(app, p50_ms=1.0, p95_ms=2.0, seed=1)
    layer.delay_s = lambda: 0.0   # the delay itself is measured above
    asyncio.run(layer({"type": "http", "path": "/_admin/healthz"}, None, None))
    asyncio.run(layer({"type": "http", "path": "/v/fhir/Slot"}, None, None))
    assert seen == ["/_admin/healthz", "/v/fhir/Slot"]


def test_markdown_table_lists_the_three_paths():
    row = {"p50_ms": 1, "p95_ms": 2, "p99_ms": 3, "qps": 4, "errors": 0}
    table = markdown_table({"api": row, "raw_es": row, "fanout": row})
    assert table.count("\n") == 4 and "fan-out" in table and "Elasticsearch alone" in table


def test_the_replay_turns_the_shard_request_cache_off_and_keeps_the_bodies():
    from bench.search.capture import RecordedRequest, uncached

    bodies = [{"size": 0, "aggs": {"cards": {"terms": {"field": "offer_id"}}}},
              {"size": 20, "query": {"ids": {"values": ["a"]}}}]
    ndjson = b"".join(orjson.dumps(line) + b"\n" for body in bodies for line in ({"index": "p-slots"}, body))
    replayed = uncached(RecordedRequest(method="POST", path="/_msearch?filter_path=responses.hits", body=ndjson,
                                        content_type="application/x-ndjson"))
    lines = [orjson.loads(line) for line in replayed.body.splitlines()]
    assert lines[0::2] == [{"index": "p-slots", "request_cache": False}] * 2
    assert lines[1::2] == bodies and replayed.body.endswith(b"\n")
    assert replayed.path == "/_msearch?filter_path=responses.hits" and replayed.content_type == "application/x-ndjson"

    search = uncached(RecordedRequest(method="POST", path="/p-slots/_search?filter_path=hits", body=b"{}",
                                      content_type="application/json"))
    assert search.path == "/p-slots/_search?filter_path=hits&request_cache=false" and search.body == b"{}"
    assert uncached(RecordedRequest(method="POST", path="/p-slots/_search", body=None,
                                    content_type=None)).path == "/p-slots/_search?request_cache=false"
    other = RecordedRequest(method="GET", path="/p-offers/_doc/x", body=None, content_type=None)
    assert uncached(other) is other
