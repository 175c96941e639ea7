"""FHIR search bundles of the SAS specification → normalised slot records.

Tolerant by design, because real vendors are: entries are classified by ``resourceType`` (never by
``search.mode``), references are resolved whether contained (``#id``), relative (``Type/id``), absolute
(``https://…/Type/id``) or by identifier; instants may end in ``Z``, ``+00:00`` or ``+02:00``; a
specialty may be a coding or a text only; a slot may carry several types and modes. One bad resource
never drops the bundle: it is skipped and counted under a reason; doubtful but usable values are kept
and counted as flags (e.g. a national id whose check digit is wrong — the specification's own examples
carry such ids).

Plain dictionaries are parsed instead of a FHIR model library on purpose: strict models refuse a whole
bundle for one vendor quirk, and validating every element would cost more CPU than the harvest
throughput target allows.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from connectors.directory.ids import check_adeli, check_rpps
from connectors.vendors.queries import RPPS_SYSTEM, STRUCTURE_SYSTEM
from sas_core.structure_ids import finess_bare, siret_bare
from sas_core.text import fold

SLOT_TYPE_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
APPOINTMENT_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-0276"
SPECIALTY_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
CATEGORY_SYSTEM = "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
SERVICE_TYPE_EXTENSION = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
CPTS_CATEGORY = "604"

SLOT_TYPES = ("PUBLIC", "PRO", "SNP", "CPTS")
MODES = ("AMB", "HH", "VR")
PARIS = ZoneInfo("Europe/Paris")

_DAY_LABELS = {"mon": "lun", "tue": "mar", "wed": "mer", "thu": "jeu", "fri": "ven", "sat": "sam", "sun": "dim"}
_DAY_ORDER = list(_DAY_LABELS)


@dataclass(slots=True)
class Place:
    """Where the slot takes place, as the vendor describes it (no coordinates: never sent)."""

    name: str | None = None
    line: str | None = None
    postcode: str | None = None
    city: str | None = None
    phone: str | None = None
    vendor_location_id: str | None = None
    structure_id: str | None = None


@dataclass(slots=True)
class SlotRecord:
    """One free slot, normalised; ``vendor:resource_id`` is its stable identity."""

    vendor: str
    resource_id: str
    search: str                              # ps | cpts | sos
    roster_key: str                          # the id asked for: national id, or SOS association SIRET
    start: datetime                          # aware, UTC
    end: datetime
    #: ``start`` / ``end`` as ISO text (``…+00:00``), when the mapper has it: formatting an aware datetime costs
    #: about 2 µs, twice per slot; the mapper reads each distinct instant once (``_read_instant``).
    start_text: str | None = None
    end_text: str | None = None
    practitioner_national_id: str | None = None
    national_id_check_ok: bool = True
    practitioner_family: str | None = None
    practitioner_given: str | None = None
    place: Place = field(default_factory=Place)
    types: list[str] = field(default_factory=list)
    modes: list[str] = field(default_factory=list)
    motive: str | None = None
    specialties: list[str] = field(default_factory=list)
    specialty_texts: list[str] = field(default_factory=list)
    bookable: bool = True
    booking_url: str | None = None
    cpts: list[dict[str, str | None]] = field(default_factory=list)
    sos: dict[str, str | None] | None = None
    #: Hash of what the vendor sent for this slot (the Slot, its Schedule graph, its CPTS).
    source_hash: str | None = None

    @property
    def id(self) -> str:
        return f"{self.vendor}:{self.resource_id}"


@dataclass
class MappingResult:
    """Records of one bundle (or page), with skipped resources and flags counted by reason."""

    records: list[SlotRecord] = field(default_factory=list)
    rejected: Counter = field(default_factory=Counter)
    flags: Counter = field(default_factory=Counter)
    slots_seen: int = 0
    #: Resource ids of slots whose source is the one already known (``known_sources``): not mapped again.
    unchanged: list[str] = field(default_factory=list)

    def extend(self, other: MappingResult) -> None:
        self.records.extend(other.records)
        self.rejected.update(other.rejected)
        self.flags.update(other.flags)
        self.slots_seen += other.slots_seen
        self.unchanged.extend(other.unchanged)


class BundleError(ValueError):
    """The response is not a searchset Bundle at all: the whole answer is unusable (not a truth)."""


def rpps_check_ok(national_id: str | None) -> bool:
    """Whether a national id is well formed: ``8`` + 11-digit RPPS with a valid Luhn key, or ``0`` +
    ADELI (shape only)."""
    if not national_id:
        return False
    if national_id[0] == "8":
        return check_rpps(national_id[1:]) is None
    if national_id[0] == "0":
        return check_adeli(national_id[1:]) is None
    return False


def specialty_lookup(labels: Mapping[str, str]) -> dict[str, str]:
    """folded TRE_R38 display name → code, with and without the ``(SM)``-style suffix, so that a
    text-only specialty such as ``"Médecine générale"`` becomes ``SM54``. Doctors' codes win ties."""
    lookup: dict[str, str] = {}
    for code, label in sorted(labels.items(), key=lambda item: (not item[0].startswith("SM"), item[0])):
        for variant in (label, re.sub(r"\s*\([^)]*\)\s*$", "", label)):
            lookup.setdefault(fold(variant), code)
    return lookup


