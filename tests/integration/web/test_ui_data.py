"""Issue 17, the data shown by the operators' screens (points 5 tables, 7, 8, 10, 11), through the real app on
the real Elasticsearch, under an index prefix of their own (no other test's documents on these pages).

Each test names the defect it proves gone; each failed on the code before the fix."""

from __future__ import annotations

import csv
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient

from indexer.lifecycle import drop_prefix, setup_indices
from mappings.orientations import OrientationDoc
from mappings.registry import alias_name
from search_api.app import create_app
from tests.integration.search.conftest import AGEN, SearchWorld, offer, slot
from tests.weblogin import post_login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ui_prefix(test_prefix: str) -> str:
    return f"{test_prefix}-uid{uuid.uuid4().hex[:4]}"


@pytest.fixture(scope="module")
def ui_world(es, ui_prefix):
    setup_indices(es, prefix=ui_prefix)
    yield SearchWorld(es, ui_prefix)
    drop_prefix(es, prefix=ui_prefix)


@pytest.fixture(scope="module")
def ui_settings(settings, ui_prefix):
    return settings.model_copy(update={"index_prefix": ui_prefix})


@pytest.fixture(scope="module")
def web(ui_settings, es, ui_world):
    with TestClient(create_app(ui_settings, es=es), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, role: str, **fields) -> str:
    """Signs ``client`` in; returns the session's CSRF token (from a page's ``data-csrf``)."""
    client.cookies.clear()
    answer = post_login(client, {"role": role, "territories": fields.pop("territories", "SAS-47"),
                                 "next": "/app/recherche", **fields})
    assert answer.status_code == 303, answer.text[:300]
    page = client.get("/app/tableaux/orientations" if role == "account_manager" else "/app/recherche")
    return page.text.split('data-csrf="', 1)[1].split('"', 1)[0]


def text_of(html: str) -> str:
    """The visible text of a page (tags dropped, entities decoded, spaces collapsed)."""
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def soon(hours: float) -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(hours=hours)


# --- Point 10: a card's specialties ----------------------------------------------------------------------------


def test_card_names_the_specialty_its_slots_matched_and_the_directorys(web, ui_world, token_for):
    """A pneumologist (directory: SM41) whose vendor slot is coded SM54 matched a general-practice search:
    the card showed only "Pneumologie (SM)" (the directory's label); it now names both."""
    lung = offer("ui10-pneumo", name="Dr Paul SOUFFLE", lat=AGEN["lat"] + 0.002, lon=AGEN["lon"],
                 national_id="810000001010", specialties=("SM41",))
    lung["specialty_labels"] = ["Pneumologie (SM)"]          # as the directory load writes it
    ui_world.put("offers", [lung])
    ui_world.put("slots", [slot("v:ui10-1", of=lung, start=soon(3), specialties=("SM54",))])
    sign_in(web, "osnp")
    page = web.get("/app/recherche", params={"q": "47000", "specialite": "médecine générale"},
                   headers={"HX-Request": "true"})
    assert page.status_code == 200, page.text[:300]
    card = page.text.split('id="carte-', 1)[1].split("</li>\n", 1)[0] if 'id="carte-' in page.text else ""
    assert "Dr Paul SOUFFLE" in card, page.text[:2000]
    meta = text_of(card.split('class="meta">', 1)[1].split("</p>", 1)[0])
    assert meta.startswith("Médecine générale, Pneumologie"), meta
    assert "(SM)" not in meta
    # The JSON API's card says the same (codes and labels, the matched one first).
    api = web.get("/v1/search", params={"q": "47000", "specialty": "SM54"},
                  headers=token_for("osnp", territories=["SAS-47"]))
    assert api.status_code == 200, api.text[:300]
    found = [c["offer"] for c in api.json()["results"] if c["offer"]["id"] == "ui10-pneumo"]
    assert found and found[0]["specialties"] == ["SM54", "SM41"], found
    assert found[0]["specialty_labels"] == ["Médecine générale", "Pneumologie"]
    ui_world.delete("slots", ["v:ui10-1"])
    ui_world.delete("offers", ["ui10-pneumo"])


