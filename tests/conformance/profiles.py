"""A small checker of the SAS guide's profiles (``ans.fhir.fr.sas`` 1.2.0, ``input/fsh/profiles/**``).

It checks what the guide's own differentials say — cardinalities, fixed values and patterns, required
bindings to the guide's small value sets, invariants such as ``^3[0-9]{14}$`` — plus the base FHIR R4
cardinalities those profiles lean on, and the ``meta.profile`` canonical URL the guide pages ask vendors to
declare ("Validateur ressources" in ``specifications_techniques-*-recherche_creneaux.md``). It is not a
full FHIR validator: the French core profiles' own constraints (hl7.fhir.fr.core) are not checked, and a
pattern or fixed value applies only where the element is present, as in FHIR.

``check_resource(resource, profile)`` and ``check_bundle(bundle, use_case)`` return a list of issues
(strings naming the profile, the path and what is wrong); an empty list means conformant.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# -- canonical URLs (sushi-config.yaml: canonical https://interop.esante.gouv.fr/ig/fhir/sas; profiles with an
# explicit ^url keep the older http://sas.fr/fhir/StructureDefinition/ form) ---------------------------------
CANONICAL = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
OLD = "http://sas.fr/fhir/StructureDefinition/"

BUNDLE_PS = OLD + "BundleAgregateur"
SLOT_PS = OLD + "FrSlotAgregateur"
SCHEDULE = OLD + "FrScheduleAgregateur"
PRACTITIONER = OLD + "FrPractitionerAgregateur"
PRACTITIONER_ROLE = OLD + "FrPractitionerRoleExerciceAgregateur"
LOCATION = OLD + "FrLocationAgregateur"
APPOINTMENT = OLD + "FrAppointmentSAS"

BUNDLE_CPTS = CANONICAL + "sas-cpts-bundle-aggregator"
SLOT_CPTS = CANONICAL + "sas-cpts-slot-aggregator"
HEALTHCARE_SERVICE_CPTS = CANONICAL + "sas-cpts-healthcareservice-aggregator"
ORGANIZATION_CPTS = CANONICAL + "sas-cpts-organization-aggregator"

BUNDLE_SOS = CANONICAL + "sas-sos-bundle-aggregator"
SLOT_SOS = CANONICAL + "sas-sos-slot-aggregator"
SCHEDULE_SOS = CANONICAL + "sas-sos-schedule-aggregator"
LOCATION_SOS = CANONICAL + "sas-sos-location-aggregator"
ORGANIZATION_SOS = CANONICAL + "sas-sos-organization-aggregator"
APPOINTMENT_SOS = CANONICAL + "sas-sos-appointment"

PRACTITIONER_REGUL = CANONICAL + "FrPractitionerRegul"   # no ^url in FrPractitionerRegul.fsh

# -- systems and codes ---------------------------------------------------------------------------------------
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
STRUCTURE_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
R314 = "https://mos.esante.gouv.fr/NOS/TRE_R314-TypeCreneau/FHIR/TRE-R314-TypeCreneau"
R66 = "https://mos.esante.gouv.fr/NOS/TRE_R66-CategorieEtablissement/FHIR/TRE-R66-CategorieEtablissement"
R38 = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_0276 = "http://terminology.hl7.org/CodeSystem/v2-0276"
V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
LOCATION_ID_TYPE = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
PARTICIPATION_STATUS = "http://hl7.org/fhir/participationstatus"
SERVICE_TYPE_EXT = "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
APPOINTMENT_OPERATOR_EXT = "http://interopsante.org/fhir/StructureDefinition/FrAppointmentOperator"

#: JDV_J165-TypeCreneau-SAS (FrSlotAgregateur's required binding: "public, pro, SNP").
SLOT_TYPES_PS = {(R314, c) for c in ("PUBLIC", "PRO", "SNP")}
#: sas-cpts-valueset-typecreneau.
SLOT_TYPES_CPTS = {(R314, c) for c in ("PUBLIC", "PRO", "SNP", "CPTS")}
#: sas-sos-valueset-typecreneau.
SLOT_TYPES_SOS = {(R314, c) for c in ("PUBLIC", "SNP")}
#: http://terminology.hl7.org/ValueSet/v3-ActEncounterCode (R4), the TypeConsultation slices' required binding.
ACT_ENCOUNTER = {(ACT_CODE, c) for c in ("AMB", "EMER", "FLD", "HH", "IMP", "ACUTE", "NONAC", "OBSENC", "PRENC",
                                          "SS", "VR")}
#: sas-valueset-typeconsultation (SOS serviceType.coding).
CONSULTATION_TYPES = {(ACT_CODE, c) for c in ("AMB", "HH", "VR")}
#: sas-valueset-appointmentreason.
APPOINTMENT_REASONS = {(V2_0276, "ROUTINE"), (V2_0276, "WALKIN")}
#: sas-valueset-categorieetablissement.
CPTS_CATEGORY = {(R66, "604")}
#: sas-valueset-participant-status.
PARTICIPANT_STATUS = {"accepted", "needs-action"}
#: sas-valueset-typeidentifiant.
IDENTIFIER_TYPES = {(V2_0203, "IDNPS"), (V2_0203, "INTRN")}
#: http://hl7.org/fhir/ValueSet/appointmentstatus (R4, required on Appointment.status).
APPOINTMENT_STATUS = {"proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
                      "entered-in-error", "checked-in", "waitlist"}

#: IDNST identifier types. The guide is not consistent: FrPractitionerRoleExerciceAgregateur fixes
#: fr-v2-0203#IDNST, FrOrganizationAgregateurCPTS fixes fr-core-cs-v2-0203#IDNST (alias $fr-v2-0203) while the CPTS
#: page ("ID de la structure CPTS") asks for fr-location-identifier-type#IDNST, and FrOrganizationAgregateurSOS fixes
#: fr-location-identifier-type#IDNST. Each profile gets its own system; the CPTS Organization either of its two.
IDNST_CPTS_SYSTEMS = {FR_CORE_V2_0203, LOCATION_ID_TYPE}

INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
FINESS_INVARIANT = re.compile(r"^1[0-9]{9}$")     # FrOrganizationAgregateurCPTS: FINESS-invariant
SIRET_INVARIANT = re.compile(r"^3[0-9]{14}$")     # FrOrganizationAgregateurSOS: SIRET-invariant


# -- a tiny path language: "a.b.c" over dicts, lists flattened ------------------------------------------------

def as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def values(node, path: str) -> list:
    """Every value at ``path`` below ``node`` (lists flattened at each step), like FHIRPath's navigation."""
    current = [node]
    for step in path.split(".") if path else []:
        following = []
        for item in current:
            if isinstance(item, dict):
                following.extend(as_list(item.get(step)))
        current = following
    return current


