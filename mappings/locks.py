"""Lock document: a leader lease held in Elasticsearch (create-by-id, expiry, renewal)."""

from __future__ import annotations

from datetime import datetime

from mappings.common import Doc


class LockDoc(Doc):
    id: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
