"""Who each simulated vendor holds an agenda for: built from the offers index (or given directly)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sas_core.structure_ids import finess_wire, siret_wire


@dataclass(slots=True)
class SimPlace:
    """One consultation place of a practitioner (or one SOS fixed consultation place)."""

    key: str                     # stable within the practitioner / association
    line: str | None
    postcode: str | None
    city: str | None
    phone: str | None = None
    name: str | None = None
    #: National structure id of the practice place in the guide's form (``1`` + FINESS, ``3`` + SIRET),
    #: sent as ``PractitionerRole.organization.identifier`` when the directory knows it.
    structure_id: str | None = None


@dataclass(slots=True)
class SimPractitioner:
    national_id: str
    family: str
    given: str
    specialties: list[str] = field(default_factory=list)
    places: list[SimPlace] = field(default_factory=list)
    cpts: list[tuple[str, str, str | None]] = field(default_factory=list)   # (finess, name, phone)


@dataclass(slots=True)
class SimAssociation:
    """An SOS Médecins association and its fixed consultation places."""

    siret: str                   # the directory's bare 14-digit SIRET (the agenda key)
    name: str
    places: list[SimPlace] = field(default_factory=list)


@dataclass
class Roster:
    practitioners: dict[str, SimPractitioner] = field(default_factory=dict)
    associations: dict[str, SimAssociation] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.practitioners) + len(self.associations)


def rosters_from_offers(offers: Iterable[dict], *, vendors: Iterable[str] | None = None) -> dict[str, Roster]:
    """Group offers (``_source`` of the offers index) by ``sas.vendor`` into rosters."""
    wanted = set(vendors) if vendors is not None else None
    rosters: dict[str, Roster] = defaultdict(Roster)
    for offer in offers:
        vendor = (offer.get("sas") or {}).get("vendor")
        if not vendor or (wanted is not None and vendor not in wanted):
            continue
        roster = rosters[vendor]
        address = offer.get("address") or {}
        phones = offer.get("phones") or []
        if offer.get("kind") == "sos":
            sos = offer.get("sos") or {}
            siret = sos.get("association_siret")
            if not siret:
                continue
            name = sos.get("association_name") or offer.get("name") or "SOS Médecins"
            association = roster.associations.setdefault(siret, SimAssociation(siret=siret, name=name))
            association.places.append(SimPlace(key=str(len(association.places)), line=address.get("line"),
                                               postcode=address.get("postcode"), city=address.get("city"),
                                               phone=phones[0] if phones else None, name=offer.get("name")))
            continue
        national_id = offer.get("national_id")
        if not national_id:
            continue
        practitioner = roster.practitioners.get(national_id)
        if practitioner is None:
            practitioner = roster.practitioners[national_id] = SimPractitioner(
                national_id=national_id, family=offer.get("last_name") or offer.get("name") or "",
                given=offer.get("first_name") or "", specialties=list(offer.get("specialties") or []))
        structure = offer.get("structure") or {}
        structure_id = finess_wire(structure.get("finess")) or siret_wire(structure.get("siret"))
        practitioner.places.append(SimPlace(key=str(len(practitioner.places)), line=address.get("line"),
                                            postcode=address.get("postcode"), city=address.get("city"),
                                            phone=phones[0] if phones else None, structure_id=structure_id))
        sas = offer.get("sas") or {}
        if sas.get("cpts_finess") and not any(c[0] == sas["cpts_finess"] for c in practitioner.cpts):
            practitioner.cpts.append((sas["cpts_finess"], sas.get("cpts_name") or "CPTS", sas.get("beyond_phone")))
    return dict(rosters)


def load_rosters(es, *, prefix: str, vendors: Iterable[str] | None = None) -> dict[str, Roster]:
    """Rosters of every vendor named in the offers index of ``prefix``."""
    from elasticsearch import helpers

    from mappings.registry import alias_name

    query: dict = {"exists": {"field": "sas.vendor"}}
    if vendors is not None:
        query = {"terms": {"sas.vendor": list(vendors)}}
    hits = helpers.scan(es, index=alias_name(prefix, "offers"), size=5000, preserve_order=False,
                        query={"query": query, "_source": ["kind", "national_id", "last_name", "first_name", "name",
                                                           "specialties", "address", "phones", "sas", "sos",
                                                           "structure.finess", "structure.siret"]})
    return rosters_from_offers((hit["_source"] for hit in hits), vendors=vendors)