def codings(node, path: str) -> list[tuple[str | None, str | None]]:
    return [(c.get("system"), c.get("code")) for c in values(node, path) if isinstance(c, dict)]


def reference_type(reference: str | None) -> str | None:
    """``Schedule`` for ``Schedule/1``, ``https://x/fhir/Schedule/1`` or ``urn``-less forms; ``#`` for local."""
    if not reference:
        return None
    if reference.startswith("#"):
        return "#"
    parts = reference.rstrip("/").split("/")
    if "_history" in parts:
        parts = parts[:parts.index("_history")]
    return parts[-2] if len(parts) >= 2 else None


def declared_profiles(resource: dict) -> list[str]:
    return [p for p in as_list((resource.get("meta") or {}).get("profile")) if isinstance(p, str)]


# -- rules ------------------------------------------------------------------------------------------------------

Issue = str
Rule = Callable[[dict], Iterable[Issue]]


def card(path: str, low: int, high: int | None = None) -> Rule:
    """Cardinality of ``path`` relative to each occurrence of its parent (FHIR semantics)."""
    parent_path, _, leaf = path.rpartition(".")

    def rule(resource: dict) -> Iterable[Issue]:
        parents = values(resource, parent_path) if parent_path else [resource]
        for parent in parents:
            if not isinstance(parent, dict):
                continue
            count = len(as_list(parent.get(leaf)))
            if count < low or (high is not None and count > high):
                yield f"{path}: {count} found, {low}..{'*' if high is None else high} expected"
    return rule


