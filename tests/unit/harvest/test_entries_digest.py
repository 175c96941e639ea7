"""The client's cut of a Bundle at its ``entry`` key: only a top-level key cuts; any doubt decodes."""

from __future__ import annotations

import orjson

from connectors.vendors.client import _entries_digest


def test_head_decoded_and_entries_hashed():
    entries = b'"entry":[{"resource":{"resourceType":"Slot","id":"a"}}]}'
    one = _entries_digest(b'{"resourceType":"Bundle","id":"1","total":1,' + entries)
    two = _entries_digest(b'{"resourceType": "Bundle", "id": "2", "total": 1, ' + entries)
    assert one is not None and two is not None
    assert one[0] == {"resourceType": "Bundle", "id": "1", "total": 1} and two[0]["id"] == "2"
    assert one[1] == two[1]
    other = _entries_digest(b'{"resourceType":"Bundle","id":"1","total":1,' + entries.replace(b'"a"', b'"b"'))
    assert other is not None and other[1] != one[1]


def test_entry_elsewhere_than_a_top_level_key_is_not_a_cut():
    for body in (
        {"resourceType": "Bundle", "meta": {"entry": 1}, "entry": []},               # nested key first
        {"resourceType": "Bundle", "link": [{"relation": "entry"}], "entry": []},    # a value
        {"resourceType": "Bundle", "note": 'say "entry": here', "entry": []},         # inside a string
        {"resourceType": "Bundle", "total": 0},                                       # no entry at all
    ):
        split = _entries_digest(orjson.dumps(body))
        assert split is None or split[0] == {k: v for k, v in body.items() if k != "entry"}, body
    assert _entries_digest(orjson.dumps({"resourceType": "Bundle", "total": 0})) is None
    assert _entries_digest(b'{"resourceType":"Bundle","meta":{"entry":1},"entry":[]}') is None