# --- Point 11: screen and CSV agree ----------------------------------------------------------------------------


def _orientation(es, prefix: str, **fields) -> dict:
    now = datetime.now(UTC)
    doc = OrientationDoc.model_validate({
        "id": f"ui-{uuid.uuid4().hex[:12]}", "created_at": now, "updated_at": now,
        "consultation_start": fields.pop("start", soon(2)), "consultation_end": fields.pop("end", None),
        "regulator": {"id": "reg-ui", "name": "Claire RÉGUL", "territory": "SAS-47"},
        "effecteur": {"national_id": "810000001111", "name": "Dr Jean MOREAU", "specialty": "SM54"},
        "offer_id": "ui-offer", "place_address": "1 rue Mme Delmas, 47000 Agen", "territory": "SAS-47",
        "category": "PS", "source": "vendor", "vendor": "editeur-a", "status": "oriented", **fields,
    }).model_dump(mode="json", exclude_none=True)
    es.index(index=alias_name(prefix, "orientations"), id=doc["id"], document=doc, refresh=True)
    return doc


def test_csv_export_is_worded_as_the_orientations_table(web, es, ui_prefix):
    """The CSV said ``oriented`` / ``fulfilled``, ``SM54`` and ``09:10`` where the table says Orientée,
    Honoré, Médecine générale and 09h10."""
    start = datetime(2026, 12, 1, 8, 10, tzinfo=UTC)        # 09h10 in Paris
    one = _orientation(es, ui_prefix, start=start, end=start + timedelta(minutes=20), status="fulfilled")
    two = _orientation(es, ui_prefix, start=start, status="oriented")
    sign_in(web, "regulator")
    table = text_of(web.get("/app/tableaux/orientations", params={"du": "2026-12-01", "au": "2026-12-01",
                                                                  "periode": "consultation"}).text)
    for shown in ("09h10-09h30", "Honoré", "Orientée", "Médecine générale"):
        assert shown in table, shown
    answer = web.get("/app/tableaux/orientations.csv", params={"du": "2026-12-01", "au": "2026-12-01",
                                                               "periode": "consultation"})
    assert answer.status_code == 200
    rows = {r["statut"]: r for r in csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff")), delimiter=";")}
    assert set(rows) == {"Honoré", "Orientée"}, rows
    assert rows["Honoré"]["créneau"] == "09h10-09h30" and rows["Orientée"]["créneau"] == "09h10"
    assert rows["Honoré"]["spécialité"] == "Médecine générale"
    assert rows["Honoré"]["date de consultation"] == "01/12/2026"
    assert re.fullmatch(r"\d\d/\d\d/\d{4} \d\dh\d\d", rows["Honoré"]["date d'orientation"])
    for doc in (one, two):
        es.delete(index=alias_name(ui_prefix, "orientations"), id=doc["id"], refresh=True)


def test_csv_keeps_neutralising_formulas_with_french_labels():
    from search_api.workflow import csv_export

    text = "".join(csv_export.stream([{"status": "cancelled", "regulator": {"name": "=1+1"},
                                       "place_address": "@SUM(A1)", "effecteur": {"specialty": "SM54"}}],
                                     specialty_label={"SM54": "Médecine générale"}.get))
    row = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))[1]
    assert row[3] == "'=1+1" and row[8] == "'@SUM(A1)" and row[9] == "Annulé" and row[7] == "Médecine générale"