def fixed(path: str, value) -> Rule:
    def rule(resource: dict) -> Iterable[Issue]:
        for found in values(resource, path):
            if found != value:
                yield f"{path}: {found!r} found, fixed value {value!r} expected"
    return rule


def pattern_code(path: str, systems: set[str], code: str) -> Rule:
    """A CodeableConcept pattern ``system#code``: where present, a coding with that code (and system)."""
    def rule(resource: dict) -> Iterable[Issue]:
        for concept in values(resource, path):
            found = codings(concept, "coding")
            if not any(s in systems and c == code for s, c in found):
                yield f"{path}: {found} found, pattern {sorted(systems)}#{code} expected"
    return rule


def coding_in(path: str, allowed: set[tuple[str, str]], what: str) -> Rule:
    """Required binding on Coding elements: every coding at ``path`` is in ``allowed``."""
    def rule(resource: dict) -> Iterable[Issue]:
        for system, code in codings(resource, path):
            if (system, code) not in allowed:
                yield f"{path}: {system}#{code} is not in {what}"
    return rule


def code_in(path: str, allowed: set[str], what: str) -> Rule:
    def rule(resource: dict) -> Iterable[Issue]:
        for found in values(resource, path):
            if found not in allowed:
                yield f"{path}: {found!r} is not in {what}"
    return rule


def matches(path: str, regex: re.Pattern, what: str, *, required: bool = False) -> Rule:
    """An invariant on a string element (``value.matches('…')``); ``required``: the value must be there."""
    def rule(resource: dict) -> Iterable[Issue]:
        found = values(resource, path)
        if required and not found:
            yield f"{path}: absent, {what} ({regex.pattern}) expected"
        for value in found:
            if not isinstance(value, str) or not regex.match(value):
                yield f"{path}: {value!r} breaks {what} ({regex.pattern})"
    return rule


def max_length(path: str, length: int) -> Rule:
    def rule(resource: dict) -> Iterable[Issue]:
        for value in values(resource, path):
            if isinstance(value, str) and len(value) > length:
                yield f"{path}: {value!r} longer than {length}"
    return rule


def references(path: str, *types: str) -> Rule:
    """``Reference(T)`` type restriction: each ``reference`` at ``path`` points to one of ``types``."""
    def rule(resource: dict) -> Iterable[Issue]:
        for ref in values(resource, path):
            if isinstance(ref, dict) and "reference" in ref and reference_type(ref["reference"]) not in types:
                yield f"{path}: {ref['reference']!r} is not a reference to {'/'.join(types)}"
    return rule


def contained_location(location_profile_rules: list[Rule]) -> Rule:
    """``location ^type.aggregation = #contained``: the reference is ``#id`` of a contained Location, which
    itself conforms to FrLocationAgregateur."""
    def rule(resource: dict) -> Iterable[Issue]:
        contained = {c.get("id"): c for c in as_list(resource.get("contained")) if isinstance(c, dict)}
        for ref in values(resource, "location.reference"):
            if not isinstance(ref, str) or not ref.startswith("#"):
                yield f"location.reference: {ref!r} is not a reference to a contained Location (#id)"
                continue
            target = contained.get(ref[1:])
            if target is None or target.get("resourceType") != "Location":
                yield f"location.reference: {ref!r} names no contained Location"
                continue
            yield from (f"contained Location {ref}: {issue}" for issue in
                        _run(target, LOCATION, location_profile_rules, require_meta_profile=True))
    return rule


