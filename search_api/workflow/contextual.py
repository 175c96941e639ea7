"""INT_L01, the contextual call: the regulation software (LRM) opens the platform's search already filled.

Two sets of parameter names are accepted on ``GET /recherche`` (API) and ``GET /app/recherche`` (web):

- the names regulation software sends to the national platform today: ``origin`` (the calling SAMU's
  Hub Santé id, ``fr.health.samu330``), ``streetnumber``, ``streetname``, ``inseecode`` (the commune;
  its name and postcode come from the communes gazetteer), ``city``, ``specialty`` (a label, a TRE_R38
  code or ``urn:oid:<oid>|<code>``) and ``practitioner`` (``urn:oid:1.2.250.1.71.4.2.1|8<RPPS>``);
- the platform's French names, kept working: ``adresse``, ``code_postal``, ``ville``, ``specialite``,
  ``medecin_traitant``, ``samu`` (and their English aliases ``address``, ``postcode``, ``own_doctor``…).

This module turns them into the pre-filled search (pure: the gazetteer, the TRE_R38 codes and the known
SAMU ids are passed in); the route runs it and puts the patient's own doctor first when he has slots.
Nothing here is stored or logged: the patient's address only lives in the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sas_core.errors import BadRequest
from sas_core.territories import known_samu_ids, normalise_samu_id

#: The national practitioner identifier system (8 + RPPS, 0 + ADELI), as ``practitioner`` carries it.
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
#: What an LRM call without specialty searches (the national platform opens such calls on general practice).
DEFAULT_LRM_SPECIALTY = "SM54"

_ALIASES: dict[str, tuple[str, ...]] = {
    "address": ("adresse", "address", "rue"),
    "streetnumber": ("streetnumber",),
    "streetname": ("streetname",),
    "insee": ("inseecode", "code_insee", "insee"),
    "postcode": ("code_postal", "cp", "postcode", "postal_code"),
    "city": ("ville", "commune", "city"),
    "specialty": ("specialite", "spécialité", "specialty", "specialites"),
    "own_doctor": ("medecin_traitant", "own_doctor", "rpps_medecin_traitant", "mt"),
    "practitioner": ("practitioner",),
    "samu": ("samu", "code_samu", "samu_code"),
}
#: Parameter names that make a request a contextual call (the web page has its own ``q`` otherwise).
PLACE_PARAMETERS = ("adresse", "address", "rue", "streetnumber", "streetname", "inseecode", "code_insee",
                    "code_postal", "cp", "postcode", "postal_code", "ville", "commune", "city")
CONTEXTUAL_PARAMETERS = (*PLACE_PARAMETERS, "origin")

_POSTCODE = re.compile(r"^\d{5}$")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
_NATIONAL_ID = re.compile(r"^(8\d{11}|0\d{9}|\d{11})$")
_SAMU = re.compile(r"^(?:fr\.health\.samu)?(\d{2,3}|2[AB]0?)$", re.IGNORECASE)
#: ``12``, ``12 bis``, ``12B``: the leading number and an optional repetition index (anything after it,
#: e.g. ``12-14``, is dropped: the search places the patient at commune level).
_STREET_NUMBER = re.compile(r"^(\d{1,5})(?:\s*(bis|ter|quater|quinquies|[a-z])\b)?", re.IGNORECASE)
_CODED = re.compile(r"^urn:oid:(\d+(?:\.\d+)+)\|([A-Za-z0-9]+)$")
#: Control characters (tab and line breaks are only whitespace).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MAX_LENGTH = {"address": 150, "streetname": 120, "city": 80, "streetnumber": 12, "specialty": 200,
               "practitioner": 80, "origin": 40}

NOTICE_DOCTOR_UNIDENTIFIED = ("Le médecin traitant transmis par le logiciel de régulation n'a pas pu être "
                              "identifié : la recherche s'affiche sans lui.")
NOTICE_DOCTOR_MISSING = "Le logiciel de régulation n'a pas transmis de médecin traitant."
NOTICE_DEFAULT_SPECIALTY = ("Le logiciel de régulation n'a pas transmis de spécialité : la recherche porte sur "
                            "la médecine générale.")


class UnknownOrigin(BadRequest):
    """``origin`` is not a SAMU the platform knows: the contextual call is refused, nothing is searched."""

    code = "unknown_origin"


class CommuneLike(Protocol):
    # Read-only properties: the gazetteer's communes are frozen dataclasses.
    @property
    def name(self) -> str: ...
    @property
    def postcodes(self) -> tuple[str, ...]: ...
    @property
    def departement(self) -> str: ...


class SpecialtyLookup(Protocol):
    @property
    def labels(self) -> Mapping[str, str]: ...      # TRE_R38 code → display

    def label_codes(self, text: str) -> tuple[str, ...] | None: ...


@dataclass(frozen=True)
class ContextualCall:
    """The pre-filled search: what the operator's screen opens with."""

    q: str | None
    address: str | None = None              # street line (number + name) when given
    postcode: str | None = None
    city: str | None = None
    insee: str | None = None                # INSEE commune code, when given and known
    specialties: tuple[str, ...] = ()
    own_doctor: str | None = None           # national id (8 + RPPS, 0 + ADELI)
    samu: str | None = None                 # as given, normalised: "330"
    territory: str | None = None            # SAS-33
    origin: str | None = None               # the calling SAMU's Hub Santé id (fr.health.samu330)
    #: French messages for the operator (things given that could not be used, defaults applied).
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def search_parameters(self) -> dict[str, object]:
        """The ``/v1/search`` parameters the screen starts from."""
        params: dict[str, object] = {}
        if self.q:
            params["q"] = self.q
        if self.specialties:
            params["specialty"] = list(self.specialties)
        return params


