"""Account document: a regulator / OSNP account, synchronised to vendors (INT_R02)."""

from __future__ import annotations

from datetime import datetime

from mappings.common import Doc


class VendorSync(Doc):
    vendor: str
    synced_at: datetime | None = None
    active: bool = True
    last_error: str | None = None


class AccountDoc(Doc):
    id: str                            # platform UUID
    national_id: str | None = None
    family_name: str
    given_name: str | None = None
    email: str | None = None
    roles: list[str] = []
    territories: list[str] = []
    active: bool = True
    created_at: datetime
    updated_at: datetime
    vendor_sync: list[VendorSync] = []
