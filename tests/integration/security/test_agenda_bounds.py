"""Issue 15, points 14 and 8 (agenda part): the platform agenda took 500 items per call, dates up to 2199 and
any number of future slots per offer; a date near year 9999 answered 500. Now: at most ``agenda_max_items``
items per call, slots starting within ``agenda_horizon_days``, at most ``agenda_max_future_slots`` future
slots per offer (422 each), bounded years (422 in bodies, 400 in query strings). Real app, real Elasticsearch.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.integration.harvest.conftest import practitioner_offer, write_offers

DOCTOR = "810009992247"
OFFER = "agenda-sec-47"


@pytest.fixture(scope="module")
def offer(es, settings, indices):
    write_offers(es, settings, [
        practitioner_offer(offer_id=OFFER, national_id=DOCTOR, vendor=None, line="9 boulevard Carnot",
                           postcode="47000", city="Agen", lat=44.2040, lon=0.6170, departement="47",
                           family="CRENEAU", given="Paul"),
    ])
    return OFFER


def _items(count: int, *, start: datetime, minutes: int = 15) -> list[dict]:
    return [{"start": (start + timedelta(minutes=minutes * i)).isoformat(),
             "end": (start + timedelta(minutes=minutes * (i + 1))).isoformat()} for i in range(count)]


def _tomorrow() -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=1)).replace(minute=0, second=0, microsecond=0)


def test_too_many_items_per_call(api, token_for, settings, offer):
    me = token_for("effecteur", national_id=DOCTOR)
    answer = api.post("/v1/agenda/slots", headers=me,
                      json={"offer_id": OFFER, "items": _items(settings.agenda_max_items + 1, start=_tomorrow(),
                                                               minutes=5)})
    assert answer.status_code == 422, answer.text
    assert f"at most {settings.agenda_max_items}" in answer.json()["message"]


def test_slots_beyond_the_horizon_are_refused(api, token_for, settings, offer):
    me = token_for("effecteur", national_id=DOCTOR)
    far = {"offer_id": OFFER, "items": [{"start": "2199-12-31T08:00:00+01:00", "end": "2199-12-31T08:20:00+01:00"}]}
    answer = api.post("/v1/agenda/slots", headers=me, json=far)
    assert answer.status_code == 422, answer.text
    assert f"{settings.agenda_horizon_days} days" in answer.json()["message"]
    just_past = datetime.now(timezone.utc) + timedelta(days=settings.agenda_horizon_days, hours=1)
    assert api.post("/v1/agenda/slots", headers=me,
                    json={"offer_id": OFFER, "items": _items(1, start=just_past)}).status_code == 422


@pytest.mark.parametrize("start,end", [
    # Converting to UTC overflows past year 9999 (a 500 before).
    ("9999-12-31T23:00:00-14:00", "9999-12-31T23:30:00-14:00"),
    ("9999-12-31T22:00:00+00:00", "9999-12-31T23:59:59+00:00"),
])
def test_dates_near_9999_are_a_422_not_a_500(api, token_for, offer, start, end):
    me = token_for("effecteur", national_id=DOCTOR)
    answer = api.post("/v1/agenda/slots", headers=me, json={"offer_id": OFFER, "items": [{"start": start, "end": end}]})
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/json")


def test_listing_with_a_date_near_9999_is_a_400_not_a_500(api, token_for, offer):
    me = token_for("effecteur", national_id=DOCTOR)
    answer = api.get("/v1/agenda/slots", headers=me, params={"offer_id": OFFER, "from": "9999-12-31T23:00:00+00:00"})
    assert answer.status_code == 400, answer.text
    assert "between years" in answer.json()["message"]


def test_future_slots_per_offer_are_capped(settings, es, indices, token_for, offer):
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    capped = settings.model_copy(update={"agenda_max_future_slots": 5})
    me = token_for("effecteur", national_id=DOCTOR)
    start = _tomorrow() + timedelta(days=2)
    with TestClient(create_app(capped, es=es)) as client:
        first = client.post("/v1/agenda/slots", headers=me, json={"offer_id": OFFER, "items": _items(4, start=start)})
        assert first.status_code == 201, first.text
        over = client.post("/v1/agenda/slots", headers=me,
                           json={"offer_id": OFFER, "items": _items(2, start=start + timedelta(hours=2))})
        assert over.status_code == 422, over.text
        assert over.json()["details"]["held"] == 4 and "at most 5" in over.json()["message"]
        # Deleting frees room; the one left fits.
        created = first.json()["created"]
        assert client.delete(f"/v1/agenda/slots/{created[0]['id']}", headers=me).status_code == 204
        again = client.post("/v1/agenda/slots", headers=me,
                            json={"offer_id": OFFER, "items": _items(2, start=start + timedelta(hours=2))})
        assert again.status_code == 201, again.text
        # Read-your-writes: what was just published is listed at once.
        listed = client.get("/v1/agenda/slots", headers=me,
                            params={"offer_id": OFFER, "from": start.isoformat(),
                                    "to": (start + timedelta(days=1)).isoformat()}).json()
        assert len(listed) == 5
        for slot in listed:
            assert client.delete(f"/v1/agenda/slots/{slot['id']}", headers=me).status_code == 204


def test_parallel_publishing_does_not_slip_past_the_cap(settings, es, indices, token_for, offer):
    from concurrent.futures import ThreadPoolExecutor

    from fastapi.testclient import TestClient

    from search_api.app import create_app

    capped = settings.model_copy(update={"agenda_max_future_slots": 6})
    me = token_for("effecteur", national_id=DOCTOR)
    start = _tomorrow() + timedelta(days=5)
    with TestClient(create_app(capped, es=es)) as client:
        def fire(i: int) -> int:
            return client.post("/v1/agenda/slots", headers=me, json={
                "offer_id": OFFER, "items": _items(2, start=start + timedelta(hours=i))}).status_code

        for wave in range(3):
            with ThreadPoolExecutor(max_workers=8) as pool:
                codes = list(pool.map(fire, range(wave * 8, wave * 8 + 8)))
            assert set(codes) <= {201, 422, 429}, codes
        listed = client.get("/v1/agenda/slots", headers=me, params={
            "offer_id": OFFER, "from": start.isoformat(), "to": (start + timedelta(days=2)).isoformat()}).json()
        assert len(listed) == 6
        for slot in listed:
            assert client.delete(f"/v1/agenda/slots/{slot['id']}", headers=me).status_code == 204