def contextual_parameters(items: list[tuple[str, str]]) -> dict[str, str]:
    """The query string's pairs as one value per name; repeated ``specialty`` / ``specialite`` values are
    joined with commas (both forms mean several specialties)."""
    params: dict[str, str] = {}
    for name, value in items:
        if name in params and name in _ALIASES["specialty"]:
            params[name] = f"{params[name]},{value}"
        else:
            params[name] = value
    return params


def _pick(params: Mapping[str, str], name: str) -> str | None:
    for alias in _ALIASES[name]:
        value = params.get(alias)
        if value is not None and str(value).strip():
            if _CONTROL.search(str(value)):
                raise BadRequest(f"le paramètre {alias} contient des caractères de contrôle")
            text = " ".join(str(value).split())
            limit = _MAX_LENGTH.get(name)
            if limit and len(text) > limit:
                raise BadRequest(f"le paramètre {alias} est trop long ({limit} caractères au plus)")
            return text
    return None


def territory_of_samu(samu: str, *, known: Mapping[str, str] | None = None) -> tuple[str, str]:
    """``"330"`` / ``"33"`` / ``"fr.health.samu330"`` → (``"330"``, ``"SAS-33"``), for a SAMU the platform knows."""
    known = known_samu_ids() if known is None else known
    match = _SAMU.match(samu.strip())
    if not match:
        raise BadRequest(f"samu doit être un code SAMU comme 330 (SAMU 33) ou fr.health.samu330, reçu {samu[:30]!r}")
    code = match.group(1).upper()
    departement = code[:3] if code.startswith("97") else code[:2]
    normalised = departement if len(departement) == 3 else departement + "0"
    territory = known.get(f"fr.health.samu{normalised}")
    if territory is None:
        raise BadRequest(f"aucun territoire SAS pour le code SAMU {samu[:30]!r}")
    return normalised, territory


def origin_territory(origin: str, *, known: Mapping[str, str]) -> tuple[str, str]:
    """The calling SAMU (``fr.health.samu330``) → (its id, its territory); ``UnknownOrigin`` otherwise."""
    value = normalise_samu_id(origin)
    territory = known.get(value)
    if territory is None:
        shown = origin.strip()[:40] or "(vide)"
        raise UnknownOrigin(
            f"Origine inconnue « {shown} » : ce logiciel de régulation n'est pas relié à la plateforme numérique SAS "
            "(origin attendu : l'identifiant Hub Santé d'un SAMU, par exemple fr.health.samu330). "
            "Contactez le support de la plateforme.", details={"parameter": "origin"})
    return value, territory


