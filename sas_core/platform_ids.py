"""The platform's technical identifier of an account, as vendors see it (system ``urn:oid:1.2.250.1.213.3.6``,
type INTRN).

The guide's FAQ says this identifier is a UUID and that vendors may check it with a regular expression.
Accounts are keyed by the identity provider's subject, which need not be a UUID (``sas token --sub``, other
IdPs), so the identifier sent is the subject itself when it already is a UUID, otherwise a name-based UUID
(RFC 4122 version 5) of it: stable across logins and processes, nothing to store to compute it. Documents
keep it (``platform_id``) so that a vendor's report naming it finds its account and orientations back.
"""

from __future__ import annotations

import uuid

#: The namespace of our name-based UUIDs: derived from the platform's OID, fixed forever (changing it would
#: give every regulator without national id a new identity at every vendor).
PLATFORM_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_OID, "1.2.250.1.213.3.6")


def platform_uuid(account_id: str) -> str:
    """The account's INTRN identifier: ``account_id`` when it is a UUID (canonical lowercase form), else the
    version-5 UUID of it in the platform's namespace."""
    text = str(account_id).strip()
    try:
        parsed = uuid.UUID(text)
    except ValueError:
        parsed = None
    if parsed is not None and str(parsed) == text.lower():
        return str(parsed)
    return str(uuid.uuid5(PLATFORM_NAMESPACE, text))
