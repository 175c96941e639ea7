"""Account document: a regulator / OSNP account, synchronised to vendors (INT_R02).

``sync_missing`` lists the FrPractitionerRegul elements the account lacks (``name.given``,
``telecom.email``, ``name.family``): such an account is not pushed (certified vendors refuse it) and its
managers are told what to fill in. ``vendor_sync`` records, per vendor:

- ``state``: ``synced`` (the vendor accepted the current body), ``failed`` (transient failure: retried at
  the next login or change), ``rejected`` (the vendor refused this very body with 400/422: not sent
  again until the body changes), ``blocked`` (incomplete account: nothing sent, ``missing`` says why);
- ``known_identifier``: ``system|value`` under which the vendor holds the account (set by an accepted
  push): the target of the next conditional update, so that an identifier change (platform UUID →
  national id, the guide's FAQ) is sent to the identifier the vendor knows;
- ``fingerprint`` of the body last accepted, ``rejected_fingerprint`` of the body last refused.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc

SyncState = Literal["synced", "failed", "rejected", "blocked"]


class VendorSync(Doc):
    vendor: str
    state: SyncState | None = None
    synced_at: datetime | None = None
    active: bool = True
    fingerprint: str | None = None     # hash of the Practitioner body last accepted by the vendor
    known_identifier: str | None = None  # "system|value" the vendor holds the account under
    vendor_resource: str | None = None  # the Location the vendor answered (Practitioner/<id>)
    last_attempt_at: datetime | None = None
    last_error: str | None = None
    rejected_fingerprint: str | None = None  # hash of the body the vendor refused (400/422)
    missing: list[str] = []            # blocked: the profile elements the account lacks


class AccountDoc(Doc):
    id: str                            # the token subject
    #: The INTRN identifier vendors know the account by (a UUID: sas_core.platform_ids.platform_uuid(id)).
    platform_id: str | None = None
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
    sync_missing: list[str] = []       # FrPractitionerRegul elements missing: not pushed until filled in
    vendor_sync: list[VendorSync] = []