def parse_instant(value: Any) -> tuple[datetime | None, bool]:
    """(aware UTC datetime, offset given) of a FHIR instant; ``(None, …)`` when unparseable.

    ``Z``, ``+00:00``, ``+02:00`` and fractional seconds are accepted; a value without offset is read
    as Paris local time (and reported, the caller flags it).
    """
    if not isinstance(value, str) or len(value) < 16:
        return None, False
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, False
    if moment.tzinfo is None:
        return moment.replace(tzinfo=PARIS).astimezone(timezone.utc), False
    return moment.astimezone(timezone.utc), True


@lru_cache(maxsize=1 << 16)
def _read_instant(value: str) -> tuple[datetime | None, bool, str | None]:
    """``parse_instant`` and the UTC instant's ISO text, once per distinct text: the slots of a sweep share
    their starts and ends (a week of 5-minute steps is 2,016 of them), and parsing plus formatting is about
    3 µs per instant."""
    moment, has_offset = parse_instant(value)
    return moment, has_offset, moment.isoformat() if moment is not None else None


def _instant(value: Any) -> tuple[datetime | None, bool, str | None]:
    """``_read_instant`` of a slot's ``start`` / ``end`` as sent (anything that is not text is unparseable)."""
    return _read_instant(value) if isinstance(value, str) else (None, False, None)


def _opening_hours(location: Mapping[str, Any]) -> str | None:
    """``mar-dim 08:00-19:00`` from ``hoursOfOperation`` (French day abbreviations, as offers use)."""
    parts: list[str] = []
    for entry in location.get("hoursOfOperation") or []:
        if not isinstance(entry, dict):
            continue
        # FHIR codes are lower case (``mon``); the guide's page writes them upper case (``MON``).
        days = sorted({d.lower() for d in entry.get("daysOfWeek") or []
                       if isinstance(d, str) and d.lower() in _DAY_LABELS}, key=_DAY_ORDER.index)
        if entry.get("allDay"):
            hours = "00:00-24:00"
        else:
            opening = str(entry.get("openingTime") or "")[:5]
            closing = str(entry.get("closingTime") or "")[:5]
            if not opening or not closing:
                continue
            hours = f"{opening}-{'24:00' if closing == '00:00' else closing}"
        if not days:
            parts.append(hours)
            continue
        indexes = [_DAY_ORDER.index(d) for d in days]
        if len(days) > 2 and indexes == list(range(indexes[0], indexes[-1] + 1)):
            label = f"{_DAY_LABELS[days[0]]}-{_DAY_LABELS[days[-1]]}"
        else:
            label = ",".join(_DAY_LABELS[d] for d in days)
        parts.append(f"{label} {hours}")
    return "; ".join(parts) or None