def cpts_service_types(resource: dict) -> Iterable[Issue]:
    """FrSlotAgregateurCPTS serviceType slices: TypeConsultation (v3-ActCode, ActEncounterCode, no R5
    extension) and referencecpts (TRE_R66 604 with exactly one R5 extension → HealthcareService)."""
    for index, service in enumerate(as_list(resource.get("serviceType"))):
        if not isinstance(service, dict):
            continue
        extensions = [e for e in as_list(service.get("extension"))
                      if isinstance(e, dict) and e.get("url") == SERVICE_TYPE_EXT]
        found = codings(service, "coding")
        where = f"serviceType[{index}]"
        yield from _r5_extension_issues(where, extensions)
        if any(s == ACT_CODE for s, _ in found):
            yield from _type_consultation_issues(where, found, extensions)
        if any(s == R66 for s, _ in found):
            yield from _referencecpts_issues(where, found, extensions)


def _r5_extension_issues(where: str, extensions: list[dict]) -> Iterable[Issue]:
    """The sas-servicetype-r5 extension of a serviceType: 0..1, its valueReference a HealthcareService."""
    if len(extensions) > 1:
        yield f"{where}.extension[sas-servicetype-r5]: {len(extensions)} found, 0..1 expected"
    for extension in extensions:
        target = (extension.get("valueReference") or {}).get("reference")
        if reference_type(target) != "HealthcareService":
            yield f"{where}.extension[sas-servicetype-r5].valueReference: {target!r} is not a HealthcareService"


def _type_consultation_issues(where: str, found: list, extensions: list[dict]) -> Iterable[Issue]:
    """The TypeConsultation slice: v3-ActEncounterCode codes, no sas-servicetype-r5 extension."""
    for coding in found:
        if coding[0] == ACT_CODE and coding not in ACT_ENCOUNTER:
            yield f"{where}.coding: {coding[0]}#{coding[1]} is not in v3-ActEncounterCode"
    if extensions:
        yield f"{where}: a TypeConsultation serviceType carries the sas-servicetype-r5 extension (0..0)"


def _referencecpts_issues(where: str, found: list, extensions: list[dict]) -> Iterable[Issue]:
    """The referencecpts slice: sas-valueset-categorieetablissement codes, exactly one R5 extension."""
    for coding in found:
        if coding[0] == R66 and coding not in CPTS_CATEGORY:
            yield f"{where}.coding: {coding[0]}#{coding[1]} is not in sas-valueset-categorieetablissement"
    if len(extensions) != 1:
        yield f"{where}: a referencecpts serviceType needs exactly one sas-servicetype-r5 extension"


def ps_service_types(resource: dict) -> Iterable[Issue]:
    """FrSlotAgregateur serviceType[TypeConsultation] (sliced on coding.system): ActEncounterCode codes."""
    for system, code in codings(resource, "serviceType.coding"):
        if system == ACT_CODE and (system, code) not in ACT_ENCOUNTER:
            yield f"serviceType.coding: {system}#{code} is not in v3-ActEncounterCode"


def specialty_r38(resource: dict) -> Iterable[Issue]:
    """FrSlotAgregateur ``specialty`` (required, TRE_R38); the guide's pages and ExampleSlotPSIndiv5 also allow
    a text-only specialty, so only codings are checked."""
    for system, code in codings(resource, "specialty.coding"):
        if system != R38 or not code:
            yield f"specialty.coding: {system}#{code} is not a TRE_R38 specialty"


def instants(resource: dict) -> Iterable[Issue]:
    for name in ("start", "end"):
        for value in values(resource, name):
            if not isinstance(value, str) or not INSTANT.match(value):
                yield f"{name}: {value!r} is not a FHIR instant"


