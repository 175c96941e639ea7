"""Which node of a cluster a request goes to: the one answering fastest now, not the next in turn.

The client's default selector sends the requests to every live node in turn. On a cluster that is right
while the nodes are alike, and wrong for the minutes after a node comes back: its JVM is cold (measured on
the local three-node cluster, tests/cluster: its searches several times slower than the others' while its
compiler catches up), yet it coordinates a third of the API's searches at once, and those are the searches
that time out. The coordinating nodes' own adaptive replica selection already keeps shard requests off a
slow node; this does the same one level up, for the node a request is sent to.

The rule is the "power of two choices" on a cost of (requests in flight + 1) × the node's recent answer
time (an exponentially weighted average over time): two live nodes drawn at random, the cheaper one taken.
A node that answers slowly, or piles up requests, gets fewer of them; one request in ``PROBE_SHARE`` goes to
a node drawn at random whatever its cost, so a node avoided for being slow is measured again and gets its
share back once it is fast."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Sequence
from typing import Any

from elastic_transport import NodeSelector, Urllib3HttpNode
from elastic_transport._node._base import BaseNode, NodeApiResponse

from sas_core.es_node import StdlibHttpNode

#: Time constant (s) of the answer-time average: a sample weighs e^(-Δt/τ) less for every Δt since the last.
ANSWER_TIME_TAU_S = 2.0
#: Share of requests sent to a random live node whatever it costs (its answer time is measured again).
PROBE_SHARE = 0.05


class AnswerTimes:
    """One node's requests in flight and its recent answer time (seconds; ``None`` before any answer)."""

    __slots__ = ("_lock", "in_flight", "estimate_s", "_updated")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.in_flight = 0
        self.estimate_s: float | None = None
        self._updated = 0.0

    def started(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finished(self, seconds: float, *, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.in_flight = max(0, self.in_flight - 1)
            if self.estimate_s is None:
                self.estimate_s = seconds
            else:
                weight = math.exp(-max(0.0, now - self._updated) / ANSWER_TIME_TAU_S)
                self.estimate_s = weight * self.estimate_s + (1.0 - weight) * seconds
            self._updated = now


class MeasuredNode:
    """Mixed into a node class (before it): every request's answer time and in-flight count recorded in
    ``answer_times`` (an error's time counts too: a node failing slowly is slow)."""

    answer_times: AnswerTimes

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answer_times = AnswerTimes()

    def perform_request(self, *args: Any, **kwargs: Any) -> NodeApiResponse:
        times = self.answer_times
        times.started()
        started = time.monotonic()
        try:
            return super().perform_request(*args, **kwargs)  # type: ignore[misc]
        finally:
            times.finished(time.monotonic() - started)


class MeasuredUrllib3Node(MeasuredNode, Urllib3HttpNode):
    """The client's default node (TLS), measured."""


class MeasuredStdlibHttpNode(MeasuredNode, StdlibHttpNode):
    """The standard library's node (``sas_core.es_node``), measured."""


def node_cost(times: AnswerTimes | None, *, unmeasured_s: float) -> float:
    """(in flight + 1) × recent answer time; a node without an answer yet costs ``unmeasured_s``."""
    if times is None:
        return unmeasured_s
    estimate = unmeasured_s if times.estimate_s is None else times.estimate_s
    return (times.in_flight + 1) * estimate


class FastestOfTwoSelector(NodeSelector):
    """Two live nodes at random, the cheaper one (``node_cost``); one request in ``PROBE_SHARE`` at random."""

    def __init__(self, node_configs: list, *, probe_share: float = PROBE_SHARE,
                 rng: random.Random | None = None) -> None:
        super().__init__(node_configs)
        self.probe_share = probe_share
        self._random = rng or random.Random()

    def select(self, nodes: Sequence[BaseNode]) -> BaseNode:
        if len(nodes) == 1:
            return nodes[0]
        if self._random.random() < self.probe_share:
            return self._random.choice(nodes)
        first, second = self._random.sample(list(nodes), 2)
        times = [getattr(node, "answer_times", None) for node in (first, second)]
        measured = [t.estimate_s for t in times if t is not None and t.estimate_s is not None]
        # An unmeasured node (new, or never answered) is taken for as fast as the one it is drawn against.
        unmeasured = min(measured) if measured else 0.0
        first_cost, second_cost = (node_cost(t, unmeasured_s=unmeasured) for t in times)
        return first if first_cost <= second_cost else second