def _phone(resource: Mapping[str, Any] | None) -> str | None:
    if not resource:
        return None
    for telecom in resource.get("telecom") or []:
        if isinstance(telecom, dict) and telecom.get("system") == "phone" and telecom.get("value"):
            return str(telecom["value"])
    return None


def _identifier(resource: Mapping[str, Any] | None, system: str) -> str | None:
    """Value of the identifier of ``system``; else the only / first identifier value when none says
    its system (the specification's examples often omit it)."""
    if not resource:
        return None
    identifiers = resource.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    fallback = None
    for identifier in identifiers:
        if not isinstance(identifier, dict) or not identifier.get("value"):
            continue
        if identifier.get("system") == system:
            return str(identifier["value"]).strip()
        if fallback is None and not identifier.get("system"):
            fallback = str(identifier["value"]).strip()
    return fallback


def _address(location: Mapping[str, Any] | None, place: Place) -> None:
    if not location:
        return
    address = location.get("address") or {}
    if isinstance(address, list):
        address = address[0] if address else {}
    lines = address.get("line") or []
    if isinstance(lines, str):
        lines = [lines]
    place.line = " ".join(str(x).strip() for x in lines if x) or place.line
    place.postcode = (str(address.get("postalCode")).strip() if address.get("postalCode") else None) or place.postcode
    place.city = (str(address.get("city")).strip() if address.get("city") else None) or place.city
    place.name = location.get("name") or place.name
    place.phone = _phone(location) or place.phone
    identifiers = location.get("identifier") or []
    if isinstance(identifiers, dict):
        identifiers = [identifiers]
    for identifier in identifiers:
        if isinstance(identifier, dict) and identifier.get("value"):
            place.vendor_location_id = str(identifier["value"])
            break


class _Index:
    """Resources of a bundle by every way a reference may name them."""

    def __init__(self) -> None:
        self.by_key: dict[str, dict] = {}

    def add(self, resource: dict, full_url: str | None) -> None:
        rtype, rid = resource.get("resourceType"), resource.get("id")
        if rtype and rid:
            self.by_key[f"{rtype}/{rid}"] = resource
        if full_url:
            self.by_key[full_url] = resource
            if not rid:  # a resource known only by its fullUrl: reachable through its Type/id tail too
                tail = _type_id_tail(full_url)
                if tail:
                    self.by_key.setdefault(tail, resource)

    def resolve(self, reference: Any, *, holder: Mapping[str, Any] | None = None,
                want: str | None = None) -> dict | None:
        """The resource a ``Reference`` points to, or ``None``."""
        if not isinstance(reference, dict):
            return None
        ref = reference.get("reference")
        if isinstance(ref, str) and ref:
            if ref.startswith("#"):
                for contained in (holder or {}).get("contained") or []:
                    if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                        return contained
                return None
            found = self.by_key.get(ref)
            if found is None:
                tail = _type_id_tail(ref)
                found = self.by_key.get(tail) if tail else None
            if found is not None and (want is None or found.get("resourceType") == want):
                return found
            return None
        return None


def _type_id_tail(url: str) -> str | None:
    """``Type/id`` at the end of a relative or absolute reference (``/_history/n`` dropped)."""
    parts = [p for p in url.split("?")[0].split("/") if p]
    if len(parts) >= 4 and parts[-2] == "_history":
        parts = parts[:-2]
    if len(parts) >= 2 and parts[-2][:1].isupper():
        return f"{parts[-2]}/{parts[-1]}"
    return None


def _schedule_actors(schedule: dict, index: _Index) -> tuple[dict | None, dict | None, dict | None]:
    """The first Practitioner, PractitionerRole and Location among a schedule's actors."""
    actors = schedule.get("actor") or []
    if isinstance(actors, dict):
        actors = [actors]
    practitioner = role = location = None
    for actor in actors:
        resolved = index.resolve(actor, holder=schedule)
        if resolved is None:
            continue
        kind = resolved.get("resourceType")
        if kind == "Practitioner" and practitioner is None:
            practitioner = resolved
        elif kind == "PractitionerRole" and role is None:
            role = resolved
        elif kind == "Location" and location is None:
            location = resolved
    return practitioner, role, location


