"""Offer documents of the practice places, SOS Médecins places and FINESS structures."""

from __future__ import annotations

from typing import Any

from connectors.directory.participation import SasParticipation
from connectors.directory.records import PracticeRecord, StructureRecord
from connectors.geocoding import GeoResult, departements_of_postcode
from indexer.directory.offer_ids import fold_cached, normalized_departement, practice_offer_id
from indexer.directory.run_context import DirectoryRun, SosPlace
from sas_core.territories import territory_for_departement


def _address(record, geo) -> dict:
    a = record.address
    located = geo if type(geo) is GeoResult else None
    cedex_city = a.cedex_line[6:].strip() if a.cedex_line[:5].isdigit() else ""
    city = a.city or cedex_city or (located.city if located else "")
    return {
        "line": a.street_line() or None,
        "complement": " ".join(x for x in (a.complement, a.distribution) if x) or None,
        "postcode": a.postcode or (located.postcode if located else None) or None,
        "city": city or None,
        "city_folded": fold_cached(city) or None,
        "insee": a.insee or (located.insee if located else None) or None,
        "cedex": a.cedex_line or None,
        "text": a.one_line() or None,
    }


def _place(run: DirectoryRun, record, geo, doc: dict) -> None:
    """Département, territory, position and precision (or the reason there is none)."""
    s = run.summary
    if type(geo) is GeoResult:
        departement = geo.departement or normalized_departement(record.departement)
        doc["location"] = {"lat": geo.lat, "lon": geo.lon}
        doc["geo_precision"] = geo.precision
        doc["geo_source"] = geo.source
        s.precision[geo.precision] += 1
    else:
        departement = normalized_departement(record.departement) or geo.departement or ""
        if not departement and record.address.postcode:
            candidates = departements_of_postcode(record.address.postcode)
            departement = candidates[0] if len(candidates) == 1 else ""
        doc["location"] = None
        doc["geo_precision"] = None
        doc["geo_source"] = None
        s.not_geocoded_by_reason[geo.reason] += 1
    doc["departement"] = departement or None
    doc["territory"] = territory_for_departement(departement) if departement else None


def _sas_block(participation: SasParticipation | None, cpts_names: dict[str, str]) -> dict:
    if participation is None:
        return {"participates": False, "cpts_finess": None, "cpts_name": None, "accepts_beyond": False,
                "beyond_phone": None, "vendor": None}
    return {
        "participates": participation.participates,
        "cpts_finess": participation.cpts_finess,
        "cpts_name": cpts_names.get(participation.cpts_finess or "") or None,
        "accepts_beyond": participation.accepts_beyond,
        "beyond_phone": participation.beyond_phone,
        "vendor": participation.vendor,
    }


def _apply_participation(run: DirectoryRun, doc: dict, kind: str, identifier: str) -> None:
    # Only with a participation file: otherwise the platform's own registrations (sas block) stay as they are.
    if run.participation is None:
        return
    entry = run.participation.get(kind, identifier)
    doc["sas"] = _sas_block(entry, run.cpts_names)
    doc["convention_sector"] = entry.convention_sector if entry else None
    if entry is not None and entry.participates:
        run.summary.remarks[f"participating_{kind}"] += 1