def regul_identifiers(resource: dict) -> Iterable[Issue]:
    """FrPractitionerRegul identifier slices (on system): IdentifiantNatPS (RPPS, IDNPS) 0..1, IdentifiantInterne
    (platform UUID, INTRN) 0..1, each with value 1..1."""
    slices = {RPPS_SYSTEM: ("IdentifiantNatPS", "IDNPS"), PLATFORM_SYSTEM: ("IdentifiantInterne", "INTRN")}
    seen: dict[str, int] = {}
    for identifier in as_list(resource.get("identifier")):
        system = identifier.get("system") if isinstance(identifier, dict) else None
        if system not in slices:
            continue
        name, code = slices[system]
        seen[name] = seen.get(name, 0) + 1
        if not any(s == V2_0203 and c == code for s, c in codings(identifier, "type.coding")):
            yield f"identifier[{name}].type: {codings(identifier, 'type.coding')} found, {V2_0203}#{code} expected"
        if len(as_list(identifier.get("value"))) != 1:
            yield f"identifier[{name}].value: 1..1 expected"
    for name, count in seen.items():
        if count > 1:
            yield f"identifier[{name}]: {count} found, 0..1 expected"


def appointment_operator(type_rule: Rule) -> Rule:
    def rule(resource: dict) -> Iterable[Issue]:
        operators = [e for e in as_list(resource.get("extension"))
                     if isinstance(e, dict) and e.get("url") == APPOINTMENT_OPERATOR_EXT]
        if not operators:
            yield "extension[appointmentOperator]: 0 found, 1..* expected"
        for extension in operators:
            reference = extension.get("valueReference")
            if not isinstance(reference, dict):
                yield "extension[appointmentOperator].valueReference: absent (a Reference is required)"
                continue
            identifier = reference.get("identifier")
            if not isinstance(identifier, dict):
                yield "extension[appointmentOperator].valueReference.identifier: 0 found, 1..1 expected"
                continue
            type_codings = codings(identifier, "type.coding")
            if len(type_codings) != 1:
                yield f"extension[appointmentOperator]…identifier.type.coding: {len(type_codings)} found, 1..1 expected"
            for issue in type_rule(identifier):
                yield f"extension[appointmentOperator]…identifier.{issue}"
            for name in ("system", "value"):
                if not identifier.get(name):
                    yield f"extension[appointmentOperator]…identifier.{name}: 0 found, 1..1 expected"
    return rule


# -- the profiles ------------------------------------------------------------------------------------------------

LOCATION_RULES: list[Rule] = [
    card("address", 1, 1), card("address.line", 1, 1), card("address.city", 1, 1), card("address.postalCode", 1, 1),
]

_SLOT_BASE: list[Rule] = [
    card("schedule", 1, 1), card("status", 1, 1), card("start", 1, 1), card("end", 1, 1),
    card("appointmentType", 0, 1), card("comment", 0, 1), fixed("status", "free"), instants,
    references("schedule", "Schedule"),
]

