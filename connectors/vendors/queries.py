"""The three slot searches of the SAS specification, as (name, value) query parameters.

Parameters repeat (``start=ge…&start=le…``, two ``_include``), so they are lists of pairs, never dicts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from typing import Literal

from sas_core.structure_ids import STRUCTURE_SYSTEM, siret_wire

#: Identifier systems of the specification.
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"      # national practitioner ids (8 + RPPS, 0 + ADELI)
# STRUCTURE_SYSTEM (urn:oid:1.2.250.1.71.4.2.2): FINESS (1 + FINESS) / SIRET (3 + SIRET) structures.

#: Ids per request the technical tables allow (INT_R01 / INT_R04 / SOS: 1..25).
MAX_IDS_PER_REQUEST = 25
#: The functional specification sends SOS Médecins searches 1 to 10 SIRETs (the default batch).
SOS_IDS_PER_REQUEST = 10

Search = Literal["ps", "cpts", "sos"]
Params = list[tuple[str, str]]


def fhir_instant(moment: datetime, *, offset: str = "+00:00") -> str:
    """``2024-06-12T16:20:00+02:00``: seconds precision, explicit offset (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    sign = -1 if offset.startswith("-") else 1
    hours, minutes = (int(x) for x in offset[1:].split(":"))
    target = timezone(sign * timedelta(hours=hours, minutes=minutes))
    return moment.astimezone(target).isoformat(timespec="seconds")


def batches(ids: Iterable[str], size: int = MAX_IDS_PER_REQUEST) -> Iterator[list[str]]:
    """Split ``ids`` (deduplicated, order kept) into lists of at most ``size`` (≤ 25) ids."""
    if not 1 <= size <= MAX_IDS_PER_REQUEST:
        raise ValueError(f"batch size must be 1..{MAX_IDS_PER_REQUEST}")
    unique = list(dict.fromkeys(ids))
    for start in range(0, len(unique), size):
        yield unique[start:start + size]


#: Longest window the certified vendors are tested with (the SAS test kit caps ``start=le…`` at 72 h).
MAX_WINDOW_H = 72.0


def request_windows(start: datetime, end: datetime, *,
                    max_hours: float = MAX_WINDOW_H) -> list[tuple[datetime, datetime]]:
    """[start, end] as consecutive request windows of at most ``max_hours``, none overlapping: each but
    the last ends one second before the next starts (instants go out at seconds precision), so a slot is
    in exactly one of them and the answers add up (totals, no duplicates)."""
    if max_hours <= 0:
        raise ValueError("max_hours must be positive")
    step = timedelta(hours=max_hours)
    windows: list[tuple[datetime, datetime]] = []
    low = start
    while end - low > step:
        windows.append((low, low + step - timedelta(seconds=1)))
        low = low + step
    windows.append((low, end))
    return windows


def _check_ids(ids: Sequence[str]) -> None:
    if not ids:
        raise ValueError("a slot search needs at least one id")
    if len(ids) > MAX_IDS_PER_REQUEST:
        raise ValueError(f"at most {MAX_IDS_PER_REQUEST} ids per request, got {len(ids)}")


def practitioner_slot_search(
    *, national_ids: Sequence[str], start: datetime, end: datetime, with_cpts: bool = False,
    page_size: int | None = 1000, offset: str = "+00:00",
) -> Params:
    """``GET [base]/Slot?`` of INT_R01 (``with_cpts=False``) or INT_R04 (``with_cpts=True``)."""
    _check_ids(national_ids)
    params: Params = [
        ("start", "ge" + fhir_instant(start, offset=offset)),
        ("start", "le" + fhir_instant(end, offset=offset)),
        ("schedule.actor:Practitioner.identifier", ",".join(f"{RPPS_SYSTEM}|{i}" for i in national_ids)),
        ("status", "free"),
        ("_include", "Slot:schedule"),
        ("_include:iterate", "Schedule:actor"),
    ]
    if with_cpts:
        params += [
            ("_include", "Slot:service-type-reference"),
            ("_include:iterate", "HealthcareService:organization"),
        ]
    if page_size:
        params.append(("_count", str(page_size)))
    return params


def sos_schedule_search(
    *, association_ids: Sequence[str], start: datetime, end: datetime, page_size: int | None = 1000,
    offset: str = "+00:00",
) -> Params:
    """``GET [base]/Schedule?`` of the SOS Médecins search (fixed consultation places' free slots).

    ``association_ids``: SIRETs, bare (the directory's 14 digits) or already prefixed; they are sent in the
    guide's form ``urn:oid:1.2.250.1.71.4.2.2|3<SIRET>`` — a conformant vendor matches nothing else and
    answers an empty searchset to a bare SIRET.
    """
    _check_ids(association_ids)
    params: Params = [
        ("_revinclude", "Slot:schedule"),
        ("_include", "Schedule:actor:Location"),
        ("_include:iterate", "Location:organization"),
        ("_has:Slot:schedule:start", "ge" + fhir_instant(start, offset=offset)),
        ("_has:Slot:schedule:start", "le" + fhir_instant(end, offset=offset)),
        ("_has:Slot:schedule:status", "free"),
        ("actor:Location.organization.identifier",
         ",".join(f"{STRUCTURE_SYSTEM}|{siret_wire(i)}" for i in association_ids)),
    ]
    if page_size:
        params.append(("_count", str(page_size)))
    return params


def search_request(
    search: Search, *, ids: Sequence[str], start: datetime, end: datetime, page_size: int | None = 1000,
    offset: str = "+00:00",
) -> tuple[str, Params]:
    """(resource path, parameters) of ``search`` for ``ids`` over [start, end]."""
    if search == "sos":
        return "Schedule", sos_schedule_search(association_ids=ids, start=start, end=end,
                                               page_size=page_size, offset=offset)
    return "Slot", practitioner_slot_search(national_ids=ids, start=start, end=end,
                                            with_cpts=search == "cpts", page_size=page_size, offset=offset)


def split_ids(value: str, *, system: str) -> list[str]:
    """Ids of a ``system|value,system|value`` parameter (the server side of the searches); values
    given without ``system|`` are accepted, other systems are ignored."""
    ids: list[str] = []
    for token in value.split(","):
        token = token.strip()
        if not token:
            continue
        if "|" in token:
            token_system, _, token_value = token.partition("|")
            if token_system and token_system != system:
                continue
            token = token_value
        ids.append(token)
    return ids
