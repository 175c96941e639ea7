"""Integrator API keys: ``sas_<id>_<secret>``; only the SHA-256 of the secret is stored.

The secret has 256 bits of entropy, so a plain SHA-256 (not a slow password hash) is the right tool:
nobody can brute-force it, and verification stays fast on the search path.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from cachetools import TTLCache

from mappings.api_keys import ApiKeyDoc
from sas_core.clock import utcnow
from sas_core.errors import NotFound, Unauthenticated
from sas_core.territories import is_territory
from search_api.auth import Principal, Role
from search_api.executor import Executor
from search_api.query.admin import api_keys_body

KEY_PREFIX = "sas_"
_KEY_ID = re.compile(r"[0-9a-f]{1,64}")
_SLOT_TYPES = {"PUBLIC", "PRO", "SNP", "CPTS"}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(raw: str) -> tuple[str, str]:
    if not raw.startswith(KEY_PREFIX) or raw.count("_") < 2:
        raise Unauthenticated("malformed API key")
    key_id, _, secret = raw[len(KEY_PREFIX):].partition("_")
    # Ids are hexadecimal (``create``): anything else is refused without an Elasticsearch read.
    if not key_id or not secret or not _KEY_ID.fullmatch(key_id):
        raise Unauthenticated("malformed API key")
    return key_id, secret


class ApiKeyStore:
    """Create, list, revoke and verify API keys in the ``api_keys`` index (through the executor)."""

    def __init__(self, *, executor: Executor, cache_s: float) -> None:
        self._executor = executor
        # key id → (secret digest, principal) of what the index said lately: an active key, or
        # (None, None) for an id that is unknown or revoked, so that the same wrong key sent again costs no
        # Elasticsearch read either (random ones are left to the per-address failure throttle).
        self._cache: TTLCache[str, tuple[str, Principal] | tuple[None, None]] | None = (
            TTLCache(maxsize=10_000, ttl=cache_s) if cache_s > 0 else None)

    def create(self, *, name: str, territories: list[str], slot_types: list[str] | None = None,
               created_by: str | None = None) -> tuple[str, ApiKeyDoc]:
        """A new key: returns the raw key (shown once) and the stored document."""
        for territory in territories:
            if not is_territory(territory):
                raise ValueError(f"not a territory code: {territory!r}")
        granted = sorted({t.upper() for t in slot_types or []})
        unknown = set(granted) - _SLOT_TYPES
        if unknown:
            raise ValueError(f"unknown slot types {sorted(unknown)}; allowed: {sorted(_SLOT_TYPES)}")
        key_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        doc = ApiKeyDoc(id=key_id, name=name, secret_sha256=_digest(secret), territories=sorted(territories),
                        slot_types=granted, created_at=utcnow(), created_by=created_by)
        self._executor.create_document(index="api_keys", doc_id=key_id, document=doc.model_dump(mode="json"),
                                       refresh="wait_for")
        if self._cache is not None:
            self._cache.pop(key_id, None)
        return f"{KEY_PREFIX}{key_id}_{secret}", doc

    def list(self) -> list[ApiKeyDoc]:
        hits = self._executor.search(index="api_keys", body=api_keys_body())["hits"]["hits"]
        return [ApiKeyDoc.model_validate(h["_source"]) for h in hits]

    def revoke(self, *, key_id: str) -> ApiKeyDoc:
        current = self._get(key_id)
        if current is None:
            raise NotFound(f"no API key {key_id!r}")
        if current.active:
            now = utcnow()
            self._executor.update_document(index="api_keys", doc_id=key_id, refresh="wait_for",
                                           fields={"active": False, "revoked_at": now.isoformat()})
            current = current.model_copy(update={"active": False, "revoked_at": now})
        if self._cache is not None:
            self._cache.pop(key_id, None)
        return current

    def cached(self, raw: str) -> Principal | None:
        """The principal of a key verified within the cache delay (no I/O; ``None``: call ``verify``)."""
        if self._cache is None:
            return None
        try:
            key_id, secret = _split(raw)
        except Unauthenticated:
            return None
        cached = self._cache.get(key_id)
        if cached is not None and cached[0] is not None and hmac.compare_digest(cached[0], _digest(secret)):
            return cached[1]
        return None

    def verify(self, raw: str) -> Principal:
        """The principal of a valid, active key; ``Unauthenticated`` otherwise."""
        key_id, secret = _split(raw)
        cached = self._cache.get(key_id) if self._cache is not None else None
        if cached is not None:
            if cached[0] is not None and hmac.compare_digest(cached[0], _digest(secret)):
                return cached[1]
            raise Unauthenticated("invalid or revoked API key")
        doc = self._get(key_id)
        if doc is None or not doc.active:
            if self._cache is not None:
                self._cache[key_id] = (None, None)
            raise Unauthenticated("invalid or revoked API key")
        principal = Principal(
            sub=f"apikey:{doc.id}", roles=frozenset(Role(r) for r in doc.roles if r in Role.__members__.values()),
            territories=frozenset(doc.territories), name=doc.name, slot_types=frozenset(doc.slot_types),
        )
        if self._cache is not None:
            self._cache[key_id] = (doc.secret_sha256, principal)
        if not hmac.compare_digest(doc.secret_sha256, _digest(secret)):
            raise Unauthenticated("invalid or revoked API key")
        return principal

    def _get(self, key_id: str) -> ApiKeyDoc | None:
        found = self._executor.get_document(index="api_keys", doc_id=key_id)
        return ApiKeyDoc.model_validate(found["_source"]) if found is not None else None