def _practitioner_national_id(practitioner: dict | None, role: dict | None) -> str | None:
    national_id = _identifier(practitioner, RPPS_SYSTEM)
    if national_id is None and role is not None:
        # Some vendors name the practitioner by identifier only in the PractitionerRole.
        ref = role.get("practitioner") or {}
        national_id = (ref.get("identifier") or {}).get("value") if isinstance(ref, dict) else None
    return national_id


def _practitioner_names(practitioner: dict | None) -> tuple[str | None, str | None]:
    """(family, given names joined) of the practitioner's first name entry."""
    names = (practitioner or {}).get("name") or []
    if isinstance(names, dict):
        names = [names]
    family = given = None
    if names and isinstance(names[0], dict):
        family = names[0].get("family")
        given_list = names[0].get("given") or []
        given = " ".join(given_list) if isinstance(given_list, list) else str(given_list)
    return family, given


def _role_place(role: dict, index: _Index, place: Place) -> dict | None:
    """Fill ``place`` with what a PractitionerRole says (structure id, phone); return the first of its
    locations found in the bundle, if any (it wins over the schedule's own Location actor)."""
    location = None
    locations = role.get("location") or []
    if isinstance(locations, dict):
        locations = [locations]
    for ref in locations:
        found = index.resolve(ref, holder=role, want="Location")
        if found is not None:
            location = found
            break
    organization = role.get("organization") or {}
    if isinstance(organization, dict):
        structure = (organization.get("identifier") or {})
        if isinstance(structure, dict) and structure.get("value"):
            place.structure_id = str(structure["value"])
        else:
            org = index.resolve(organization, holder=role, want="Organization")
            place.structure_id = _identifier(org, STRUCTURE_SYSTEM)
    place.phone = _phone(role)
    return location


def _index_entries(entries: list, index: _Index, result: MappingResult) -> list[dict]:
    """Index every resource of the bundle's entries; return its slots (entries without a resource are
    counted as rejected, OperationOutcomes flagged)."""
    slots: list[dict] = []
    for entry in entries:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict) or not resource.get("resourceType"):
            result.rejected["entry_without_resource"] += 1
            continue
        index.add(resource, entry.get("fullUrl"))
        if resource["resourceType"] == "Slot":
            slots.append(resource)
        elif resource["resourceType"] == "OperationOutcome":
            result.flags["operation_outcome_in_bundle"] += 1
    return slots


