"""Account document: a regulator / OSNP account, synchronised to vendors (INT_R02).

``vendor_sync`` records, per vendor, what was last pushed (``fingerprint`` of the Practitioner body)
and when: a login pushes again only to the vendors whose fingerprint differs or whose last push
failed; a removal pushes ``active=false`` to every vendor at once.
"""

from __future__ import annotations

from datetime import datetime

from mappings.common import Doc


class VendorSync(Doc):
    vendor: str
    synced_at: datetime | None = None
    active: bool = True
    fingerprint: str | None = None     # hash of the Practitioner body last accepted by the vendor
    vendor_resource: str | None = None  # the Location the vendor answered (Practitioner/<id>)
    last_attempt_at: datetime | None = None
    last_error: str | None = None


class AccountDoc(Doc):
    id: str                            # platform UUID (the token subject)
    national_id: str | None = None
    family_name: str
    given_name: str | None = None
    email: str | None = None
    roles: list[str] = []
    territories: list[str] = []
    active: bool = True
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None = None
    removed_at: datetime | None = None
    vendor_sync: list[VendorSync] = []