PROFILES: dict[str, list[Rule]] = {
    SLOT_PS: [*_SLOT_BASE, coding_in("meta.security", SLOT_TYPES_PS, "JDV_J165-TypeCreneau-SAS"), ps_service_types,
              specialty_r38],
    SLOT_CPTS: [*_SLOT_BASE, coding_in("meta.security", SLOT_TYPES_CPTS, "sas-cpts-valueset-typecreneau"),
                cpts_service_types,
                coding_in("appointmentType.coding", APPOINTMENT_REASONS, "sas-valueset-appointmentreason")],
    SLOT_SOS: [*_SLOT_BASE, coding_in("meta.security", SLOT_TYPES_SOS, "sas-sos-valueset-typecreneau"),
               coding_in("serviceType.coding", CONSULTATION_TYPES, "sas-valueset-typeconsultation"),
               coding_in("appointmentType.coding", APPOINTMENT_REASONS, "sas-valueset-appointmentreason")],
    SCHEDULE: [card("actor", 1)],
    SCHEDULE_SOS: [card("actor", 1), card("actor.reference", 1, 1), references("actor", "Location")],
    PRACTITIONER: [card("identifier", 1), card("identifier.type.coding", 0, 1),
                   pattern_code("identifier.type", {V2_0203}, "IDNPS"), fixed("identifier.system", RPPS_SYSTEM)],
    PRACTITIONER_ROLE: [card("contained", 1), card("practitioner", 0, 1), references("practitioner", "Practitioner"),
                        card("organization", 0, 1), pattern_code("organization.identifier.type", {V2_0203}, "IDNST"),
                        fixed("organization.identifier.system", STRUCTURE_SYSTEM), card("location", 1, 1),
                        contained_location(LOCATION_RULES)],
    LOCATION: LOCATION_RULES,
    HEALTHCARE_SERVICE_CPTS: [card("id", 1, 1), card("providedBy", 1, 1), card("providedBy.reference", 1, 1),
                              references("providedBy", "Organization")],
    ORGANIZATION_CPTS: [card("identifier", 1, 1), pattern_code("identifier.type", IDNST_CPTS_SYSTEMS, "IDNST"),
                        fixed("identifier.system", STRUCTURE_SYSTEM),
                        matches("identifier.value", FINESS_INVARIANT, "FINESS-invariant", required=True),
                        card("name", 0, 1)],
    LOCATION_SOS: [card("identifier.system", 1, 1), card("identifier.value", 1, 1),
                   pattern_code("identifier.type", {LOCATION_ID_TYPE}, "INTRN"), card("name", 1, 1), *LOCATION_RULES,
                   max_length("address.postalCode", 5), card("managingOrganization", 1, 1),
                   card("managingOrganization.reference", 1, 1), references("managingOrganization", "Organization")],
    ORGANIZATION_SOS: [card("identifier", 1, 1), pattern_code("identifier.type", {LOCATION_ID_TYPE}, "IDNST"),
                       fixed("identifier.system", STRUCTURE_SYSTEM),
                       matches("identifier.value", SIRET_INVARIANT, "SIRET-invariant", required=True)],
    APPOINTMENT: [appointment_operator(pattern_code("type", {V2_0203}, "IDNPS")),
                  card("identifier", 1, 1), card("identifier.system", 1, 1), card("identifier.value", 1, 1),
                  card("status", 1, 1), code_in("status", APPOINTMENT_STATUS, "AppointmentStatus"),
                  card("start", 1, 1), card("end", 1, 1), instants, card("participant", 1),
                  card("participant.status", 1, 1),
                  card("participant.actor.identifier.type", 1, 1),
                  card("participant.actor.identifier.type.coding", 1, 1),
                  pattern_code("participant.actor.identifier.type", {V2_0203}, "IDNPS"),
                  card("participant.actor.identifier.system", 1, 1),
                  fixed("participant.actor.identifier.system", RPPS_SYSTEM),
                  card("participant.actor.identifier.value", 1, 1),
                  code_in("participant.status", PARTICIPANT_STATUS, "sas-valueset-participant-status")],
    APPOINTMENT_SOS: [card("extension", 0, 1),
                      appointment_operator(lambda identifier: (
                          f"type.coding: {c[0]}#{c[1]} is not in sas-valueset-typeidentifiant"
                          for c in codings(identifier, "type.coding") if c not in IDENTIFIER_TYPES)),
                      card("identifier", 1, 1), card("identifier.system", 1, 1), card("identifier.value", 1, 1),
                      card("status", 1, 1), code_in("status", APPOINTMENT_STATUS, "AppointmentStatus"),
                      card("start", 1, 1), card("end", 1, 1), instants, card("participant", 1),
                      card("participant.status", 1, 1),
                      code_in("participant.status", PARTICIPANT_STATUS, "sas-valueset-participant-status")],
    PRACTITIONER_REGUL: [fixed("meta.source", PLATFORM_SYSTEM), card("identifier", 1), regul_identifiers,
                         card("active", 1, 1), card("name.family", 1, 1),
                         card("name.given", 1, 1), fixed("telecom.system", "email"), card("telecom.value", 1, 1)],
}