class BundleMapper:
    """Maps the pages of one vendor's answers; keeps per-schedule context between slots for speed."""

    def __init__(self, *, vendor: str, specialty_codes: Mapping[str, str] | None = None) -> None:
        self.vendor = vendor
        #: folded TRE_R38 label → code, to turn text-only specialties into codes.
        self.specialty_codes = dict(specialty_codes or {})

    # -- entry point -----------------------------------------------------------------------------

    def map_bundle(self, bundle: Any, *, search: str, requested: Iterable[str] | None = None,
                   known_sources: Mapping[str, str] | None = None) -> MappingResult:
        """Slot records of one searchset page. ``requested``: the ids asked for (others are refused).
        ``known_sources``: resource id → source hash of slots already known; a slot whose source is
        unchanged is only listed in ``unchanged`` (the fast path of incremental harvests).

        Raises ``BundleError`` when ``bundle`` is not a Bundle (the caller must then treat the request
        as failed, not as an empty truth).
        """
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise BundleError("response is not a FHIR Bundle")
        entries = bundle.get("entry") or []
        if not isinstance(entries, list):
            raise BundleError("Bundle.entry is not a list")
        result = MappingResult()
        index = _Index()
        slots = _index_entries(entries, index, result)
        wanted = set(requested) if requested is not None else None
        context_cache: dict[int, tuple[dict | None, str | None]] = {}
        for slot in slots:
            result.slots_seen += 1
            try:
                record, reason = self._map_slot(slot, index, search, wanted, context_cache, result.flags,
                                                known_sources)
            except (TypeError, AttributeError, KeyError, ValueError, IndexError):
                record, reason = None, "malformed_slot"
            if reason is _UNCHANGED:
                result.unchanged.append(slot["id"])
            elif record is None:
                result.rejected[reason or "malformed_slot"] += 1
            else:
                result.records.append(record)
        return result

    # -- one slot --------------------------------------------------------------------------------

    def _map_slot(self, slot: dict, index: _Index, search: str, wanted: set[str] | None,
                  cache: dict[int, tuple[dict | None, str | None]], flags: Counter,
                  known: Mapping[str, str] | None = None) -> tuple[SlotRecord | None, str | None]:
        resource_id = slot.get("id")
        if not resource_id or not isinstance(resource_id, str):
            return None, "slot_without_id"
        status = slot.get("status")
        if status is not None and status != "free":
            return None, "slot_not_free"
        start, start_has_offset, start_text = _instant(slot.get("start"))
        end, end_has_offset, end_text = _instant(slot.get("end"))
        if start is None or end is None:
            return None, "bad_slot_time"
        if not (start_has_offset and end_has_offset):
            flags["time_without_offset"] += 1
        if end <= start:
            return None, "slot_ends_before_start"
        schedule = index.resolve(slot.get("schedule"), holder=slot, want="Schedule")
        if schedule is None:
            return None, "schedule_not_found"
        context = self._cached_context(schedule, index, search, flags, cache)
        problem = _context_problem(context, search, wanted)
        if problem is not None:
            return None, problem
        assert context is not None  # a missing context is a problem
        roster_key = context["roster_key"]
        if not context.get("check_ok", True):
            flags["national_id_bad_check_digit"] += 1
        source_hash = self._source_hash(slot, context["digest"], index)
        if known is not None and known.get(resource_id) == source_hash:
            return None, _UNCHANGED
        record = SlotRecord(
            vendor=self.vendor, resource_id=resource_id, search=search, roster_key=roster_key,
            start=start, end=end, start_text=start_text, end_text=end_text,
            practitioner_national_id=context.get("national_id"),
            national_id_check_ok=context.get("check_ok", True),
            practitioner_family=context.get("family"), practitioner_given=context.get("given"),
            # Shared by the slots of one schedule: records never modify their place.
            place=context["place_obj"],
            sos=dict(context["sos"]) if context.get("sos") else None,
            source_hash=source_hash,
        )
        self._fill_slot_details(slot, record, index, flags)
        return record, None

    def _cached_context(self, schedule: dict, index: _Index, search: str, flags: Counter,
                        cache: dict[int, tuple[dict | None, str | None]]) -> dict | None:
        """The context of a schedule, worked out once per page (its slots share it)."""
        key = id(schedule)
        if key not in cache:
            context = self._schedule_context(schedule, index, search, flags)
            if context is not None and "place" in context:
                context["place_obj"] = Place(**context["place"])
            cache[key] = (context, None)
        return cache[key][0]

    def _schedule_context(self, schedule: dict, index: _Index, search: str, flags: Counter) -> dict | None:
        """What the slots of a schedule share: who (practitioner or SOS association), where, and the
        digest of those resources; ``{"reason": ...}`` or ``None`` when the schedule names no one usable."""
        practitioner, role, location = _schedule_actors(schedule, index)
        if search == "sos":
            context = self._sos_context(location, index, flags)
            if context is not None and "reason" not in context:
                context["digest"] = _digest(schedule, location, context.pop("organization", None))
            return context
        if practitioner is None and role is not None:
            practitioner = index.resolve(role.get("practitioner"), holder=role, want="Practitioner")
        national_id = _practitioner_national_id(practitioner, role)
        if not national_id:
            return {"reason": "practitioner_without_national_id"} if practitioner or role else None
        family, given = _practitioner_names(practitioner)
        place = Place()
        if role is not None:
            location = _role_place(role, index, place) or location
        if location is None:
            flags["place_without_location"] += 1
        _address(location, place)
        return {
            "roster_key": national_id, "national_id": national_id, "check_ok": rpps_check_ok(national_id),
            "family": family, "given": given or None, "place": _place_dict(place),
            "digest": _digest(schedule, practitioner, role, location),
        }

    def _sos_context(self, location: dict | None, index: _Index, flags: Counter) -> dict | None:
        if location is None:
            return None
        organization = index.resolve(location.get("managingOrganization"), holder=location, want="Organization")
        siret = _identifier(organization, STRUCTURE_SYSTEM)
        if not siret:
            ref = location.get("managingOrganization") or {}
            siret = (ref.get("identifier") or {}).get("value") if isinstance(ref, dict) else None
        if not siret:
            return {"reason": "sos_without_association"}
        # The guide sends ``3`` + SIRET; the directory (offers, the roster asked for) holds the bare
        # SIRET: records carry the bare one, so that they match the batch and the directory's places.
        siret = siret_bare(str(siret))
        place = Place()
        _address(location, place)
        sos = {
            "association_siret": siret, "association_name": (organization or {}).get("name"),
            "place_name": location.get("name"), "place_phone": _phone(location),
            "opening_hours": _opening_hours(location),
        }
        return {"roster_key": siret, "national_id": None, "check_ok": True, "place": _place_dict(place),
                "sos": sos, "organization": organization}

    def _fill_slot_details(self, slot: dict, record: SlotRecord, index: _Index, flags: Counter) -> None:
        """The slot's own fields, one FHIR element group at a time (each step writes into ``record``)."""
        _fill_types(slot, record, flags)
        self._fill_services(slot, record, index, flags)
        _fill_defaults(record, flags)
        self._fill_specialties(slot, record, flags)
        _fill_booking(slot, record, flags)

    def _fill_services(self, slot: dict, record: SlotRecord, index: _Index, flags: Counter) -> None:
        """``serviceType``: consultation modes, the CPTS the slot is offered through, the motive texts."""
        motives: list[str] = []
        for service in slot.get("serviceType") or []:
            if not isinstance(service, dict):
                continue
            for coding in service.get("coding") or []:
                if isinstance(coding, dict):
                    self._fill_service_coding(coding, service, slot, record, index, flags)
            text = service.get("text")
            if isinstance(text, str) and text.strip() and text.strip() not in motives:
                motives.append(text.strip())
        record.motive = " / ".join(motives) or None

    def _fill_service_coding(self, coding: dict, service: dict, slot: dict, record: SlotRecord, index: _Index,
                             flags: Counter) -> None:
        code, system = coding.get("code"), coding.get("system")
        if code in MODES and system in (ACT_CODE_SYSTEM, None):
            if code not in record.modes:
                record.modes.append(code)
        elif code == CPTS_CATEGORY and system in (CATEGORY_SYSTEM, None):
            cpts = self._cpts(service, slot, index)
            if cpts is None:
                flags["cpts_service_not_found"] += 1
            elif cpts not in record.cpts:
                record.cpts.append(cpts)

    def _fill_specialties(self, slot: dict, record: SlotRecord, flags: Counter) -> None:
        """``specialty``: the codes given, else a known TRE_R38 label's code, else the text kept as is."""
        for specialty in slot.get("specialty") or []:
            if not isinstance(specialty, dict):
                continue
            coded = False
            for coding in specialty.get("coding") or []:
                code = coding.get("code") if isinstance(coding, dict) else None
                if code:
                    coded = True
                    if code not in record.specialties:
                        record.specialties.append(code)
            text = specialty.get("text")
            if not coded and isinstance(text, str) and text.strip():
                self._fill_specialty_text(text, record, flags)

    def _fill_specialty_text(self, text: str, record: SlotRecord, flags: Counter) -> None:
        code = self.specialty_codes.get(fold(text))
        if code and code not in record.specialties:
            record.specialties.append(code)
        elif not code:
            flags["specialty_text_unknown"] += 1
            if text.strip() not in record.specialty_texts:
                record.specialty_texts.append(text.strip())

    def _source_hash(self, slot: dict, schedule_digest: bytes, index: _Index) -> str:
        """Hash of the slot as sent, with its schedule graph and the CPTS it is offered through."""
        hasher = hashlib.blake2b(orjson.dumps(slot), digest_size=10)
        hasher.update(schedule_digest)
        for service in slot.get("serviceType") or []:
            for extension in (service.get("extension") or []) if isinstance(service, dict) else []:
                if isinstance(extension, dict) and extension.get("url") == SERVICE_TYPE_EXTENSION:
                    healthcare = index.resolve(extension.get("valueReference"), holder=slot)
                    if healthcare is not None:
                        hasher.update(orjson.dumps(healthcare))
                        hasher.update(orjson.dumps(index.resolve(healthcare.get("providedBy"), holder=healthcare)))
        return hasher.hexdigest()

    def _cpts(self, service: dict, slot: dict, index: _Index) -> dict[str, str | None] | None:
        for extension in service.get("extension") or []:
            if not isinstance(extension, dict) or extension.get("url") != SERVICE_TYPE_EXTENSION:
                continue
            healthcare = index.resolve(extension.get("valueReference"), holder=slot, want="HealthcareService")
            if healthcare is None:
                continue
            organization = index.resolve(healthcare.get("providedBy"), holder=healthcare, want="Organization")
            if organization is None:
                continue
            # ``1`` + FINESS on the wire, the directory's FINESS in our indices (as ``sas.cpts_finess``).
            return {"finess": finess_bare(_identifier(organization, STRUCTURE_SYSTEM)),
                    "name": organization.get("name"), "phone": _phone(organization)}
        return None


