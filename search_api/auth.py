"""Bearer-token authentication and role checks.

``dev`` mode: tokens are HS256 JWTs signed with a local key (``sas token`` prints one).
``oidc`` mode: tokens come from the configured identity provider and are verified with its JWKS
(signature, issuer, audience, expiry with leeway) by PyJWT.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import jwt
from cachetools import TLRUCache
from jwt.types import Options

from sas_core.errors import ConfigurationError, Forbidden, Unauthenticated
from sas_core.settings import Settings
from sas_core.territories import is_territory

DEV_ISSUER = "sas-platform-dev"
AUDIENCE = "sas-platform"
#: Verified tokens remembered (by their exact string) until they expire, at most this long: a key
#: withdrawn from the identity provider's key set stops being honoured within this delay.
TOKEN_CACHE_MAX_S = 300.0
TOKEN_CACHE_ENTRIES = 10_000


class Role(StrEnum):
    OSNP = "osnp"
    REGULATOR = "regulator"
    EFFECTEUR = "effecteur"
    STRUCTURE_MANAGER = "structure_manager"
    ACCOUNT_MANAGER = "account_manager"
    ADMIN = "admin"
    INTEGRATOR = "integrator"
    VENDOR = "vendor"


@dataclass(frozen=True)
class Principal:
    """Who is calling: from a verified token."""

    sub: str
    roles: frozenset[Role]
    territories: frozenset[str] = field(default_factory=frozenset)
    national_id: str | None = None
    name: str | None = None
    structure_id: str | None = None
    #: Extra slot types an integrator key is granted beyond PUBLIC (claim ``slot_types``).
    slot_types: frozenset[str] = field(default_factory=frozenset)

    def has_any(self, *roles: Role) -> bool:
        return bool(self.roles.intersection(roles))


def dev_signing_key(settings: Settings) -> str:
    """The dev-mode HS256 key: from settings, else generated once into ``<cache_dir>/dev-signing-key``."""
    if settings.dev_signing_key is not None:
        return settings.dev_signing_key.get_secret_value()
    key_file: Path = settings.cache_dir / "dev-signing-key"
    if not key_file.is_file():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        candidate = secrets.token_urlsafe(48)
        tmp = key_file.with_suffix(f".{uuid.uuid4().hex}")
        tmp.write_text(candidate)
        tmp.chmod(0o600)
        try:
            tmp.rename(key_file) if not key_file.exists() else tmp.unlink()
        except OSError:
            tmp.unlink(missing_ok=True)
    return key_file.read_text().strip()


def issue_dev_token(
    *,
    settings: Settings,
    roles: list[str],
    territories: list[str],
    sub: str | None = None,
    national_id: str | None = None,
    name: str | None = None,
    structure_id: str | None = None,
    slot_types: list[str] | None = None,
    ttl_s: int | None = None,
) -> str:
    """A signed dev token carrying roles, territories and (effecteurs) the national id."""
    if settings.auth_mode != "dev":
        raise ConfigurationError("dev tokens can only be issued when SAS_AUTH_MODE=dev")
    for role in roles:
        Role(role)  # raises ValueError on an unknown role
    for territory in territories:
        if not is_territory(territory):
            raise ValueError(f"not a territory code: {territory!r} (expected e.g. SAS-92)")
    now = int(time.time())
    claims = {
        "iss": DEV_ISSUER,
        "aud": AUDIENCE,
        "sub": sub or f"dev-{uuid.uuid4()}",
        "iat": now,
        "nbf": now,
        "exp": now + (ttl_s or settings.token_ttl_s),
        "roles": roles,
        "territories": territories,
    }
    if national_id:
        claims["national_id"] = national_id
    if name:
        claims["name"] = name
    if structure_id:
        claims["structure_id"] = structure_id
    if slot_types:
        claims["slot_types"] = list(slot_types)
    return jwt.encode(claims, dev_signing_key(settings), algorithm="HS256")


class TokenVerifier:
    """Verifies bearer tokens according to ``settings.auth_mode``; built once per app."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKClient | None = None
        if settings.auth_mode == "oidc":
            if not (settings.oidc_issuer and settings.oidc_audience and settings.oidc_jwks_url):
                raise ConfigurationError(
                    "SAS_AUTH_MODE=oidc needs SAS_OIDC_ISSUER, SAS_OIDC_AUDIENCE and SAS_OIDC_JWKS_URL"
                )
            # PyJWKClient caches keys and refetches the set when a token names an unknown key id.
            self._jwks = jwt.PyJWKClient(
                settings.oidc_jwks_url, cache_keys=False, lifespan=settings.oidc_jwks_cache_s,
                cooldown_duration=settings.oidc_jwks_refresh_cooldown_s, timeout=5,
            )
        # Verifying a token costs a signature check, a claims check and, in dev mode, a read of the key
        # file: tens of microseconds to milliseconds on every request. An operator sends the same token
        # for hours, so a verified token is remembered until its expiry (``exp``, without leeway), at
        # most ``TOKEN_CACHE_MAX_S``; only successfully verified tokens are remembered.
        self._verified: TLRUCache[str, tuple[Principal, float]] = TLRUCache(
            maxsize=TOKEN_CACHE_ENTRIES, ttu=_until_expiry, timer=time.monotonic)
        self._verified_lock = threading.Lock()
        self._dev_key: str | None = None

    def cached(self, token: str) -> Principal | None:
        """The principal of ``token`` when it was verified lately and has not expired; ``None`` otherwise
        (then ``verify`` decides). No I/O: safe to call on the event loop."""
        with self._verified_lock:
            entry = self._verified.get(token)
        return entry[0] if entry is not None else None

    def verify(self, token: str) -> Principal:
        """Decode and verify ``token`` (or recall it, verified lately and not expired); raise
        ``Unauthenticated`` with the reason when it is not valid."""
        known = self.cached(token)
        if known is not None:
            return known
        settings = self._settings
        options: Options = {"require": ["exp", "iat", "sub"]}
        try:
            if self._jwks is not None:
                signing_key = self._jwks.get_signing_key_from_jwt(token).key
                claims = jwt.decode(
                    token, signing_key, algorithms=settings.oidc_algorithms,
                    audience=settings.oidc_audience, issuer=settings.oidc_issuer,
                    leeway=settings.jwt_leeway_s, options=options,
                )
            else:
                if self._dev_key is None:
                    self._dev_key = dev_signing_key(settings)
                claims = jwt.decode(
                    token, self._dev_key, algorithms=["HS256"], audience=AUDIENCE,
                    issuer=DEV_ISSUER, leeway=settings.jwt_leeway_s, options=options,
                )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.PyJWKClientError as exc:
            raise Unauthenticated(f"token signing key not found: {exc}") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from exc
        principal = principal_from_claims(claims)
        remaining_s = float(claims["exp"]) - time.time()
        if remaining_s > 0:
            with self._verified_lock:
                self._verified[token] = (principal, min(remaining_s, TOKEN_CACHE_MAX_S))
        return principal


