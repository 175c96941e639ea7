"""The cluster client's node choice (``sas_core.es_selector``): the faster of two nodes drawn at random, by
(requests in flight + 1) × recent answer time, with a share of random probes."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sas_core.es_selector import ANSWER_TIME_TAU_S, AnswerTimes, FastestOfTwoSelector, node_cost


class _Node:
    def __init__(self, name: str, *, answer_s: float | None = None, in_flight: int = 0) -> None:
        self.name = name
        self.answer_times = AnswerTimes()
        self.answer_times.estimate_s = answer_s
        self.answer_times.in_flight = in_flight


def _shares(nodes: list, *, draws: int = 6000, probe_share: float = 0.0) -> Counter:
    selector = FastestOfTwoSelector([], probe_share=probe_share, rng=random.Random(7))
    return Counter(selector.select(nodes).name for _ in range(draws))


def test_the_answer_time_follows_recent_answers_over_old_ones():
    times = AnswerTimes()
    times.started()
    assert times.in_flight == 1
    times.finished(0.020, now=100.0)
    assert times.estimate_s == pytest.approx(0.020) and times.in_flight == 0
    times.started()
    times.finished(2.0, now=100.0 + ANSWER_TIME_TAU_S)        # one time constant later: weight e^-1 for the old
    assert times.estimate_s == pytest.approx(0.020 * 0.3679 + 2.0 * 0.6321, rel=1e-3)
    for step in range(1, 11):                                  # fast again for ten seconds
        times.started()
        times.finished(0.020, now=100.0 + ANSWER_TIME_TAU_S + step)
    assert times.estimate_s < 0.05


def test_a_slow_node_gets_few_requests_and_alike_nodes_share_them():
    nodes = [_Node("es01", answer_s=0.02), _Node("es02", answer_s=2.0), _Node("es03", answer_s=0.02)]
    shares = _shares(nodes)
    # es02 only wins a draw against itself, which sample() never makes: never chosen without probes.
    assert shares["es02"] == 0
    assert abs(shares["es01"] - shares["es03"]) < 0.1 * 6000
    alike = _shares([_Node(f"es0{i}", answer_s=0.03) for i in range(1, 4)])
    assert all(1700 < count < 2300 for count in alike.values()), alike


def test_requests_in_flight_count_as_cost():
    busy, idle = _Node("busy", answer_s=0.02, in_flight=9), _Node("idle", answer_s=0.05)
    assert node_cost(busy.answer_times, unmeasured_s=0) == pytest.approx(0.2)
    assert _shares([busy, idle], draws=100) == Counter({"idle": 100})


def test_probes_keep_measuring_an_avoided_node():
    nodes = [_Node("es01", answer_s=0.02), _Node("es02", answer_s=2.0), _Node("es03", answer_s=0.02)]
    probed = _shares(nodes, draws=20000, probe_share=0.05)["es02"]
    assert 20000 * 0.05 / 3 * 0.7 < probed < 20000 * 0.05 / 3 * 1.3      # a third of the 5 % random picks


def test_a_node_without_answers_is_taken_for_as_fast_as_the_other():
    fresh, known = _Node("fresh"), _Node("known", answer_s=0.04)
    shares = _shares([fresh, known], draws=1000)
    # Equal costs: the first of the pair drawn wins, so each about half.
    assert 400 < shares["fresh"] < 600
    assert set(_shares([_Node("a"), _Node("b")], draws=50)) == {"a", "b"}
    assert FastestOfTwoSelector([]).select([known]) is known


def test_a_measured_node_records_answers_and_failures():
    from sas_core.es_selector import MeasuredNode

    class _Answering:
        def __init__(self, fail: bool) -> None:
            self.fail = fail

        def perform_request(self, *args, **kwargs):
            if self.fail:
                raise ConnectionError("refused")
            return "answer"

    class _Node(MeasuredNode, _Answering):
        pass

    node = _Node(False)
    assert node.perform_request("GET", "/") == "answer"
    assert node.answer_times.in_flight == 0 and node.answer_times.estimate_s is not None
    failing = _Node(True)
    with pytest.raises(ConnectionError):
        failing.perform_request("GET", "/")
    assert failing.answer_times.in_flight == 0 and failing.answer_times.estimate_s is not None