def test_one_day_unavailability_reads_as_that_day(web, ui_world, es, ui_prefix):
    """Entered "Du 01/12 Au (inclus) 01/12", it was listed "Du 01/12 au 02/12" (the stored end is the next
    midnight); now "Le 01/12/…", and two days "Du … au … inclus", on the practitioner's and the regulators'
    pages."""
    doctor = offer("ui11-doc", name="Dr Anne JOUR", lat=AGEN["lat"], lon=AGEN["lon"], national_id="810000001129")
    ui_world.put("offers", [doctor])
    csrf = sign_in(web, "effecteur", territories="", national_id=doctor["national_id"], name=doctor["name"])
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    after = day + timedelta(days=1)
    for until in (day, after):
        done = web.post("/app/espace/indisponibilites", data={"csrf": csrf, "offer_id": doctor["id"],
                                                             "du": day.isoformat(), "au": until.isoformat()})
        assert "message=" in done.headers["location"], done.headers["location"]
    page = text_of(web.get("/app/espace").text)
    fr = day.strftime("%d/%m/%Y")
    assert f"Le {fr}" in page
    assert f"Du {fr} au {after.strftime('%d/%m/%Y')} inclus" in page
    assert f"au {(after + timedelta(days=1)).strftime('%d/%m/%Y')}" not in page
    sign_in(web, "regulator")
    declarations = text_of(web.get("/app/tableaux/declarations").text)
    assert f"Le {fr}" in declarations and f"Du {fr} au {after.strftime('%d/%m/%Y')} inclus" in declarations
    assert f"au {(after + timedelta(days=1)).strftime('%d/%m/%Y')}" not in declarations


def test_beyond_list_heading_names_what_it_lists():
    """The list of offers accepting patients beyond their slots was headed "Créneaux en sus des
    disponibilités" although it holds no slot; the shared label says what it lists."""
    from search_api.web.format import BEYOND_TITLE
    from search_api.web.render import templates

    assert "créneau" not in BEYOND_TITLE.lower() and "en sus" in BEYOND_TITLE
    assert templates.env.globals["BEYOND_TITLE"] == BEYOND_TITLE


# --- Point 8: the harvest-health page ---------------------------------------------------------------------------


def _run(es, prefix: str, *, vendor: str, status: str, minutes_ago: int, errors: list[str] | None = None) -> None:
    from mappings.harvest_runs import HarvestRunDoc

    started = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    doc = HarvestRunDoc(id=f"run-{uuid.uuid4().hex[:10]}", kind="harvest", vendor=vendor, mode="incremental",
                        started_at=started, ended_at=started + timedelta(seconds=20), status=status, requests=3,
                        errors=errors or []).model_dump(mode="json")
    es.index(index=alias_name(prefix, "harvest_runs"), id=doc["id"], document=doc, refresh=True)


def test_harvest_page_puts_a_down_vendor_first_with_its_last_error(web, es, ui_prefix, token_for):
    """A vendor that is down was neither highlighted nor moved first, showed no last error, and "Servis" was
    unexplained."""
    _run(es, ui_prefix, vendor="aaa-en-forme", status="success", minutes_ago=2)
    _run(es, ui_prefix, vendor="zzz-en-panne", status="success", minutes_ago=300)
    _run(es, ui_prefix, vendor="zzz-en-panne", status="failed", minutes_ago=40,
         errors=["batch 1: HTTP 503 from https://zzz.example/fhir/Slot"])
    _run(es, ui_prefix, vendor="zzz-en-panne", status="failed", minutes_ago=1,
         errors=["batch 1: connection refused (zzz.example:443)"])
    _run(es, ui_prefix, vendor="mmm-lots", status="partial", minutes_ago=10,
         errors=["6 of 6 batches failed; their slots were kept and marked stale"])
    _run(es, ui_prefix, vendor="mmm-lots", status="success", minutes_ago=1)
    sign_in(web, "admin")
    page = web.get("/app/tableaux/collecte")
    assert page.status_code == 200
    rows = page.text.split("<tbody>", 1)[1].split("</tbody>", 1)[0].split("<tr")[1:]
    assert "zzz-en-panne" in rows[0] and {"aaa-en-forme", "mmm-lots"} == {
        name for name in ("aaa-en-forme", "mmm-lots") if any(name in row for row in rows[1:3])}   # down first
    assert "En panne" in text_of(rows[0]) and not any("En panne" in text_of(row) for row in rows[1:3])
    assert "vendor-down" in rows[0]
    assert "connection refused (zzz.example:443)" in rows[0] and "503" not in rows[0]   # the latest error
    # Said in French; a diagnostic no rule describes is quoted as it came, marked as English (RGAA 8.7).
    assert "Erreur de collecte" in text_of(rows[0])
    assert '<code lang="en">batch 1: connection refused (zzz.example:443)</code>' in rows[0]
    lots = next(row for row in rows if "mmm-lots" in row)
    assert "6 lot(s) de requêtes sur 6 en échec" in text_of(lots) and "batches" not in lots
    assert "1 éditeur en panne : zzz-en-panne" in text_of(page.text)
    # "Servis" is explained (caption and the header's title).
    head = page.text.split("<thead>", 1)[1].split("</thead>", 1)[0]
    assert re.search(r'<th scope="col" title="Créneaux que la recherche peut afficher[^"]+">Servis', head)
    assert "« Servis » : créneaux que la recherche peut afficher" in text_of(page.text)
    # The JSON dashboard carries the same facts.
    api = web.get("/v1/dashboards/harvest", headers=token_for("admin"))
    assert api.status_code == 200, api.text[:300]
    by_vendor = {v["vendor"]: v for v in api.json()["vendors"]}
    assert by_vendor["zzz-en-panne"]["down"] is True and by_vendor["aaa-en-forme"]["down"] is False
    assert by_vendor["zzz-en-panne"]["last_error"] == "batch 1: connection refused (zzz.example:443)"