def _until_expiry(_token: str, entry: tuple[Principal, float], now: float) -> float:
    """``TLRUCache`` time-to-use: the entry lives the seconds stored with it."""
    return now + entry[1]


def principal_from_claims(claims: dict) -> Principal:
    """Map verified claims to a ``Principal`` (unknown roles are ignored, not trusted).

    A signed token may still carry claims of the wrong type (an identity provider mapping a number or a
    list into ``national_id``): ``Unauthenticated`` naming the claim, never a 500 further down."""
    raw_roles = _words(claims, "roles")
    roles = frozenset(Role(r) for r in raw_roles if r in Role.__members__.values())
    territories = _words(claims, "territories")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise Unauthenticated("token claim 'sub' must be a non-empty string")
    return Principal(
        sub=claims["sub"],
        roles=roles,
        territories=frozenset(t for t in territories if is_territory(t)),
        national_id=_text_claim(claims, "national_id"),
        name=_text_claim(claims, "name"),
        structure_id=_text_claim(claims, "structure_id"),
        slot_types=_slot_types(claims.get("slot_types")),
    )


def _words(claims: dict, name: str) -> list[str]:
    """A claim holding a list of strings or one space-separated string (absent: empty)."""
    raw = claims.get(name)
    if raw is None:
        return []
    if isinstance(raw, str):
        return raw.split()
    if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
        return raw
    raise Unauthenticated(f"token claim {name!r} must be a list of strings or a space-separated string")


def _text_claim(claims: dict, name: str) -> str | None:
    """An optional string claim (``None`` when absent or empty)."""
    raw = claims.get(name)
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise Unauthenticated(f"token claim {name!r} must be a string, not {type(raw).__name__}")
    return raw


def _slot_types(raw) -> frozenset[str]:
    """The ``slot_types`` claim as a set of upper-case codes (space-separated string or list)."""
    if isinstance(raw, str):
        raw = raw.split()
    if not isinstance(raw, list):
        return frozenset()
    return frozenset(t.strip().upper() for t in raw if isinstance(t, str) and t.strip())


def require_role(principal: Principal, *allowed: Role) -> Principal:
    """Raise ``Forbidden`` unless the principal has one of ``allowed`` (no roles: any authenticated)."""
    if allowed and not principal.has_any(*allowed):
        raise Forbidden(f"this action needs one of the roles {sorted(r.value for r in allowed)}")
    return principal
