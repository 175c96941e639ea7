"""Pure Elasticsearch bodies of the workflow: orientation and declaration listings, INT_R03 matching.

No clock, no I/O: the same inputs always give the same body (golden tests in tests/unit/workflow).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sas_core.clock import iso
from search_api.workflow.scope import Scope, declaration_scope_filter, orientation_scope_filter

MAX_PAGE_SIZE = 200
#: Deep paging through from/size is refused past this; the CSV export pages with search_after.
MAX_RESULT_WINDOW = 10_000
EXPORT_PAGE = 1000


@dataclass(frozen=True)
class OrientationFilters:
    """What a caller asked to see (on top of what it may see)."""

    territories: tuple[str, ...] = ()
    start: datetime | None = None            # period, on ``period_field``: [start, end)
    end: datetime | None = None
    period_field: Literal["created_at", "consultation_start"] = "created_at"
    statuses: tuple[str, ...] = ()
    effecteur: str | None = None             # national id
    categories: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    vendor: str | None = None


def orientation_query(scope: Scope, filters: OrientationFilters) -> dict:
    """The ``bool`` query of an orientation listing within ``scope``."""
    clauses = [
        orientation_scope_filter(scope),
        _any_of("territory", filters.territories),
        _period_range(filters),
        _any_of("status", filters.statuses),
        _equal("effecteur.national_id", filters.effecteur),
        _any_of("category", filters.categories),
        _any_of("source", filters.sources),
        _equal("vendor", filters.vendor),
    ]
    return {"bool": {"filter": [clause for clause in clauses if clause is not None]}}


def _any_of(field: str, values: tuple[str, ...]) -> dict | None:
    return {"terms": {field: sorted(set(values))}} if values else None


def _equal(field: str, value: str | None) -> dict | None:
    return {"term": {field: value}} if value else None


def _period_range(filters: OrientationFilters) -> dict | None:
    """``filters.start`` (inclusive) to ``filters.end`` (exclusive) on the chosen date field."""
    if filters.start is None and filters.end is None:
        return None
    period: dict = {}
    if filters.start is not None:
        period["gte"] = iso(filters.start)
    if filters.end is not None:
        period["lt"] = iso(filters.end)
    return {"range": {filters.period_field: period}}


#: Newest first; the id breaks ties so that pages never overlap.
ORIENTATION_SORT: list[dict] = [{"created_at": "desc"}, {"id": "asc"}]


def orientation_list_body(scope: Scope, filters: OrientationFilters, *, page: int, size: int) -> dict:
    """One page of orientations, newest first, with the total."""
    return {
        "query": orientation_query(scope, filters),
        "sort": ORIENTATION_SORT,
        "from": (page - 1) * size,
        "size": size,
        "track_total_hits": True,
    }


def orientation_export_body(scope: Scope, filters: OrientationFilters, *, after: list | None = None) -> dict:
    """One page of the CSV export (``search_after`` paging: no depth limit)."""
    body: dict = {
        "query": orientation_query(scope, filters),
        "sort": ORIENTATION_SORT,
        "size": EXPORT_PAGE,
        "track_total_hits": False,
    }
    if after is not None:
        body["search_after"] = after
    return body


# --- INT_R03 -----------------------------------------------------------------------------------------------


def by_vendor_appointment_body(*, vendor: str, system: str, value: str) -> dict:
    """The orientation already linked to this vendor appointment identifier."""
    return {
        "size": 2,
        "query": {"bool": {"filter": [
            {"term": {"vendor": vendor}},
            {"term": {"vendor_appointment_system": system}},
            {"term": {"vendor_appointment_id": value}},
        ]}},
        "sort": [{"created_at": "asc"}, {"id": "asc"}],
    }


#: A FINESS in the directory's form: 9 characters, digits, or 2A / 2B (Corsica) then 7 digits.
FINESS_RE = re.compile(r"^(?:[0-9]{2}|2[AB])[0-9]{7}$")


def cpts_offer_body(*, finess: str) -> dict:
    """The directory's CPTS of this (bare) FINESS: ``cpts-<FINESS>``, or an offer of kind ``cpts`` carrying it."""
    return {"size": 1, "_source": ["id", "name", "structure.name", "structure.finess"], "sort": [{"id": "asc"}],
            "query": {"bool": {"filter": [{"term": {"kind": "cpts"}}], "minimum_should_match": 1, "should": [
                {"ids": {"values": [f"cpts-{finess}"]}}, {"term": {"structure.finess": finess}}]}}}


def practitioner_offers_body(*, national_id: str) -> dict:
    """The offers of a practitioner (INT_R03: which vendor serves him, which SOS association he works for)."""
    return {"size": 50, "_source": ["sas.vendor", "sos.association_siret"],
            "query": {"bool": {"filter": [{"term": {"national_id": national_id}}]}}}