# --- Point 7: the CPTS page ---------------------------------------------------------------------------------------


def test_cpts_page_keeps_the_search_sorts_by_distance_maps_and_sets_other_specialties_apart(web, ui_world):
    """"Retour à la recherche" lost the specialty and the window; members were not sorted by distance and had no
    map; a neurologist appeared among general practitioners."""
    import json

    finess = "470077777"
    cpts = offer(f"cpts-{finess}", name="CPTS Agen Garonne", kind="cpts", lat=AGEN["lat"], lon=AGEN["lon"],
                 finess=finess, specialties=(), phone="+33553000000")
    far = offer("ui7-far", name="Dr Loïc LOIN", national_id="810000007001", lat=AGEN["lat"] + 0.04, lon=AGEN["lon"],
                cpts_finess=finess, cpts_name="CPTS Agen Garonne")
    near = offer("ui7-near", name="Dr Nina PRES", national_id="810000007002", lat=AGEN["lat"] + 0.003,
                 lon=AGEN["lon"], cpts_finess=finess, cpts_name="CPTS Agen Garonne")
    neuro = offer("ui7-neuro", name="Dr Noé NEURONE", national_id="810000007003", lat=AGEN["lat"] + 0.001,
                  lon=AGEN["lon"], specialties=("SM32",), cpts_finess=finess, cpts_name="CPTS Agen Garonne")
    ui_world.put("offers", [cpts, far, near, neuro])
    # The far one has the earliest slot: the old order (earliest slot first) put it first.
    ui_world.put("slots", [slot("v:ui7-far", of=far, start=soon(1)), slot("v:ui7-near", of=near, start=soon(3)),
                           slot("v:ui7-neuro", of=neuro, start=soon(2))])
    sign_in(web, "regulator")
    search = {"q": "47000", "specialite": "médecine générale", "fenetre": "0-4h", "modes": "AMB"}
    results = web.get("/app/recherche", params=search, headers={"HX-Request": "true"})
    assert results.status_code == 200
    links = set(re.findall(r'href="(/app/cpts/[^"]+)"', results.text))
    assert links, results.text[:3000]
    for link in links:                                     # the card's link carries the whole search
        for key in ("specialite=m%C3%A9decine+g%C3%A9n%C3%A9rale", "fenetre=0-4h", "q=47000", "modes=AMB"):
            assert key in unescape(link), link
    page = web.get(unescape(min(links)))
    assert page.status_code == 200, page.text[:500]
    back = unescape(re.search(r'<a href="([^"]*)"[^>]*>Retour à la recherche</a>', page.text).group(1))
    assert back.startswith("/app/recherche?")
    for key in ("specialite=m%C3%A9decine+g%C3%A9n%C3%A9rale", "fenetre=0-4h", "q=47000", "modes=AMB"):
        assert key in back, back
    main, apart = page.text.split('<ol class="cards">', 1)[1].split('id="autres-specialites"', 1)
    assert "Dr Noé NEURONE" not in main and "Dr Noé NEURONE" in apart      # not among general practitioners
    assert main.index("Dr Nina PRES") < main.index("Dr Loïc LOIN")         # nearest first
    # The map: the search point and every member, numbered like the cards, their names as data (text).
    markers = json.loads(unescape(re.search(r"id=\"carte-cpts\"[^>]*data-markers='([^']*)'", page.text).group(1)))
    assert markers[0]["origin"] is True
    assert [(m["label"], m["target"]) for m in markers[1:]] == [
        ("1. Dr Nina PRES", "carte-1"), ("2. Dr Loïc LOIN", "carte-2"), ("3. Dr Noé NEURONE", "carte-3")]
    assert 'id="carte-1"' in main and 'id="carte-3"' in apart
    # Without a specialty (reached from a bare link), everyone is in one list, still nearest first.
    plain = web.get(f"/app/cpts/{finess}", params={"q": "47000"})
    assert "autres-specialites" not in plain.text
    names = ["Dr Noé NEURONE", "Dr Nina PRES", "Dr Loïc LOIN"]
    cards = plain.text.split('<ol class="cards">', 1)[1]
    assert sorted(names, key=cards.index) == names
    # A search parameter edited into nonsense: a French message, not a 500.
    odd = web.get(f"/app/cpts/{finess}", params={"q": "47000", "fenetre": "demain-soir"})
    assert odd.status_code == 200 and 'role="alert"' in odd.text and "Dr Nina PRES" in odd.text
    ui_world.delete("slots", ["v:ui7-far", "v:ui7-near", "v:ui7-neuro"])
    ui_world.delete("offers", [cpts["id"], "ui7-far", "ui7-near", "ui7-neuro"])


