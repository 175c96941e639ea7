"""Golden JSON of every Elasticsearch body the workflow builds, and the territory rules inside them.

Regenerate after a deliberate change: ``SAS_REGEN_GOLDEN=1 pytest tests/unit/workflow`` (then read the diff).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from sas_core.errors import Forbidden
from search_api.auth import Principal, Role
from search_api.workflow import dashboards, queries
from search_api.workflow.scope import Scope, scope_for, sees_orientation

GOLDEN = Path(__file__).with_name("golden")
T0 = datetime(2025, 6, 1, tzinfo=timezone.utc)
T1 = datetime(2025, 7, 1, tzinfo=timezone.utc)
REGULATOR = Scope(territories=frozenset({"SAS-47", "SAS-33"}))
EFFECTEUR = Scope(national_id="810100050075")
ADMIN = Scope(everything=True)


def golden(name: str, body: dict) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("SAS_REGEN_GOLDEN") or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: regenerate deliberately"


FILTERS = queries.OrientationFilters(territories=("SAS-47",), start=T0, end=T1, statuses=("booked", "cancelled"),
                                     effecteur="810100050075", categories=("PS",))

CASES = {
    "orientations_regulator": lambda: queries.orientation_list_body(REGULATOR, FILTERS, page=2, size=20),
    "orientations_effecteur": lambda: queries.orientation_list_body(EFFECTEUR, queries.OrientationFilters(), page=1,
                                                                    size=50),
    "orientations_admin_export": lambda: queries.orientation_export_body(ADMIN, queries.OrientationFilters(
        start=T0, period_field="consultation_start"), after=["2025-06-02T10:00:00Z", "abc"]),
    "r03_by_identifier": lambda: queries.by_vendor_appointment_body(vendor="acme", system="urn:oid:1.1", value="x"),
    "r03_redirect_match": lambda: queries.redirect_match_body(vendor="acme", national_id="810100050075", start=T0,
                                                              operator_national_id="3456780581/11242343"),
    # issue 15, point 6: which vendor serves a practitioner; point 7: the directory's CPTS of a FINESS
    "r03_operator_account": lambda: queries.operator_account_body(national_id="3456780581/11242343"),
    "r03_practitioner_offers": lambda: queries.practitioner_offers_body(national_id="810100050075"),
    "r03_vendor_sos_association": lambda: queries.vendor_sos_association_body(
        vendor="acme", sirets=["42000000100017", "342000000100017"]),
    "r03_vendor_practitioner_slot": lambda: queries.vendor_practitioner_slot_body(vendor="acme",
                                                                               national_id="810100050075"),
    "participation_cpts_offer": lambda: queries.cpts_offer_body(finess="330012345"),
    "declarations_regulator": lambda: queries.declaration_list_body(REGULATOR, queries.DeclarationFilters(
        kinds=("unavailable",), national_id="810100050075"), page=1, size=50),
    "declarations_active_unavailability": lambda: queries.active_unavailability_body(
        offer_id="rpps-810100050075-1", national_id="810100050075", now=T0),
    "dashboard_orientations": lambda: dashboards.orientations_body(REGULATOR, start=T0, end=T1),
    "dashboard_participation": lambda: dashboards.participation_body(REGULATOR, territories=("SAS-47",)),
    "dashboard_declarations": lambda: dashboards.declarations_body(ADMIN, start=T0, end=T1, territories=("SAS-92",)),
    "dashboard_harvest_runs": lambda: dashboards.harvest_runs_body(since=T0),
    "dashboard_vendor_slots": lambda: dashboards.vendor_slots_body(now=T1, stale_after_s=900),
    # The platform's own agenda, the practitioner's places, the INT_L01 own doctor.
    "agenda_future_sas_slots": lambda: queries.future_sas_slots_body(offer_id="ps-810100050075-1", now=T0),
    "agenda_slots": lambda: queries.agenda_slots_body(offer_id="ps-810100050075-1", start=T0, end=T1),
    "practitioner_places": lambda: queries.practitioner_places_body(national_id="810100050075"),
    "practitioner_territories": lambda: queries.practitioner_territories_body(national_id="810100050075"),
    "practitioner_first_offer": lambda: queries.first_offer_body(national_id="810100050075"),
    "contextual_own_doctor_offers": lambda: queries.own_doctor_offers_body(national_id="810100050075"),
    "declarations_unfiled_unavailability": lambda: queries.unfiled_unavailability_body(),
    # INT_L02 deliveries and INT_R03 accounts.
    "lrm_delivery": lambda: queries.delivery_body(distribution_id="fr.health.samu470_abc"),
    "lrm_undelivered": lambda: queries.undelivered_body(states=("held", "queued", "published", "refused"),
                                                        restriction={"terms": {"territory": ["SAS-47"]}}),
    "r03_account_by_platform_id": lambda: queries.account_by_platform_id_body(
        platform_id="7d3b2d4e-0000-4000-8000-000000000001"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    golden(name, CASES[name]())


def test_bodies_are_deterministic():
    for build in CASES.values():
        assert build() == build()


def test_regulator_sees_only_his_territories():
    body = queries.orientation_list_body(REGULATOR, queries.OrientationFilters(), page=1, size=10)
    restriction = body["query"]["bool"]["filter"][0]
    assert restriction == {"bool": {"should": [{"terms": {"territory": ["SAS-33", "SAS-47"]}}],
                                    "minimum_should_match": 1}}


def test_effecteur_sees_only_his_own():
    body = queries.orientation_list_body(EFFECTEUR, queries.OrientationFilters(), page=1, size=10)
    assert body["query"]["bool"]["filter"][0]["bool"]["should"] == [
        {"term": {"effecteur.national_id": "810100050075"}}]


def test_admin_has_no_restriction():
    body = queries.orientation_list_body(ADMIN, queries.OrientationFilters(), page=1, size=10)
    assert body["query"]["bool"]["filter"] == []


def test_scope_from_roles():
    regulator = Principal(sub="u1", roles=frozenset({Role.REGULATOR}), territories=frozenset({"SAS-47"}))
    assert scope_for(regulator) == Scope(territories=frozenset({"SAS-47"}))
    effecteur = Principal(sub="u2", roles=frozenset({Role.EFFECTEUR}), national_id="810100050075")
    assert scope_for(effecteur) == Scope(national_id="810100050075")
    assert scope_for(Principal(sub="a", roles=frozenset({Role.ADMIN}))).everything
    with pytest.raises(Forbidden):
        scope_for(Principal(sub="u3", roles=frozenset({Role.REGULATOR})))
    with pytest.raises(Forbidden):
        scope_for(Principal(sub="u4", roles=frozenset({Role.INTEGRATOR}), territories=frozenset({"SAS-47"})))


def test_sees_orientation_matches_the_filter():
    doc = {"territory": "SAS-47", "effecteur": {"national_id": "810100050075"}}
    assert sees_orientation(REGULATOR, doc) and sees_orientation(EFFECTEUR, doc) and sees_orientation(ADMIN, doc)
    assert not sees_orientation(Scope(territories=frozenset({"SAS-92"})), doc)
    assert not sees_orientation(Scope(national_id="810002673899"), doc)


def test_dashboard_participation_never_widens_a_regulator():
    body = dashboards.participation_body(REGULATOR, territories=("SAS-92",))
    assert {"terms": {"territory": ["-none-"]}} in body["query"]["bool"]["filter"]


def test_vendor_health_shaping():
    runs = {"aggregations": {"vendor": {"buckets": [{
        "key": "acme", "doc_count": 4, "failed": {"doc_count": 1}, "partial": {"doc_count": 1},
        "last_run": {"value": 1.0, "value_as_string": "2025-07-01T00:00:00.000Z"},
        "last_success": {"doc_count": 2, "at": {"value": 1.0, "value_as_string": "2025-06-30T23:50:00.000Z"}},
        "requests": {"value": 40.0}, "rejected": {"value": 3.0}}]}}}
    slots = {"aggregations": {"vendor": {"buckets": [
        {"key": "acme", "doc_count": 100, "served": {"doc_count": 90}, "stale": {"doc_count": 5},
         "oldest_stale": {"value": None}, "last_write": {"value": 1.0, "value_as_string": "2025-06-30T23:55:00.000Z"}},
        {"key": "nova", "doc_count": 7, "served": {"doc_count": 0}, "stale": {"doc_count": 7},
         "oldest_stale": {"value": 1.0, "value_as_string": "2025-06-29T00:00:00.000Z"}, "last_write": {"value": None}},
    ]}}}
    rows = dashboards.shape_vendor_health(runs, slots, now=T1, stale_after_s=900)
    acme, nova = rows
    assert acme["error_rate"] == 0.5 and acme["slots_served"] == 90 and acme["staleness_s"] == 600.0
    assert acme["stale"] is False
    assert nova["runs"] == 0 and nova["stale"] is True and nova["staleness_s"] is None and nova["slots_stale"] == 7
    assert acme["deletions_held"] == 0 and acme["alerts"] == [] and nova["deletions_held"] == 0
    # Issue 17 (8): a stale vendor is down; no run reported an error here.
    assert (acme["down"], nova["down"]) == (False, True) and acme["last_error"] is None


def test_vendor_health_down_with_the_last_error():
    latest = {"hits": {"hits": [{"_source": {"status": "failed"}}]}}
    failure = {"doc_count": 2, "run": {"hits": {"hits": [{"_source": {
        "status": "failed", "started_at": "2025-06-30T23:59:00Z", "errors": ["HTTP 503", "HTTP 502"]}}]}}}
    runs = {"aggregations": {"vendor": {"buckets": [{
        "key": "acme", "doc_count": 3, "failed": {"doc_count": 2}, "partial": {"doc_count": 0},
        "last_run": {"value": 1.0, "value_as_string": "2025-06-30T23:59:00.000Z"},
        "last_success": {"doc_count": 1, "at": {"value": 1.0, "value_as_string": "2025-06-30T23:58:00.000Z"}},
        "requests": {"value": 4.0}, "rejected": {"value": 0.0}, "latest": latest, "last_failure": failure}]}}}
    [row] = dashboards.shape_vendor_health(runs, {}, now=T1, stale_after_s=900)
    assert row["stale"] is False and row["down"] is True and row["last_status"] == "failed"
    assert (row["last_error"], row["last_error_at"]) == ("HTTP 503", "2025-06-30T23:59:00Z")


def test_vendor_health_carries_the_mass_deletion_alert_of_the_latest_run():
    latest = {"hits": {"hits": [{"_source": {"status": "partial", "deletions_held": 907,
                                             "alerts": ["batch_mass_deletion"]}}]}}
    runs = {"aggregations": {"vendor": {"buckets": [{
        "key": "acme", "doc_count": 1, "failed": {"doc_count": 0}, "partial": {"doc_count": 1},
        "last_run": {"value": 1.0, "value_as_string": "2025-07-01T00:00:00.000Z"},
        "last_success": {"doc_count": 0, "at": {"value": None}}, "requests": {"value": 4.0},
        "rejected": {"value": 0.0}, "latest": latest}]}}}
    [row] = dashboards.shape_vendor_health(runs, {}, now=T1, stale_after_s=900)
    assert row["deletions_held"] == 907 and row["alerts"] == ["batch_mass_deletion"]
    assert dashboards.latest_runs(runs) == {"acme": latest["hits"]["hits"][0]["_source"]}
    assert dashboards.latest_harvest_runs_body()["aggs"]["vendor"]["aggs"]["latest"] == dashboards.LATEST_RUN_AGG


def test_finess_form_of_the_participation_page():
    # 9 characters: digits, or Corsica's 2A / 2B then 7 digits (issue 15, point 7)
    assert all(queries.FINESS_RE.match(f) for f in ("330012345", "2A0001234", "2B0001234"))
    assert not any(queries.FINESS_RE.match(f) for f in ("12", "3300123456", "1330012345", "2C0001234", "33001234x"))