#: resourceType of each profile (the guide's ``Parent``).
RESOURCE_TYPES = {
    SLOT_PS: "Slot", SLOT_CPTS: "Slot", SLOT_SOS: "Slot", SCHEDULE: "Schedule", SCHEDULE_SOS: "Schedule",
    PRACTITIONER: "Practitioner", PRACTITIONER_ROLE: "PractitionerRole", LOCATION: "Location",
    HEALTHCARE_SERVICE_CPTS: "HealthcareService", ORGANIZATION_CPTS: "Organization", LOCATION_SOS: "Location",
    ORGANIZATION_SOS: "Organization", APPOINTMENT: "Appointment", APPOINTMENT_SOS: "Appointment",
    PRACTITIONER_REGUL: "Practitioner", BUNDLE_PS: "Bundle", BUNDLE_CPTS: "Bundle", BUNDLE_SOS: "Bundle",
}


def _run(resource: dict, profile: str, rules: list[Rule], *, require_meta_profile: bool) -> list[Issue]:
    issues: list[Issue] = []
    expected_type = RESOURCE_TYPES[profile]
    if resource.get("resourceType") != expected_type:
        issues.append(f"resourceType {resource.get('resourceType')!r}, {expected_type} expected")
        return issues
    if require_meta_profile and profile not in declared_profiles(resource):
        issues.append(f"meta.profile {declared_profiles(resource)} does not declare {profile}")
    for rule in rules:
        issues.extend(rule(resource))
    return issues


def check_resource(resource: dict, profile: str, *, require_meta_profile: bool = True) -> list[Issue]:
    """Issues of ``resource`` against ``profile`` (one of the URLs above), each prefixed with where it is."""
    where = f"{resource.get('resourceType')}/{resource.get('id')} [{profile.rsplit('/', 1)[-1]}]"
    return [f"{where}: {issue}" for issue in _run(resource, profile, PROFILES[profile],
                                                    require_meta_profile=require_meta_profile)]


# -- bundles ----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BundleProfile:
    url: str
    #: resourceType → (profile of its entries, slice minimum)
    slices: dict[str, tuple[str, int]]
    total_required: bool
    single_link: bool
    full_url_required: bool
    extra: list[Rule] = field(default_factory=list)


BUNDLES = {
    # BundleAgregateur: type searchset; slices on the resource type, all 0..*; no total / link / fullUrl rule.
    "ps": BundleProfile(BUNDLE_PS, {"Slot": (SLOT_PS, 0), "Schedule": (SCHEDULE, 0),
                                    "Practitioner": (PRACTITIONER, 0), "PractitionerRole": (PRACTITIONER_ROLE, 0)},
                        total_required=False, single_link=False, full_url_required=False),
    # BundleAgregateurCPTS: total 1.., link 1..1, slices on profile with fullUrl 1..
    "cpts": BundleProfile(BUNDLE_CPTS, {"Slot": (SLOT_CPTS, 1), "Schedule": (SCHEDULE, 1),
                                        "Practitioner": (PRACTITIONER, 1),
                                        "PractitionerRole": (PRACTITIONER_ROLE, 1),
                                        "HealthcareService": (HEALTHCARE_SERVICE_CPTS, 0),
                                        "Organization": (ORGANIZATION_CPTS, 0)},
                          total_required=True, single_link=True, full_url_required=True),
    # BundleAgregateurSOS: total 1.., link 1..1, four slices 1..* with fullUrl 1..
    "sos": BundleProfile(BUNDLE_SOS, {"Slot": (SLOT_SOS, 1), "Schedule": (SCHEDULE_SOS, 1),
                                      "Location": (LOCATION_SOS, 1), "Organization": (ORGANIZATION_SOS, 1)},
                         total_required=True, single_link=True, full_url_required=True),
}


