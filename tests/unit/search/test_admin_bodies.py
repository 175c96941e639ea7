"""Golden JSON of the administration stores' bodies (audit log, API keys, web sessions).

Regenerate after a deliberate change: ``SAS_REGEN_GOLDEN=1 pytest tests/unit/search/test_admin_bodies.py``
(then read the diff).
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from search_api.query import admin

GOLDEN = Path(__file__).with_name("golden_admin")
NOW = datetime(2025, 11, 5, 7, 0, tzinfo=timezone.utc)

CASES = {
    "admin_audit_filtered": lambda: admin.audit_records_body(actor="reg-agen-1", action="export",
                                                             orientation_id="0123456789abcdef", size=50),
    "admin_audit_all": lambda: admin.audit_records_body(actor=None, action=None, orientation_id=None, size=500),
    "admin_api_keys": lambda: admin.api_keys_body(),
    "admin_expired_sessions": lambda: admin.expired_sessions_body(now=NOW, idle=timedelta(hours=8), size=500),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    path = GOLDEN / f"{name}.json"
    text = json.dumps(CASES[name](), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("SAS_REGEN_GOLDEN") or not path.exists():
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed: regenerate deliberately"


def test_an_audit_filter_given_is_a_term_and_none_given_matches_everything():
    body = admin.audit_records_body(actor="apikey:1", action=None, orientation_id=None, size=10)
    assert body["query"] == {"bool": {"filter": [{"term": {"actor": "apikey:1"}}]}}
    assert admin.audit_records_body(actor=None, action=None, orientation_id=None, size=10)["query"] == \
        {"bool": {"filter": []}}


def test_golden_files_have_no_orphans():
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)
