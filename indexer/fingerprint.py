"""The one content fingerprint of indexed documents (``content_hash``, ``participation_hash``).

Document builders always produce their keys in the same order, so the plain ``orjson`` serialisation is
canonical without sorting keys; an already serialised document (the harvester's bytes) is hashed as is,
which gives the same fingerprint as its dict.
"""

from __future__ import annotations

import hashlib

import orjson


def fingerprint(value: object) -> str:
    """20 hex characters of BLAKE2b over the serialisation of ``value`` (``bytes``: taken as serialised)."""
    raw = value if isinstance(value, bytes) else orjson.dumps(value)
    return hashlib.blake2b(raw, digest_size=10).hexdigest()