def _street(params: Mapping[str, str]) -> str | None:
    """The street line: ``adresse`` as given, else ``streetnumber`` + ``streetname``."""
    address = _pick(params, "address")
    if address:
        return address
    number, name = _pick(params, "streetnumber"), _pick(params, "streetname")
    if number:
        match = _STREET_NUMBER.match(number)
        if not match:
            raise BadRequest(f"streetnumber doit être un numéro de voie (12, 12 bis…), reçu {number[:12]!r}")
        number = match.group(1) + (f" {match.group(2).lower()}" if match.group(2) else "")
        if not name:
            raise BadRequest("streetnumber sans streetname : le numéro de voie seul ne situe pas le patient")
    return " ".join(p for p in (number, name) if p) or None


def _own_doctor(params: Mapping[str, str], warnings: list[str], *, lrm: bool) -> str | None:
    own_doctor = _pick(params, "own_doctor")
    if own_doctor:
        own_doctor = own_doctor.replace(" ", "")
        if not _NATIONAL_ID.match(own_doctor):
            raise BadRequest("medecin_traitant doit être un identifiant national (8 + RPPS) ou un numéro RPPS")
        return "8" + own_doctor if len(own_doctor) == 11 else own_doctor
    practitioner = _pick(params, "practitioner")
    if practitioner is None:
        if lrm:
            warnings.append(NOTICE_DOCTOR_MISSING)
        return None
    # The regulation software's own doctor field: a malformed or foreign identifier does not block the
    # search the patient needs (the national platform shows the search without him and says so).
    value = practitioner.replace(" ", "")
    if value.startswith(RPPS_SYSTEM + "|"):
        value = value[len(RPPS_SYSTEM) + 1:]
    if not _NATIONAL_ID.match(value):
        warnings.append(NOTICE_DOCTOR_UNIDENTIFIED)
        return None
    return "8" + value if len(value) == 11 else value


def _specialties(params: Mapping[str, str], warnings: list[str], *, specialties: SpecialtyLookup,
                 lrm: bool) -> tuple[str, ...]:
    raw = _pick(params, "specialty")
    if raw and "," in raw:
        # One official label with a comma in it, as regulation software sends a label: its codes (the
        # search would read the comma as a separator).
        whole = specialties.label_codes(raw)
        if whole:
            return whole
    values: list[str] = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        coded = _CODED.match(part)
        if coded:
            code = coded.group(2).upper()
            if code not in specialties.labels:
                raise BadRequest(f"spécialité {part[:60]!r} : le code {code!r} n'est pas un code TRE_R38 connu "
                                 "(ex. urn:oid:…|SM54 pour la médecine générale)")
            values.append(code)
        elif part.lower().startswith("urn:"):
            raise BadRequest(f"spécialité {part[:60]!r} : attendu urn:oid:<oid>|<code>, un libellé ou un code TRE_R38")
        else:
            values.append(part)
    if not values and lrm:
        warnings.append(NOTICE_DEFAULT_SPECIALTY)
        values.append(DEFAULT_LRM_SPECIALTY)
    return tuple(dict.fromkeys(values))


def _caller(params: Mapping[str, str], *, origins: Mapping[str, str],
            lrm: bool) -> tuple[str | None, str | None, str | None]:
    """The calling SAMU: its Hub Santé ``origin`` (regulation software), else the ``samu`` parameter;
    with the territory it regulates."""
    origin = territory = samu = None
    # ``origin`` makes it a call from regulation software: an unknown one is refused before anything else.
    if lrm:
        raw_origin = params.get("origin") or ""
        if len(raw_origin) > _MAX_LENGTH["origin"] or _CONTROL.search(raw_origin):
            raise UnknownOrigin("Origine invalide : origin doit être l'identifiant Hub Santé d'un SAMU "
                                "(par exemple fr.health.samu330).", details={"parameter": "origin"})
        origin, territory = origin_territory(raw_origin, known=origins)
        samu = origin.removeprefix("fr.health.samu")
    raw_samu = _pick(params, "samu")
    if raw_samu and not lrm:
        samu, territory = territory_of_samu(raw_samu, known=origins)
    return origin, territory, samu