def practice_doc(run: DirectoryRun, r: PracticeRecord, geo) -> dict:
    first, last = r.first_name, r.last_name
    name = f"{first} {last}".strip()
    doc = {
        "id": practice_offer_id(r),
        "kind": "ps",
        "national_id": r.national_id,
        "national_id_type": r.id_type,
        "civility": r.civility or None,
        "last_name": last,
        "first_name": first or None,
        "last_name_folded": fold_cached(last),
        "first_name_folded": fold_cached(first) or None,
        "name": name,
        "name_folded": fold_cached(name),
        "profession_code": r.profession_code,
        "profession_label": r.profession_label,
        "specialties": [code for code, _ in r.specialties],
        "specialty_labels": [label for _, label in r.specialties],
        "exercise_mode": r.exercise_mode or None,
        "address": _address(r, geo),
        "phones": r.phones,
        "structure": {
            "technical_id": r.technical_id or None,
            "name": r.structure_name or r.enseigne or None,
            "name_folded": fold_cached(r.structure_name or r.enseigne) or None,
            "siret": r.siret or None,
            "siren": r.siren or None,
            "finess": r.finess or None,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.sector_code or None,
            "sector_label": r.sector_label or None,
        },
        "sos": None,
        "member_count": None,
        "source": r.source,
        "source_updated_at": r.updated or run.source_dates.get(r.source),
    }
    _place(run, r, geo, doc)
    _apply_participation(run, doc, "ps", r.national_id)
    return doc


#: The person fields of an offer that is a structure (SOS Médecins place, CPTS, MSP, centre), in the order of a
#: practitioner's document (the offer's fingerprint is taken on the document as built).
_NO_PERSON: dict[str, None] = {
    "national_id": None, "national_id_type": None, "civility": None, "last_name": None, "first_name": None,
    "last_name_folded": None, "first_name_folded": None,
}


def sos_doc(run: DirectoryRun, place: SosPlace) -> dict:
    r = place.record
    name = r.structure_name
    doc: dict[str, Any] = {
        "id": place.offer_id,
        "kind": "sos",
        **_NO_PERSON,
        "name": name,
        "name_folded": fold_cached(name),
        "profession_code": "10",
        "profession_label": "Médecin",
        "specialties": ["SM54"],
        "specialty_labels": [run.specialties.label("SM54") or "Médecine générale"],
        "exercise_mode": None,
        "address": _address(r, place.geo),
        "phones": r.phones,
        "structure": {
            "technical_id": r.technical_id or None,
            "name": name,
            "name_folded": fold_cached(name),
            "siret": r.siret or None,
            "siren": r.siren or None,
            "finess": r.finess or None,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.sector_code or None,
            "sector_label": r.sector_label or None,
        },
        "sos": {"association_siret": r.siret or None, "association_name": name},
        "member_count": len(place.members),
        "source": r.source,
        "source_updated_at": run.source_dates.get(r.source),
    }
    _place(run, r, place.geo, doc)
    _apply_participation(run, doc, "sos", r.technical_id)
    if run.participation is not None:
        entry = run.participation.get("sos", r.technical_id)
        doc["sos"]["opening_hours"] = entry.opening_hours if entry else None
    return doc


def structure_doc(run: DirectoryRun, r: StructureRecord, geo) -> dict:
    if r.kind == "cpts" and run.participation is not None:
        if run.cpts_members is None:
            run.cpts_members = run.participation.cpts_members()
        members = run.cpts_members.get(r.finess, 0)
    else:
        members = len(run.finess_members.get(r.finess, ()))
    doc = {
        "id": f"{r.kind}-{r.finess}",
        "kind": r.kind,
        **_NO_PERSON,
        "name": r.name,
        "name_folded": fold_cached(r.name),
        "profession_code": None,
        "profession_label": None,
        "specialties": [],
        "specialty_labels": [],
        "exercise_mode": None,
        "address": _address(r, geo),
        "phones": r.phones,
        "structure": {
            "technical_id": None,
            "name": r.long_name or r.name,
            "name_folded": fold_cached(r.long_name or r.name),
            "siret": r.siret or None,
            "siren": r.siret[:9] if len(r.siret) == 14 else None,
            "finess": r.finess,
            "finess_ej": r.finess_ej or None,
            "sector_code": r.category_code,
            "sector_label": r.category_label or None,
        },
        "sos": None,
        "member_count": members,
        "source": r.source,
        "source_updated_at": run.source_dates.get(r.source),
    }
    _place(run, r, geo, doc)
    _apply_participation(run, doc, r.kind, r.finess)
    return doc