def test_app_js_draws_the_cpts_map_with_text_labels_in_its_own_function():
    from pathlib import Path

    import search_api

    script = (Path(search_api.__file__).parent / "static" / "js" / "app.js").read_text(encoding="utf-8")
    cpts_part = script.split("function drawCptsMap()", 1)[1].split("\n  }\n", 1)[0]
    assert 'getElementById("carte-cpts")' in cpts_part and "textContent" in cpts_part
    assert "innerHTML" not in script


# --- Point 5 (tables): cancel from the Orientations and Déclarations tables, confirmed -------------------------


def test_orientations_table_cancels_after_a_confirmation(web, es, ui_prefix):
    """The Orientations table had no cancel although ``POST /v1/orientations/{id}/cancel`` allows it."""
    index = alias_name(ui_prefix, "orientations")
    open_one = _orientation(es, ui_prefix, status="booked", start=soon(30))
    honoured = _orientation(es, ui_prefix, status="fulfilled", start=soon(31))
    csrf = sign_in(web, "regulator")
    table = web.get("/app/tableaux/orientations").text
    confirm_link = f"/app/tableaux/orientations/{open_one['id']}/annuler"
    assert f'href="{confirm_link}"' in table                       # an open orientation can be cancelled
    assert f"/app/tableaux/orientations/{honoured['id']}/annuler" not in table   # an honoured one cannot
    # One click opens a confirmation (no JavaScript needed); nothing is cancelled yet.
    confirm = web.get(confirm_link)
    assert confirm.status_code == 200 and "Annuler cette orientation ?" in confirm.text
    assert "Dr Jean MOREAU" in text_of(confirm.text) and "Confirmer l'annulation" in text_of(confirm.text)
    assert f'action="{confirm_link}"' in confirm.text and f'name="csrf" value="{csrf}"' in confirm.text
    assert es.get(index=index, id=open_one["id"])["_source"]["status"] == "booked"
    # Without the form's token: refused, nothing changes.
    forged = web.post(confirm_link, data={"csrf": "forged"})
    assert forged.status_code == 403 and es.get(index=index, id=open_one["id"])["_source"]["status"] == "booked"
    done = web.post(confirm_link, data={"csrf": csrf})
    assert done.status_code == 303 and done.headers["location"].startswith("/app/tableaux/orientations?message=")
    assert es.get(index=index, id=open_one["id"])["_source"]["status"] == "cancelled"
    shown = text_of(web.get(done.headers["location"]).text)
    assert "Orientation annulée." in shown
    # Twice, or an honoured one: a French refusal on the table, never a 500.
    again = web.get(confirm_link)
    assert again.status_code == 303 and "erreur=" in again.headers["location"]
    assert "ne peut plus être annulée" in text_of(web.get(again.headers["location"]).text)
    late = web.post(f"/app/tableaux/orientations/{honoured['id']}/annuler", data={"csrf": csrf})
    assert late.status_code == 303
    assert "ne peut plus être annulée" in text_of(web.get(late.headers["location"]).text)
    assert es.get(index=index, id=honoured["id"])["_source"]["status"] == "fulfilled"
    bad = web.get("/app/tableaux/orientations/x%3Cb%3E/annuler")
    assert bad.status_code == 303 and "erreur=" in bad.headers["location"]
    # Another SAS's regulator sees no cancel and cannot cancel.
    other_csrf = sign_in(web, "regulator", territories="SAS-33")
    other = web.post(f"/app/tableaux/orientations/{honoured['id']}/annuler", data={"csrf": other_csrf})
    assert "introuvable" in text_of(web.get(other.headers["location"]).text)
    # An account manager reads the table but has no cancel.
    sign_in(web, "account_manager")
    assert "/annuler" not in web.get("/app/tableaux/orientations").text
    for doc in (open_one, honoured):
        es.delete(index=index, id=doc["id"], refresh=True)


