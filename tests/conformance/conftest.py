"""Shared by the certification suite: the guide's own examples as JSON fixtures (``fixtures/``)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def guide_example(name: str) -> dict:
    """A fresh copy of ``fixtures/<name>`` (hand-written from the guide's ``input/fsh/examples/**``)."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


@pytest.fixture
def example():
    """``example("bundle_sos.json")`` → a copy of that guide example, free to mutate."""
    return guide_example
