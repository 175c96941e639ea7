"""API key document: an integrator system's key, stored hashed, revocable, scoped to territories."""

from __future__ import annotations

from datetime import datetime

from mappings.common import Doc


class ApiKeyDoc(Doc):
    id: str                            # public part of the key, also the document id
    name: str                          # who it is for ("LRM Centre 47")
    secret_sha256: str                 # hex digest of the secret part; the secret itself is never stored
    roles: list[str] = ["integrator"]
    territories: list[str] = []
    slot_types: list[str] = []         # granted beyond PUBLIC
    created_at: datetime
    created_by: str | None = None
    revoked_at: datetime | None = None
    active: bool = True