def _patient_place(params: Mapping[str, str], warnings: list[str], *,
                   communes: Mapping[str, CommuneLike]) -> tuple[str | None, str | None, str | None, str | None]:
    """Where the patient is: street, postcode, city and INSEE code (one of them at least)."""
    address = _street(params)
    postcode, city = _pick(params, "postcode"), _pick(params, "city")
    if postcode and not _POSTCODE.match(postcode):
        raise BadRequest(f"code_postal doit faire 5 chiffres, reçu {postcode[:20]!r}")
    insee = _pick(params, "insee")
    if insee:
        insee, postcode, city = _commune_of_insee(insee.upper(), postcode, city, warnings, communes=communes)
    if not (address or postcode or city):
        raise BadRequest("l'appel contextuel doit situer le patient : adresse / streetname, code_postal, "
                         "ville / city ou inseecode")
    return address, postcode, city, insee


def _commune_of_insee(insee: str, postcode: str | None, city: str | None, warnings: list[str], *,
                      communes: Mapping[str, CommuneLike]) -> tuple[str | None, str | None, str | None]:
    """The INSEE code (None once dropped for ``city``), postcode and city of the patient's commune."""
    if not _INSEE.match(insee):
        raise BadRequest("inseecode doit être un code commune INSEE de 5 caractères (ex. 33063), "
                         f"reçu {insee[:20]!r}")
    commune = communes.get(insee)
    if commune is not None:
        # The commune of the INSEE code wins over a ``city`` text (the national platform does the same).
        city = commune.name
        if not postcode or postcode not in commune.postcodes:
            postcode = commune.postcodes[0] if commune.postcodes else None
        return insee, postcode, city
    if city:
        warnings.append(f"Code INSEE {insee} inconnu : la commune est prise du paramètre city ({city}).")
        return None, postcode, city
    raise BadRequest(f"code INSEE inconnu {insee!r} et pas de commune (city) pour situer le patient")


def parse_contextual(params: Mapping[str, str], *, communes: Mapping[str, CommuneLike],
                     specialties: SpecialtyLookup, origins: Mapping[str, str] | None = None) -> ContextualCall:
    """Validate the contextual call's parameters (a clear 400 for each problem).

    ``communes``: INSEE code → commune (the gazetteer's); ``specialties``: the TRE_R38 codes and labels;
    ``origins``: the SAMU ids accepted as ``origin`` → territory (default: every département's SAMU)."""
    origins = known_samu_ids() if origins is None else origins
    lrm = "origin" in params
    origin, territory, samu = _caller(params, origins=origins, lrm=lrm)
    warnings: list[str] = []
    address, postcode, city, insee = _patient_place(params, warnings, communes=communes)
    own_doctor = _own_doctor(params, warnings, lrm=lrm)
    wanted = _specialties(params, warnings, specialties=specialties, lrm=lrm)
    town = " ".join(p for p in (postcode, city) if p)
    q = ", ".join(p for p in (address, town) if p) or None
    return ContextualCall(q=q, address=address, postcode=postcode, city=city, insee=insee, specialties=wanted,
                          own_doctor=own_doctor, samu=samu, territory=territory, origin=origin,
                          warnings=tuple(warnings))


def own_doctor_first(results: list[dict], own_offer_ids: set[str], own_cards: list[dict]) -> list[dict]:
    """The result cards with the patient's own doctor's cards first (taken from ``results`` when
    there, else from ``own_cards``), the rest in their ranked order."""
    mine = [c for c in results if (c.get("offer") or {}).get("id") in own_offer_ids]
    if not mine:
        mine = [c for c in own_cards if c.get("slots")]
    rest = [c for c in results if (c.get("offer") or {}).get("id") not in own_offer_ids]
    for card in mine:
        card["own_doctor"] = True
    return mine + rest
