"""Deterministic, realistic agendas of simulated vendors, served as precomputed FHIR entries.

Each practitioner gets, from a seed made of the vendor and the national id: working days and opening
hours with a lunch break, a slot length of 10–30 min, a fill rate (most slots are already booked by the
practitioner's own patients), some SNP / PRO slots, home visits or teleconsultations for some, walk-in
mornings for a few, and CPTS slots when the offer belongs to a CPTS. SOS Médecins places get evening and
week-end consultation slots. Some free slots get taken as time passes (each has a deterministic
``taken_at``). Every vendor answers as a certified one (the guide's profiles, identifier types, ids in the
guide's wire form, ``+33`` phones, one ``self`` link); they differ only where the guide leaves a choice —
instants in UTC or Paris time.

Every slot's bundle entry is serialised once (orjson) when its day is generated; serving a search is
then filtering and joining bytes, so the simulator stays cheap next to the harvester it feeds.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import orjson

from sas_core.structure_ids import finess_wire, siret_wire
from simulator.roster import SimAssociation, SimPlace, SimPractitioner

PARIS = ZoneInfo("Europe/Paris")
#: Profiles the guide publishes (``meta.profile``, what its validator and the test kit select on): the
#: PS-individual ones keep their historic ``http://sas.fr`` URLs (``^url`` in the FSH), the CPTS and SOS ones
#: live under the IG's canonical (sushi-config ``canonical`` + ``/StructureDefinition/`` + ``Id``).
P = "http://sas.fr/fhir/StructureDefinition/"
IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
PS_BUNDLE, PS_SLOT = P + "BundleAgregateur", P + "FrSlotAgregateur"
SCHEDULE, PRACTITIONER = P + "FrScheduleAgregateur", P + "FrPractitionerAgregateur"
ROLE, LOCATION = P + "FrPractitionerRoleExerciceAgregateur", P + "FrLocationAgregateur"
CPTS_BUNDLE, CPTS_SLOT = IG + "sas-cpts-bundle-aggregator", IG + "sas-cpts-slot-aggregator"
CPTS_SERVICE, CPTS_ORGANIZATION = IG + "sas-cpts-healthcareservice-aggregator", IG + "sas-cpts-organization-aggregator"
SOS_BUNDLE, SOS_SLOT, SOS_SCHEDULE = (IG + "sas-sos-bundle-aggregator", IG + "sas-sos-slot-aggregator",
                                     IG + "sas-sos-schedule-aggregator")
SOS_LOCATION, SOS_ORGANIZATION = IG + "sas-sos-location-aggregator", IG + "sas-sos-organization-aggregator"
#: A practitioner slot's profile in an INT_R04 answer (every Slot there is a FrSlotAgregateurCPTS): the
#: serialised entry of INT_R01 with its profile swapped (one bytes.replace, no per-slot JSON work).
PS_SLOT_PROFILE_BYTES = b'"profile":["' + PS_SLOT.encode() + b'"]'
CPTS_SLOT_PROFILE_BYTES = b'"profile":["' + CPTS_SLOT.encode() + b'"]'
R314 = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
R38 = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
V276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
R66 = "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
EXT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
STRUCT = "urn:oid:1.2.250.1.71.4.2.2"
#: Identifier types the profiles fix: IDNPS on Practitioner (FrPractitionerAgregateur) and IDNST on the
#: PractitionerRole's structure (interopsante fr-v2-0203), IDNST on the CPTS Organization (fr-core's
#: fr-v2-0203, alias ``$fr-v2-0203``), IDNST / INTRN on the SOS Organization / Location (location types).
IDNPS_TYPE = {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "IDNPS"}]}
ROLE_IDNST_TYPE = {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "IDNST"}]}
CPTS_IDNST_TYPE = {"coding": [{"system": "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203", "code": "IDNST"}]}
LOCATION_ID_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
SOS_IDNST_TYPE = {"coding": [{"system": LOCATION_ID_TYPES, "code": "IDNST"}]}
INTRN_TYPE = {"coding": [{"system": LOCATION_ID_TYPES, "code": "INTRN"}]}
#: Days generated around today (yesterday → today + 8): covers a 7-day sweep at any hour.
DAYS_BEFORE, DAYS_AFTER = 1, 8
NEVER = math.inf

_MOTIVES = ["Consultation", "Consultation non programmée", "Visite de contrôle", "Première consultation",
            "Renouvellement d'ordonnance", "Certificat médical"]
_SPECIALTY_LABELS = {"SM54": "Médecine générale", "SM26": "Qualifié en médecine générale",
                     "SM53": "Spécialiste en médecine générale", "SM40": "Pédiatrie",
                     "SM15": "Dermatologie et vénéréologie", "SM38": "Ophtalmologie"}


def _seed(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True)
class VendorStyle:
    """How a vendor writes FHIR. Certified vendors differ only where the guide leaves a choice: the
    offset of instants (``+00:00`` or Paris time; milliseconds, never ``Z``). Everything the profiles or the test
    kit fix — contained Locations, relative ``Type/id`` references, identifier systems and types, coded specialties,
    ``search.mode`` — is the same for all (the harvester's tolerance of non-conformant quirks is tested
    on fixture bundles, not through a simulator posing as a certified vendor)."""

    instant: str = "utc"              # utc (.000+00:00) or paris (.000+01:00 / .000+02:00)

    @classmethod
    def for_vendor(cls, name: str, *, canonical: bool = False) -> VendorStyle:
        if canonical:
            return cls()
        rng = random.Random(_seed("style", name))
        return cls(instant=rng.choice(["utc", "paris"]))


def fr_phone(value: str | None) -> str | None:
    """A French number in the international form the guide's examples and the test kit use
    (``+33`` + 9 digits; ``+262`` / ``+590`` / ``+594`` / ``+596`` kept): ``05 53 00 00 00`` → ``+33553000000``."""
    if not value:
        return None
    digits = "".join(ch for ch in value if ch.isdigit())
    if value.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 10 and digits.startswith("0"):
        return "+33" + digits[1:]
    if len(digits) == 9:
        return "+33" + digits
    return "+" + digits if digits else None


def format_instant(moment: datetime, style: str) -> str:
    """``2024-06-12T16:40:00.000+02:00``: milliseconds and a numeric offset, as every example of the guide
    writes them and the test kit requires (``ps_validate_dates``: ``…T…:…:….000+0X:00``; no ``Z``)."""
    zone = PARIS if style == "paris" else timezone.utc
    return moment.astimezone(zone).isoformat(timespec="milliseconds")


@dataclass(slots=True)
class SimSlot:
    id: str
    start: float                      # epoch seconds
    end: float
    taken_at: float                   # epoch seconds at which it gets taken (NEVER: stays free)
    schedule_id: str
    cpts: tuple[str, ...]             # CPTS FINESS ids it is offered through (INT_R04 only)
    entry: bytes                      # the bundle entry, serialised


@dataclass
class OwnerAgenda:
    """Agenda of one practitioner (every place) or one SOS association, for the generated days."""

    key: str
    slots: list[SimSlot] = field(default_factory=list)
    support: dict[str, list[bytes]] = field(default_factory=dict)        # schedule id → entries
    #: The owner's own entry (Practitioner / SOS Organization), shared by all its Schedules: sent once
    #: per Bundle (bdl-7: a fullUrl once; the kit: one Practitioner for a PS with two places).
    owner: list[bytes] = field(default_factory=list)
    cpts_support: dict[str, list[bytes]] = field(default_factory=dict)   # CPTS FINESS → entries
    first_day: date | None = None


@dataclass(frozen=True)
class _Habits:
    days: tuple[int, ...]             # weekday numbers (0 = Monday)
    morning: tuple[time, time]
    afternoon: tuple[time, time] | None
    saturday_morning: bool
    minutes: int
    fill: float
    snp_share: float
    pro_share: float
    home_visits: bool
    teleconsultation: bool
    walk_in: bool
    cpts_share: float


def _habits(rng: random.Random, *, has_cpts: bool) -> _Habits:
    start_h = rng.choice([7, 8, 8, 8, 9])
    start_m = rng.choice([0, 0, 30])
    lunch = rng.choice([12, 12, 13])
    afternoon_start = lunch + rng.choice([1, 1, 2])
    end_h = rng.choice([17, 18, 19, 19, 20])
    days = tuple(sorted(rng.sample(range(5), rng.choice([4, 5, 5, 5]))))
    return _Habits(
        days=days,
        morning=(time(start_h, start_m), time(lunch, 0)),
        afternoon=(time(afternoon_start, 0), time(end_h, 0)) if rng.random() > 0.08 else None,
        saturday_morning=rng.random() < 0.3,
        minutes=rng.choice([10, 15, 15, 20, 20, 30]),
        fill=rng.uniform(0.55, 0.92),
        snp_share=rng.choice([0.0, 0.05, 0.1, 0.2]),
        pro_share=rng.choice([0.0, 0.05, 0.1]),
        home_visits=rng.random() < 0.15,
        teleconsultation=rng.random() < 0.2,
        walk_in=rng.random() < 0.05,
        cpts_share=rng.uniform(0.2, 0.5) if has_cpts else 0.0,
    )


class AgendaBuilder:
    """Builds the ``OwnerAgenda`` of practitioners and associations for one vendor."""

    def __init__(self, *, vendor: str, base_url: str, public_url: str, style: VendorStyle,
                 taken_share: float = 0.3) -> None:
        self.vendor = vendor
        self.base_url = base_url.rstrip("/")          # FHIR base, for fullUrl
        self.public_url = public_url.rstrip("/")      # where the booking pages are
        self.style = style
        self.taken_share = taken_share

    # -- helpers -----------------------------------------------------------------------------------

    @staticmethod
    def _ref(kind: str, rid: str) -> dict:
        # Relative ``Type/id``: the test kit compares ``PractitionerRole.practitioner.reference`` and
        # ``Schedule.actor.reference`` with ``Practitioner/<id>``.
        return {"reference": f"{kind}/{rid}"}

    def _entry(self, resource: dict, mode: str) -> bytes:
        return orjson.dumps({"fullUrl": f"{self.base_url}/{resource['resourceType']}/{resource['id']}",
                             "resource": resource, "search": {"mode": mode}})

    def _location(self, rid: str, place: SimPlace, *, sos: bool = False) -> dict:
        # The FAQ: identifier.system, .type and .value are required on Locations (the vendor's own id: INTRN).
        identifier = {"type": INTRN_TYPE, "system": f"https://{self.vendor}.example/lieux", "value": rid}
        resource = {"resourceType": "Location", "id": rid, "meta": {"profile": [SOS_LOCATION if sos else LOCATION]},
                    "identifier": [identifier],
                    # address.line 1..1: one line.
                    "address": {"line": [place.line] if place.line else [], "postalCode": place.postcode,
                                "city": place.city}}
        if place.name:
            resource["name"] = place.name
        phone = fr_phone(place.phone)
        if phone:
            resource["telecom"] = [{"system": "phone", "value": phone}]
        return resource

    # -- practitioners -------------------------------------------------------------------------------

    def practitioner(self, who: SimPractitioner, *, today: date) -> OwnerAgenda:
        agenda = OwnerAgenda(key=who.national_id, first_day=today)
        rng = random.Random(_seed(self.vendor, who.national_id))
        habits = _habits(rng, has_cpts=bool(who.cpts))
        practitioner_id = f"pr-{who.national_id}"
        practitioner = {"resourceType": "Practitioner", "id": practitioner_id,
                        "meta": {"profile": [PRACTITIONER]},
                        "identifier": [{"type": IDNPS_TYPE, "system": RPPS, "value": who.national_id}],
                        "name": [{"family": who.family, "given": [who.given] if who.given else []}]}
        agenda.owner = [self._entry(practitioner, "include")]
        for finess, name, phone in who.cpts:
            # ``finess`` keys the CPTS inside the simulator; the Organization carries ``1`` + FINESS.
            hs_id, org_id = f"hs-{finess}", f"org-{finess}"
            organization = {"resourceType": "Organization", "id": org_id, "meta": {"profile": [CPTS_ORGANIZATION]},
                            "identifier": [{"type": CPTS_IDNST_TYPE, "system": STRUCT, "value": finess_wire(finess)}],
                            "name": name}
            if fr_phone(phone):
                organization["telecom"] = [{"system": "phone", "value": fr_phone(phone)}]
            service = {"resourceType": "HealthcareService", "id": hs_id, "meta": {"profile": [CPTS_SERVICE]},
                       "providedBy": self._ref("Organization", org_id)}
            agenda.cpts_support[finess] = [self._entry(service, "include"), self._entry(organization, "include")]
        for place in who.places:
            schedule_id = f"sc-{who.national_id}-{place.key}"
            role_id, location_id = f"ro-{who.national_id}-{place.key}", f"lo-{who.national_id}-{place.key}"
            location = self._location(location_id, place)
            # FrPractitionerRoleExerciceAgregateur: ``contained`` 1.., the Location contained (#id).
            role = {"resourceType": "PractitionerRole", "id": role_id, "meta": {"profile": [ROLE]},
                    "contained": [location], "practitioner": self._ref("Practitioner", practitioner_id),
                    "location": [{"reference": f"#{location_id}"}]}
            if place.structure_id:
                role["organization"] = {"identifier": {"type": ROLE_IDNST_TYPE, "system": STRUCT,
                                                       "value": place.structure_id}}
            if fr_phone(place.phone):
                role["telecom"] = [{"system": "phone", "value": fr_phone(place.phone)}]
            schedule = {"resourceType": "Schedule", "id": schedule_id, "meta": {"profile": [SCHEDULE]},
                        "actor": [self._ref("Practitioner", practitioner_id), self._ref("PractitionerRole", role_id)]}
            agenda.support[schedule_id] = [self._entry(schedule, "include"), self._entry(role, "include")]
            self._practitioner_days(agenda, who, place, schedule_id, habits, rng, today)
        agenda.slots.sort(key=lambda s: s.start)
        return agenda

    def _practitioner_days(self, agenda: OwnerAgenda, who: SimPractitioner, place: SimPlace, schedule_id: str,
                           habits: _Habits, rng: random.Random, today: date) -> None:
        specialties = who.specialties or ["SM54"]
        for offset in range(-DAYS_BEFORE, DAYS_AFTER + 1):
            day = today + timedelta(days=offset)
            weekday = day.weekday()
            periods: list[tuple[time, time]] = []
            if weekday in habits.days:
                periods.append(habits.morning)
                if habits.afternoon:
                    periods.append(habits.afternoon)
            elif weekday == 5 and habits.saturday_morning:
                periods.append((habits.morning[0], time(12, 0)))
            day_rng = random.Random(_seed(self.vendor, who.national_id, place.key, day.isoformat()))
            for period_start, period_end in periods:
                moment = datetime.combine(day, period_start, PARIS)
                stop = datetime.combine(day, period_end, PARIS)
                step = timedelta(minutes=habits.minutes)
                while moment + step <= stop:
                    if day_rng.random() >= habits.fill:
                        self._practitioner_slot(agenda, who, place, schedule_id, habits, day_rng, moment,
                                                moment + step, specialties)
                    moment += step

    def _practitioner_slot(self, agenda: OwnerAgenda, who: SimPractitioner, place: SimPlace, schedule_id: str,
                           habits: _Habits, rng: random.Random, start: datetime, end: datetime,
                           specialties: list[str]) -> None:
        slot_id = f"{who.national_id}-{place.key}-{start.astimezone(timezone.utc):%Y%m%d%H%M}"
        draw = rng.random()
        if draw < habits.snp_share:
            types = ["SNP"]
        elif draw < habits.snp_share + habits.pro_share:
            types = ["PRO"]
        else:
            types = ["PUBLIC", "PRO"] if rng.random() < 0.3 else ["PUBLIC"]
        modes = ["AMB"]
        motive = rng.choice(_MOTIVES)
        if habits.teleconsultation and rng.random() < 0.3:
            modes = ["VR"] if rng.random() < 0.5 else ["AMB", "VR"]
            motive = "Téléconsultation"
        elif habits.home_visits and start.hour >= 16 and rng.random() < 0.5:
            modes, motive = ["HH"], "Visite à domicile"
        cpts: tuple[str, ...] = ()
        if who.cpts and rng.random() < habits.cpts_share:
            cpts = tuple(c[0] for c in who.cpts)
            types = [*types, "CPTS"] if "CPTS" not in types else types
        walk_in = habits.walk_in and start.hour < 10
        service: list[dict] = [{"coding": [{"system": ACT, "code": m}]} for m in modes]
        service[0]["text"] = motive
        for finess in cpts:
            service.append({"coding": [{"system": R66, "code": "604"}],
                            "extension": [{"url": EXT,
                                           "valueReference": self._ref("HealthcareService", f"hs-{finess}")}]})
        # Coded (the binding is required); the label rides along as text.
        specialty = [{"coding": [{"system": R38, "code": code}], "text": _SPECIALTY_LABELS.get(code, code)}
                     for code in specialties]
        resource = {
            "resourceType": "Slot", "id": slot_id,
            # A slot offered through a CPTS only ever appears in INT_R04 answers: CPTS profile at once.
            "meta": {"profile": [CPTS_SLOT if cpts else PS_SLOT],
                     "security": [{"system": R314, "code": t} for t in types]},
            "serviceType": service, "specialty": specialty,
            "appointmentType": {"coding": [{"system": V276, "code": "WALKIN" if walk_in else "ROUTINE"}]},
            "schedule": self._ref("Schedule", schedule_id), "status": "free",
            "start": format_instant(start, self.style.instant), "end": format_instant(end, self.style.instant),
        }
        if not walk_in:
            # The guide's FAQ: the URL of the practitioner's agenda (here: at this place), not of the slot.
            resource["comment"] = f"{self.public_url}/{self.vendor}/rdv/{who.national_id}/{place.key}"
        agenda.slots.append(SimSlot(slot_id, start.timestamp(), end.timestamp(), self._taken_at(rng, start),
                                    schedule_id, cpts, self._entry(resource, "match")))

    def _taken_at(self, rng: random.Random, start: datetime) -> float:
        """Some free slots get booked by the vendor's own patients before they start."""
        if rng.random() >= self.taken_share:
            return NEVER
        return start.timestamp() - rng.uniform(0.25, 72.0) * 3600

    # -- SOS Médecins ----------------------------------------------------------------------------------

    def association(self, who: SimAssociation, *, today: date) -> OwnerAgenda:
        agenda = OwnerAgenda(key=who.siret, first_day=today)
        org_id = f"org-{who.siret}"
        # ``who.siret`` is the directory's 14 digits; the guide's SIRET-invariant wants ``3`` + SIRET.
        organization = {"resourceType": "Organization", "id": org_id, "meta": {"profile": [SOS_ORGANIZATION]},
                        "identifier": [{"type": SOS_IDNST_TYPE, "system": STRUCT, "value": siret_wire(who.siret)}],
                        "name": who.name}
        agenda.owner = [self._entry(organization, "include")]
        for place in who.places:
            rng = random.Random(_seed(self.vendor, who.siret, place.key))
            location_id, schedule_id = f"lo-{who.siret}-{place.key}", f"sc-{who.siret}-{place.key}"
            place_name = place.name or f"Centre de consultation {place.city or ''}".strip()
            location = self._location(location_id, SimPlace(place.key, place.line, place.postcode, place.city,
                                                            place.phone, place_name), sos=True)
            location["managingOrganization"] = self._ref("Organization", org_id)
            weekday_hours = (time(20, 0), time(23, 59))
            weekend_hours = (time(rng.choice([8, 9, 12]), 0), time(23, 59))
            location["hoursOfOperation"] = [
                {"daysOfWeek": ["mon", "tue", "wed", "thu", "fri"], "openingTime": "20:00:00",
                 "closingTime": "00:00:00"},
                {"daysOfWeek": ["sat", "sun"], "openingTime": f"{weekend_hours[0]:%H:%M:%S}",
                 "closingTime": "00:00:00"},
            ]
            schedule = {"resourceType": "Schedule", "id": schedule_id, "meta": {"profile": [SOS_SCHEDULE]},
                        "actor": [self._ref("Location", location_id)]}
            # In the SOS search the Schedules are the matches and the Slots the includes.
            agenda.support[schedule_id] = [self._entry(schedule, "match"), self._entry(location, "include")]
            minutes = rng.choice([15, 20])
            fill = rng.uniform(0.3, 0.7)
            for offset in range(-DAYS_BEFORE, DAYS_AFTER + 1):
                day = today + timedelta(days=offset)
                opening, closing = weekend_hours if day.weekday() >= 5 else weekday_hours
                day_rng = random.Random(_seed(self.vendor, who.siret, place.key, day.isoformat()))
                moment = datetime.combine(day, opening, PARIS)
                stop = datetime.combine(day, closing, PARIS)
                step = timedelta(minutes=minutes)
                while moment + step <= stop:
                    if day_rng.random() >= fill:
                        slot_id = f"sos{who.siret}-{place.key}-{moment.astimezone(timezone.utc):%Y%m%d%H%M}"
                        types = ["PUBLIC", "SNP"] if day_rng.random() < 0.3 else ["PUBLIC"]
                        modes = ["AMB"] if day_rng.random() > 0.1 else ["AMB", "VR"]
                        resource = {
                            "resourceType": "Slot", "id": slot_id,
                            "meta": {"profile": [SOS_SLOT], "security": [{"system": R314, "code": t} for t in types]},
                            "serviceType": [{"coding": [{"system": ACT, "code": m}]} for m in modes],
                            "appointmentType": {"coding": [{"system": V276, "code": "ROUTINE"}]},
                            "schedule": self._ref("Schedule", schedule_id), "status": "free",
                            "start": format_instant(moment, self.style.instant),
                            "end": format_instant(moment + step, self.style.instant),
                            "comment": f"{self.public_url}/{self.vendor}/rdv/sos-{who.siret}?slot={slot_id}",
                        }
                        agenda.slots.append(SimSlot(slot_id, moment.timestamp(), (moment + step).timestamp(),
                                                    self._taken_at(day_rng, moment), schedule_id, (),
                                                    self._entry(resource, "include")))
                    moment += step
        agenda.slots.sort(key=lambda s: s.start)
        return agenda
