"""INT_L01, the contextual call: the regulation software opens the platform's search already filled.

``GET /recherche?adresse=…&code_postal=…&ville=…&specialite=…&medecin_traitant=…&samu=…`` (English
aliases: ``address``, ``postcode``, ``city``, ``specialty``, ``own_doctor``, ``samu``). This module turns
those parameters into the pre-filled search (pure, reusable by the web UI); the route runs it and puts
the patient's own doctor first when he has slots.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from sas_core.errors import BadRequest
from sas_core.territories import is_territory

_ALIASES: dict[str, tuple[str, ...]] = {
    "address": ("adresse", "address", "rue"),
    "postcode": ("code_postal", "cp", "postcode", "postal_code"),
    "city": ("ville", "commune", "city"),
    "specialty": ("specialite", "spécialité", "specialty", "specialites"),
    "own_doctor": ("medecin_traitant", "own_doctor", "rpps_medecin_traitant", "mt"),
    "samu": ("samu", "code_samu", "samu_code"),
}
_POSTCODE = re.compile(r"^\d{5}$")
_NATIONAL_ID = re.compile(r"^(8\d{11}|0\d{9}|\d{11})$")
_SAMU = re.compile(r"^(?:fr\.health\.samu)?(\d{2,3}|2[AB]0?)$", re.IGNORECASE)


@dataclass(frozen=True)
class ContextualCall:
    """The pre-filled search: what the operator's screen opens with."""

    q: str | None
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    specialties: tuple[str, ...] = ()
    own_doctor: str | None = None           # national id (8 + RPPS)
    samu: str | None = None                 # as given, normalised: "330"
    territory: str | None = None            # SAS-33
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def search_parameters(self) -> dict[str, object]:
        """The ``/v1/search`` parameters the screen starts from."""
        params: dict[str, object] = {}
        if self.q:
            params["q"] = self.q
        if self.specialties:
            params["specialty"] = list(self.specialties)
        return params


def _pick(params: Mapping[str, str], name: str) -> str | None:
    for alias in _ALIASES[name]:
        value = params.get(alias)
        if value is not None and str(value).strip():
            return str(value).strip()
    return None


def territory_of_samu(samu: str) -> tuple[str, str]:
    """``"330"`` / ``"33"`` / ``"fr.health.samu330"`` → (``"330"``, ``"SAS-33"``)."""
    match = _SAMU.match(samu.strip())
    if not match:
        raise BadRequest(f"samu must be a SAMU code such as 330 (SAMU 33) or fr.health.samu330, got {samu[:30]!r}")
    code = match.group(1).upper()
    departement = code[:3] if code.startswith("97") else code[:2]
    territory = f"SAS-{departement}"
    if not is_territory(territory):
        raise BadRequest(f"no SAS territory for SAMU code {samu[:30]!r}")
    normalised = departement if len(departement) == 3 else departement + "0"
    return normalised, territory


def parse_contextual(params: Mapping[str, str]) -> ContextualCall:
    """Validate the contextual call's parameters (400 with a clear message for each problem)."""
    address, postcode, city = _pick(params, "address"), _pick(params, "postcode"), _pick(params, "city")
    if postcode and not _POSTCODE.match(postcode):
        raise BadRequest(f"code_postal must be 5 digits, got {postcode[:20]!r}")
    if not (address or postcode or city):
        raise BadRequest("the contextual call needs the patient's place: adresse, code_postal and/or ville")
    own_doctor = _pick(params, "own_doctor")
    warnings: list[str] = []
    if own_doctor:
        own_doctor = own_doctor.replace(" ", "")
        if not _NATIONAL_ID.match(own_doctor):
            raise BadRequest("medecin_traitant must be a national id (8 + RPPS) or an RPPS number")
        if len(own_doctor) == 11:
            own_doctor = "8" + own_doctor
    samu, territory = (None, None)
    raw_samu = _pick(params, "samu")
    if raw_samu:
        samu, territory = territory_of_samu(raw_samu)
    raw_specialty = _pick(params, "specialty")
    specialties = tuple(s.strip() for s in (raw_specialty or "").split(",") if s.strip())
    town = " ".join(p for p in (postcode, city) if p)
    q = ", ".join(p for p in (address, town) if p) or None
    return ContextualCall(q=q, address=address, postcode=postcode, city=city, specialties=specialties,
                          own_doctor=own_doctor, samu=samu, territory=territory, warnings=tuple(warnings))


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
