"""Every simulated vendor, not only the certified-style one: ``sas simulate vendors`` gives each vendor a
style of its own (``simulator.agenda.VendorStyle.for_vendor``), and each poses as a certified vendor, so each
must pass what the kit checks on every answer."""

from __future__ import annotations

import re
from datetime import datetime

import pytest

from bench.common import free_port
from simulator.agenda import VendorStyle
from simulator.app import Simulator
from simulator.roster import rosters_from_offers
from simulator.server import SimulatorThread
from tests.conformance import profiles as p
from tests.conformance.slots.conftest import IN_CPTS, SINGLE, SOS_LORIENT, SOS_RENNES, VENDOR, Bed, certification_offers

KIT_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
#: Every instant style the simulator gives its vendors (derived from their names), whatever they are.
STYLES = sorted({VendorStyle.for_vendor(f"style-{n}").instant for n in range(200)})


def _vendor_named_for(style: str) -> str:
    """The first vendor name ``sas simulate vendors`` would serve in ``style`` (styles derive from names)."""
    return next(f"style-{n}" for n in range(1000) if VendorStyle.for_vendor(f"style-{n}").instant == style)


@pytest.fixture(scope="module")
def styled():
    port = free_port()
    roster = rosters_from_offers(certification_offers())[VENDOR]
    names = {style: _vendor_named_for(style) for style in STYLES}
    simulator = Simulator({name: roster for name in names.values()}, public_url=f"http://127.0.0.1:{port}",
                          taken_share=0.0)
    thread = SimulatorThread(simulator, port=port).start()
    beds = {}
    for style, name in names.items():
        bed = Bed(thread)
        bed.base = f"http://127.0.0.1:{port}/{name}/fhir"
        beds[style] = bed
    try:
        yield beds
    finally:
        thread.stop()


def _answers(bed):
    return [("ps", p.SLOT_PS, bed.slots([SINGLE], cpts=False)), ("cpts", p.SLOT_CPTS, bed.slots([IN_CPTS], cpts=True)),
            ("sos", p.SLOT_SOS, bed.sos(["3" + SOS_RENNES, "3" + SOS_LORIENT]))]


@pytest.mark.parametrize("style", STYLES)
def test_validate_dates_every_vendor_style(styled, style):
    """validate_dates (kit single_practitioner_single_location_tests/ps_validate_dates_test.rb): start and end
    written AAAA-MM-DDTHH:MM:SS.000±hh:mm (milliseconds and a numeric offset), in the window, start < end."""
    for use_case, slot_profile, answer in _answers(styled[style]):
        slots = answer.by_profile(slot_profile)
        assert slots, use_case
        bad = [s["start"] for s in slots if not KIT_INSTANT.match(s["start"]) or not KIT_INSTANT.match(s["end"])]
        assert not bad, f"{use_case}: {len(bad)} slots like {bad[:2]}"
        for slot in slots:
            start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
            assert answer.sent_at <= start < end


@pytest.mark.parametrize("style", STYLES)
def test_slot_group_validate_bundle_every_vendor_style(styled, style):
    """slot_group validator: every vendor's INT_R01, INT_R04 and SOS answers validate against the guide's
    Bundle profiles (input/fsh/profiles/**)."""
    for use_case, _, answer in _answers(styled[style]):
        issues = p.check_bundle(answer.body, use_case)
        assert issues == [], f"{use_case}:\n" + "\n".join(issues[:20])
