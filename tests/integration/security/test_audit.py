"""Audit of orientation reads: a view, a list page and a CSV export each leave a ``sas.audit`` log record and
an ``audit`` document naming who and which orientations — never patient data — that admins can read."""

from __future__ import annotations

import csv
import io
import logging

from mappings.registry import alias_name
from tests.integration.security.test_isolation import world  # noqa: F401  (fixture)


def test_views_lists_and_exports_are_audited(api, es, settings, token_for, world, caplog):  # noqa: F811
    regulator = token_for("regulator", territories=["SAS-92"], sub="audit-reg-1", name="Claire MARTIN")
    with caplog.at_level(logging.INFO, logger="sas.audit"):
        assert api.get(f"/v1/orientations/{world['o92_mine']}", headers=regulator).status_code == 200
        page = api.get("/v1/orientations", headers=regulator, params={"status": "oriented", "size": 100})
        assert page.status_code == 200
        export = api.get("/v1/orientations/export.csv", headers=regulator)
        assert export.status_code == 200
        # refused reads leave no trace of orientations (nothing was shown)
        assert api.get(f"/v1/orientations/{world['o47']}", headers=regulator).status_code == 404

    audit_logs = [r for r in caplog.records if r.name == "sas.audit"]
    assert [r.audit["action"] for r in audit_logs] == ["view", "list", "export"]
    assert all(r.audit["actor"] == "audit-reg-1" for r in audit_logs)

    es.indices.refresh(index=alias_name(settings.index_prefix, "audit"))
    admin = token_for("admin", sub="audit-admin")
    answer = api.get("/v1/admin/audit", headers=admin, params={"actor": "audit-reg-1"})
    assert answer.status_code == 200, answer.text
    records = {r["action"]: r for r in answer.json()["results"]}
    assert set(records) == {"view", "list", "export"} and answer.json()["total"] == 3
    assert records["view"]["orientation_ids"] == [world["o92_mine"]]
    listed_ids = {o["id"] for o in page.json()["results"]}
    assert set(records["list"]["orientation_ids"]) == listed_ids
    assert records["list"]["orientation_count"] == len(listed_ids)
    assert '"statuses": ["oriented"]' in records["list"]["filters"]
    # Rows as a CSV reader sees them: a quoted cell may hold a line break (the CSV-injection tests write one).
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"), newline=""), delimiter=";"))
    assert records["export"]["orientation_count"] == len(rows) - 1
    assert world["o92_mine"] in records["export"]["orientation_ids"]
    assert world["o47"] not in records["export"]["orientation_ids"]
    for record in records.values():
        assert record["actor_roles"] == ["regulator"] and record["actor_territories"] == ["SAS-92"]
        assert record["actor_name"] == "Claire MARTIN"
        # staff identity, ids, counts and filters only: no field about a patient
        assert not {k for k in record if "patient" in k.lower()}

    by_orientation = api.get("/v1/admin/audit", headers=admin, params={"orientation_id": world["o92_mine"],
                                                                        "actor": "audit-reg-1"}).json()
    assert by_orientation["total"] == 3
    assert api.get("/v1/admin/audit", headers=regulator).status_code == 403


def test_web_pages_reading_orientations_are_audited_too(api, es, settings, token_for, world):  # noqa: F811
    """The web interface reads orientations through the same service: its tables and CSV are audited."""
    regulator = token_for("regulator", territories=["SAS-92"], sub="audit-web-reg")
    assert api.get("/app/tableaux/orientations", headers=regulator).status_code == 200
    assert api.get("/app/tableaux/orientations.csv", headers=regulator).status_code == 200
    es.indices.refresh(index=alias_name(settings.index_prefix, "audit"))
    records = api.get("/v1/admin/audit", headers=token_for("admin"), params={"actor": "audit-web-reg"}).json()
    assert sorted(r["action"] for r in records["results"]) == ["export", "list"]
    for record in records["results"]:
        assert world["o92_mine"] in record["orientation_ids"] and world["o47"] not in record["orientation_ids"]
