"""Web session document: one signed-in browser (``search_api/web/session.py``).

The cookie carries only a random session id; the document id is its SHA-256, so reading the index gives
nobody a cookie. The document holds the claims verified at login (never the bearer token itself, which
would work against the API), the session's CSRF token and its times: it ends at ``expires_at`` (the
absolute limit or the token's expiry, whichever comes first), after ``SAS_WEB_SESSION_IDLE_S`` without a
request (``last_seen_at``), or at logout (the document is deleted). No patient data.
"""

from __future__ import annotations

from datetime import datetime

from mappings.common import Doc


class WebSessionDoc(Doc):
    id: str                            # hex SHA-256 of the session id in the cookie
    sub: str                           # the token subject
    roles: list[str] = []
    territories: list[str] = []
    national_id: str | None = None     # effecteurs: the practitioner's own RPPS-based id (not a patient's)
    name: str | None = None
    structure_id: str | None = None
    slot_types: list[str] = []
    csrf: str                          # posted back by every form of the session
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