def check_bundle(bundle: dict, use_case: str) -> list[Issue]:
    """Issues of a slot-search answer against the guide's Bundle profile of ``use_case`` (``ps``, ``cpts``,
    ``sos``) and of every entry against the profile of its resource type in that use case."""
    profile = BUNDLES[use_case]
    name = profile.url.rsplit("/", 1)[-1]
    if bundle.get("resourceType") != "Bundle":
        return [f"{name}: resourceType {bundle.get('resourceType')!r}, Bundle expected"]
    issues = _bundle_level_issues(bundle, profile, name)
    issues += _duplicate_full_url_issues(bundle, name)
    entry_issues, counts = _entry_issues(bundle, profile)
    issues += entry_issues
    for kind, (entry_profile, low) in profile.slices.items():
        if counts[kind] < low:
            issues.append(f"Bundle [{name}]: {counts[kind]} conformant {kind} entries "
                          f"({entry_profile.rsplit('/', 1)[-1]}), {low}..* expected")
    for rule in profile.extra:
        issues.extend(rule(bundle))
    return issues


def _bundle_level_issues(bundle: dict, profile: BundleProfile, name: str) -> list[Issue]:
    """The Bundle's own elements: meta.profile, type, total and link."""
    issues: list[Issue] = []
    if profile.url not in declared_profiles(bundle):
        issues.append(f"Bundle [{name}]: meta.profile {declared_profiles(bundle)} does not declare {profile.url}")
    if bundle.get("type") != "searchset":
        issues.append(f"Bundle [{name}]: type {bundle.get('type')!r}, fixed value 'searchset' expected")
    if profile.total_required and not isinstance(bundle.get("total"), int):
        issues.append(f"Bundle [{name}]: total: 0 found, 1..1 expected")
    if profile.single_link and len(as_list(bundle.get("link"))) != 1:
        issues.append(f"Bundle [{name}]: link: {len(as_list(bundle.get('link')))} found, 1..1 expected")
    return issues


def _duplicate_full_url_issues(bundle: dict, name: str) -> list[Issue]:
    """Bundle bdl-7 (FHIR R4): fullUrl unique in a bundle (unless versions differ): a resource shared by two
    Schedules (the Practitioner of two places, the association of two SOS places) is sent once."""
    seen_urls: dict[str, int] = {}
    for entry in as_list(bundle.get("entry")):
        if isinstance(entry, dict) and entry.get("fullUrl"):
            version = ((entry.get("resource") or {}).get("meta") or {}).get("versionId")
            key = f"{entry['fullUrl']}|{version}"
            seen_urls[key] = seen_urls.get(key, 0) + 1
    return [f"Bundle [{name}]: bdl-7 fullUrl {key.split('|')[0]!r} appears {count} times"
            for key, count in seen_urls.items() if count > 1]


def _entry_issues(bundle: dict, profile: BundleProfile) -> tuple[list[Issue], dict[str, int]]:
    """Every entry against its slice's profile, and how many conformant entries each slice has."""
    name = profile.url.rsplit("/", 1)[-1]
    issues: list[Issue] = []
    counts = {kind: 0 for kind in profile.slices}
    for index, entry in enumerate(as_list(bundle.get("entry"))):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            issues.append(f"Bundle [{name}]: entry[{index}] has no resource")
            continue
        kind = resource.get("resourceType")
        if kind not in profile.slices:
            continue                                         # open slicing: other resources are allowed
        entry_profile = profile.slices[kind][0]
        found = check_resource(resource, entry_profile)
        issues.extend(f"entry[{index}] {issue}" for issue in found)
        if not found:
            counts[kind] += 1
        if profile.full_url_required and not entry.get("fullUrl"):
            issues.append(f"entry[{index}] {kind}/{resource.get('id')}: fullUrl: 0 found, 1..1 expected")
    return issues, counts