def test_declarations_table_cancels_a_report_after_a_confirmation(web, ui_world, es, ui_prefix):
    """The Déclarations table cancelled a report in one click (it unhides the practitioner for everyone)."""
    doctor = offer("ui5-doc", name="Dr Marc SIGNALÉ", lat=AGEN["lat"], lon=AGEN["lon"], national_id="810000005005")
    ui_world.put("offers", [doctor])
    csrf = sign_in(web, "regulator")
    reported = web.post("/app/signaler", data={"csrf": csrf, "offer_id": doctor["id"], "kind": "unavailable",
                                              "confirmer": "oui"})   # the confirmed step (ui-dsfr)
    assert reported.status_code == 200, reported.text[:300]
    page = web.get("/app/tableaux/declarations").text
    found = re.search(r'href="(/app/tableaux/declarations/([0-9a-zA-Z_-]+)/annuler)"', page)
    assert found, page[:3000]
    link, declaration_id = found.group(1), found.group(2)
    assert f'<form method="post" action="{link}"' not in page          # no one-click cancel left
    index = alias_name(ui_prefix, "declarations")
    confirm = web.get(link)
    assert confirm.status_code == 200 and "Annuler ce signalement ?" in confirm.text
    assert "Dr Marc SIGNALÉ" in confirm.text and "de nouveau proposé dans la recherche" in confirm.text
    assert es.get(index=index, id=declaration_id)["_source"]["active"] is True
    done = web.post(link, data={"csrf": csrf})
    assert done.status_code == 303 and "message=" in done.headers["location"]
    assert es.get(index=index, id=declaration_id)["_source"]["active"] is False
    assert "Signalement annulé." in text_of(web.get(done.headers["location"]).text)
    assert "déjà annulé" in text_of(web.get(web.get(link).headers["location"]).text)
    ui_world.delete("offers", [doctor["id"]])