def future_sas_slots_body(*, offer_id: str, now: datetime) -> dict:
    """Count of the platform-agenda slots of ``offer_id`` not over at ``now`` (the per-offer cap)."""
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": [
        {"term": {"source": "sas"}}, {"term": {"offer_id": offer_id}}, {"range": {"end": {"gt": iso(now)}}}]}}}


def agenda_slots_body(*, offer_id: str, start: datetime, end: datetime) -> dict:
    """The platform-agenda slots of ``offer_id`` overlapping ``start`` → ``end``, earliest first."""
    return {"size": 1000, "sort": [{"start": "asc"}], "query": {"bool": {"filter": [
        {"term": {"source": "sas"}}, {"term": {"offer_id": offer_id}},
        {"range": {"end": {"gt": iso(start)}}}, {"range": {"start": {"lt": iso(end)}}}]}}}


def practitioner_places_body(*, national_id: str) -> dict:
    """The practice places of a practitioner, by id (his space lists them)."""
    return {"size": 20, "sort": [{"id": "asc"}], "query": {"term": {"national_id": national_id}}}


def practitioner_territories_body(*, national_id: str) -> dict:
    """A practitioner's places with their territories (a practitioner has a handful; 200 is generous)."""
    return {"size": 200, "sort": [{"id": "asc"}], "_source": ["id", "name", "territory"],
            "query": {"term": {"national_id": national_id}}}


def unfiled_unavailability_body() -> dict:
    """Practitioner-wide unavailability declared by the practitioner without territory (filed since)."""
    return {"size": 500, "sort": [{"id": "asc"}], "_source": ["id", "subject_national_id", "subject_name"],
            "query": {"bool": {"filter": [{"term": {"scope": "practitioner"}},
                                          {"term": {"declared_by_role": "effecteur"}}],
                               "must_not": [{"exists": {"field": "territory"}}]}}}


def delivery_body(*, distribution_id: str) -> dict:
    """The orientation whose latest INT_L02 message is ``distribution_id``."""
    return {"size": 1, "query": {"term": {"lrm_delivery.distribution_id": distribution_id}}}


def undelivered_body(*, states: tuple[str, ...] | frozenset[str], restriction: dict | None) -> dict:
    """Orientations whose latest INT_L02 message is in ``states``, per territory and state (within
    ``restriction``, a scope filter, when given)."""
    filters: list[dict] = [{"terms": {"lrm_delivery.state": list(states)}}]
    if restriction is not None:
        filters.append(restriction)
    return {
        "size": 0,
        "query": {"bool": {"filter": filters}},
        "aggs": {"territory": {"terms": {"field": "territory", "size": 200, "missing": "-"},
                               "aggs": {"state": {"terms": {"field": "lrm_delivery.state", "size": 10}}}}},
    }


def account_by_platform_id_body(*, platform_id: str) -> dict:
    """The regulator account vendors know by its platform UUID."""
    return {"size": 1, "query": {"term": {"platform_id": platform_id}}}


def first_offer_body(*, national_id: str) -> dict:
    """A practitioner's first place (by id)."""
    return {"size": 1, "query": {"term": {"national_id": national_id}}, "sort": [{"id": "asc"}]}


def own_doctor_offers_body(*, national_id: str) -> dict:
    """The practice places of a patient's own doctor (INT_L01: his cards come first when he has slots)."""
    return {"size": 20, "_source": ["id", "name"], "query": {"term": {"national_id": national_id}}}


def vendor_sos_association_body(*, vendor: str, sirets: list[str]) -> dict:
    """An SOS Médecins offer naming ``vendor`` of one of these associations (bare or wire SIRETs)."""
    return {"size": 1, "_source": ["id"], "query": {"bool": {"filter": [
        {"term": {"kind": "sos"}}, {"term": {"sas.vendor": vendor}}, {"terms": {"sos.association_siret": sirets}}]}}}


def operator_account_body(*, national_id: str) -> dict:
    """The account a vendor's report names by national id. Several accounts may carry it (a manager may
    pre-create one with any national id): the holder's own — the one that logged in, most recently — comes
    first, then the oldest id, so that a copy never outranks the account whose login proved the identity."""
    return {"size": 1, "query": {"term": {"national_id": national_id}},
            "sort": [{"last_login_at": {"order": "desc", "missing": "_last"}}, {"id": "asc"}]}


def vendor_practitioner_slot_body(*, vendor: str, national_id: str) -> dict:
    """A slot ``vendor`` published for practitioner ``national_id`` (its agenda is that vendor's)."""
    return {"size": 1, "_source": ["id"], "query": {"bool": {"filter": [
        {"term": {"vendor": vendor}}, {"term": {"practitioner_national_id": national_id}}]}}}