_UNCHANGED = "unchanged"


def _fill_types(slot: dict, record: SlotRecord, flags: Counter) -> None:
    """``meta.security``: the slot types (PUBLIC, PRO, ...), unknown codes flagged."""
    meta = slot.get("meta") or {}
    for coding in meta.get("security") or []:
        code = coding.get("code") if isinstance(coding, dict) else None
        if code in SLOT_TYPES:
            if code not in record.types:
                record.types.append(code)
        elif code:
            flags["unknown_slot_type"] += 1


def _fill_defaults(record: SlotRecord, flags: Counter) -> None:
    """A slot offered through a CPTS is of type CPTS; without type it is PUBLIC, without mode AMB
    (both flagged)."""
    if record.cpts and "CPTS" not in record.types:
        record.types.append("CPTS")
    if not record.types:
        flags["slot_without_type"] += 1
        record.types.append("PUBLIC")
    if not record.modes:
        flags["slot_without_mode"] += 1
        record.modes.append("AMB")


def _fill_booking(slot: dict, record: SlotRecord, flags: Counter) -> None:
    """``appointmentType`` (walk-in only: not bookable) and ``comment`` (the booking URL)."""
    appointment = slot.get("appointmentType") or {}
    codes = {c.get("code") for c in appointment.get("coding") or [] if isinstance(c, dict)}
    if "WALKIN" in codes and "ROUTINE" not in codes:
        record.bookable = False
    elif not codes:
        flags["slot_without_appointment_type"] += 1
    comment = slot.get("comment")
    if isinstance(comment, str) and comment.startswith(("https://", "http://")):
        record.booking_url = comment.strip()
    elif comment:
        flags["comment_not_an_url"] += 1


def _context_problem(context: dict | None, search: str, wanted: set[str] | None) -> str | None:
    """Why the slots of a schedule with this context are refused, or ``None``."""
    if context is None:
        return "sos_place_not_found" if search == "sos" else "practitioner_not_found"
    if context.get("reason"):
        return context["reason"]
    if wanted is not None and context["roster_key"] not in wanted:
        return "association_not_requested" if search == "sos" else "practitioner_not_requested"
    return None


def _digest(*resources: Any) -> bytes:
    return hashlib.blake2b(orjson.dumps(resources), digest_size=10).digest()


def _place_dict(place: Place) -> dict[str, str | None]:
    return {name: getattr(place, name) for name in Place.__slots__}