def redirect_match_body(*, vendor: str, national_id: str | None, start: datetime,
                        operator_national_id: str | None = None, operator_account_id: str | None = None) -> dict:
    """A redirect-mode orientation waiting for its vendor report: same vendor, practitioner and
    start, not linked to an appointment yet (and made by the same regulator when the report names him)."""
    filters: list[dict] = [
        {"term": {"vendor": vendor}},
        {"term": {"booking_mode": "redirect"}},
        {"term": {"consultation_start": iso(start)}},
    ]
    if national_id:
        filters.append({"term": {"effecteur.national_id": national_id}})
    if operator_national_id:
        filters.append({"term": {"regulator.national_id": operator_national_id}})
    elif operator_account_id:
        # The INTRN UUID vendors know the regulator by (regulator.id itself when the subject is a UUID).
        filters.append({"bool": {"should": [{"term": {"regulator.platform_id": operator_account_id}},
                                            {"term": {"regulator.id": operator_account_id}}],
                                 "minimum_should_match": 1}})
    return {
        "size": 1,
        "query": {"bool": {"filter": filters, "must_not": [{"exists": {"field": "vendor_appointment_id"}}]}},
        "sort": [{"created_at": "desc"}, {"id": "asc"}],
        "seq_no_primary_term": True,
    }


# --- Declarations ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeclarationFilters:
    kinds: tuple[str, ...] = ()
    active: bool | None = True
    national_id: str | None = None     # subject practitioner
    offer_id: str | None = None
    territories: tuple[str, ...] = ()
    declared_by: str | None = None


def declaration_list_body(scope: Scope, filters: DeclarationFilters, *, page: int, size: int) -> dict:
    clauses: list[dict] = []
    restriction = declaration_scope_filter(scope)
    if restriction is not None:
        clauses.append(restriction)
    if filters.kinds:
        clauses.append({"terms": {"kind": sorted(set(filters.kinds))}})
    if filters.active is not None:
        clauses.append({"term": {"active": filters.active}})
    if filters.national_id:
        clauses.append({"term": {"subject_national_id": filters.national_id}})
    if filters.offer_id:
        clauses.append({"term": {"offer_id": filters.offer_id}})
    if filters.territories:
        clauses.append({"terms": {"territory": sorted(set(filters.territories))}})
    if filters.declared_by:
        clauses.append({"term": {"declared_by": filters.declared_by}})
    return {
        "query": {"bool": {"filter": clauses}},
        "sort": [{"created_at": "desc"}, {"id": "asc"}],
        "from": (page - 1) * size,
        "size": size,
        "track_total_hits": True,
    }


def active_unavailability_body(*, offer_id: str | None, national_id: str, now: datetime) -> dict:
    """Active unavailability declarations of a practitioner (at one place, or everywhere) that are not
    over at ``now``: what the "3 periods per place" rule counts."""
    where: list[dict] = [{"term": {"national_id": national_id}}]
    if offer_id:
        where.append({"term": {"offer_id": offer_id}})
    not_over = {"nested": {"path": "periods", "query": {"bool": {"should": [
        {"bool": {"must_not": {"exists": {"field": "periods.end"}}}},
        {"range": {"periods.end": {"gt": iso(now)}}},
    ], "minimum_should_match": 1}}}}
    return {
        "size": 100,
        "query": {"bool": {"filter": [
            {"term": {"kind": "unavailable"}},
            {"term": {"active": True}},
            {"term": {"subject_national_id": national_id}},
            {"bool": {"should": where, "minimum_should_match": 1}},
            not_over,
        ]}},
    }


def reports_by_author_body(*, author: str, since: datetime) -> dict:
    """Regulators' reports filed by ``author`` since ``since`` (cancelled ones count too: filing and
    cancelling in a loop must not bypass the limit), oldest first (when the window frees a place)."""
    return {
        "size": 1,
        "sort": [{"created_at": "asc"}],
        "_source": ["created_at"],
        "track_total_hits": True,
        "query": {"bool": {"filter": [
            {"term": {"declared_by": author}},
            {"term": {"declared_by_role": "regulator"}},
            {"range": {"created_at": {"gte": iso(since)}}},
        ]}},
    }


def regulator_reports_body() -> dict:
    """Every regulator's report (active or not), in a stable order for ``DocStore.scan``."""
    return {"size": 500, "sort": [{"id": "asc"}], "_source": ["id", "offer_id", "territory", "declared_by_territories"],
            "query": {"bool": {"filter": [{"term": {"declared_by_role": "regulator"}}]}}}
