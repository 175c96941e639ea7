"""Regulator accounts and their synchronisation to vendors (INT_R02).

- At **login** (``POST /v1/accounts/login``) the caller's account is created or updated from his token
  and the details he gives, then pushed to every vendor that still needs it (see *When a vendor is
  pushed to*). First push = ``POST Practitioner``; later ones = conditional ``PUT Practitioner?identifier=…``
  (idempotent: it creates when the vendor lost it).
- On **removal** (``DELETE /v1/accounts/{id}``) ``active = false`` is pushed at once to every vendor that
  may hold the account.

**Identifier change** (the guide's FAQ): each vendor's ``known_identifier`` (``system|value``) is the
identifier it accepted last. The conditional update goes there, the new identifier in the body; so an
account known by its platform UUID that gains a national id is sent to ``?identifier=<platform>|<uuid>``,
and once accepted the vendor knows it by the national id, which later updates and the deactivation use.

**When a vendor is pushed to** (the per-vendor ``state``):

- the account lacks an element FrPractitionerRegul requires (first name, e-mail): nothing is sent
  (certified vendors refuse it), ``sync_missing`` on the account and ``blocked`` + ``missing`` per vendor
  say what to fill in; later logins send nothing either — the account is pushed as soon as it is
  completed (its body changes);
- the vendor accepted this very body (``fingerprint``): nothing to send;
- the vendor refused this very body with 400 / 422 (``rejected``, ``rejected_fingerprint``): not resent —
  it would be refused again — until the account changes;
- otherwise (never pushed, changed, or last push failed transiently: ``failed``) it is pushed.

A manager may not remove the first name or e-mail of an account a vendor holds: the vendor could then be
sent neither the change nor, later, the deactivation.

**Who owns what** (security):

- the identity fields (``IDENTITY_FIELDS``: names, e-mail, national id) are the holder's: once he has logged
  in, the login (his token, and what he gives at login) is their only source — a manager's ``PUT`` may not
  change them (409) and sends the rest only;
- an account a manager pre-created (never logged in) keeps the manager's identity values at the first login
  only where the login gives none *and* that manager managed every territory the login brings (the login's
  territories within the account's): a manager of another territory who pre-created someone's subject
  leaves nothing behind — neither his e-mail or national id, nor his removal;
- an account without territory is nobody's: only an admin manages it (the empty set is a subset of every
  manager's territories);
- an account outside a manager's territories does not exist for him: ``GET``, ``PUT`` and ``DELETE`` all
  answer 404 (a 403 there would tell that the subject exists).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from connectors.vendors.config import VendorConfig
from connectors.vendors_accounts import (
    AccountsClient,
    AccountSyncError,
    PushResult,
    account_identifier,
    fingerprint,
    identifier_key,
    missing_elements,
    practitioner_resource,
    resource_key,
)
from mappings.accounts import AccountDoc
from sas_core.clock import utcnow
from sas_core.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from sas_core.platform_ids import platform_uuid
from sas_core.settings import Settings
from sas_core.territories import is_territory
from search_api.auth import Principal, Role
from search_api.workflow.store import DocStore

log = logging.getLogger(__name__)
INDEX = "accounts"
SYNCED_ROLES = {"regulator", "osnp"}
PARALLEL_VENDORS = 8
#: Fields that describe the person: set by his login, never overwritten by a manager once he has logged in.
IDENTITY_FIELDS = ("family_name", "given_name", "email", "national_id")


class AccountService:
    def __init__(self, *, store: DocStore, settings: Settings, vendors: Callable[[], list[VendorConfig]],
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.settings = settings
        self.vendors = vendors
        self.clock = clock

    def get(self, account_id: str) -> dict:
        found = self.store.get(INDEX, account_id)
        if found is None:
            raise NotFound(f"no account {account_id}")
        return _completed(found.source)   # documents written before sync_missing existed get it too

    # -- writing ------------------------------------------------------------------------------------

    def _save(self, account_id: str, changes: dict, *, create_defaults: dict,
              check=None) -> dict:
        """Create or update the account under compare-and-set (``check(current_source)`` may refuse, or
        return the changes to apply to that very version instead of ``changes``)."""
        for _ in range(10):
            now = self.clock().isoformat()
            current = self.store.get(INDEX, account_id)
            if current is None:
                document = _completed({**create_defaults, **changes, "id": account_id,
                                       "platform_id": platform_uuid(account_id), "created_at": now,
                                       "updated_at": now})
                AccountDoc.model_validate(document)
                if self.store.create(INDEX, account_id, document):
                    return document
                continue
            decided = check(current.source) if check is not None else None
            applied = decided if isinstance(decided, dict) else changes
            document = _completed({**current.source, **applied, "platform_id": platform_uuid(account_id),
                                   "updated_at": now}, before=current.source)
            AccountDoc.model_validate(document)
            if self.store.replace(INDEX, current, document):
                return document
        raise Conflict(f"account {account_id} is being changed by others; retry")

    def login(self, principal: Principal, *, family_name: str | None, given_name: str | None,
              email: str | None) -> tuple[dict, list[dict]]:
        """The login hook: record the caller's account, then push it where needed."""
        if not principal.has_any(Role.REGULATOR, Role.OSNP):
            raise Forbidden("only regulator and OSNP accounts are synchronised to vendors")
        for _ in range(10):
            existing = self.store.get(INDEX, principal.sub)
            changes = self._login_changes(principal, existing.source if existing is not None else {},
                                          family_name=family_name, given_name=given_name, email=email)
            read = existing.source.get("updated_at") if existing is not None else None

            def unchanged_since_read(current: dict, read: str | None = read) -> None:
                # The changes were decided on the version read: a manager's write in between is looked at again.
                if current.get("updated_at") != read:
                    raise _Reread()

            try:
                account = self._save(principal.sub, changes, create_defaults={"vendor_sync": []},
                                     check=unchanged_since_read)
            except _Reread:
                continue
            return self.sync(account["id"])
        raise Conflict(f"account {principal.sub} is being changed by others; retry")

    def _login_changes(self, principal: Principal, source: dict, *, family_name: str | None,
                       given_name: str | None, email: str | None) -> dict:
        logged_in_before = bool(source.get("last_login_at"))
        if not logged_in_before and source and not _pre_created_by_his_manager(source, principal):
            # Pre-created under this subject by a manager (or an admin) of other territories: nothing he wrote
            # about the person is kept — not his identity values, nor his removal (a lock-out).
            source = {}
        if source.get("removed_at"):
            raise Forbidden("this account was removed")
        words = principal.name.split() if principal.name else []
        token_family = words[-1] if words else None
        token_given = " ".join(words[:-1]) if len(words) > 1 else None
        if logged_in_before:
            # The stored values are this person's own earlier logins: they stay unless he gives others.
            family = family_name or source.get("family_name") or token_family
            given = given_name or source.get("given_name") or token_given
        else:
            # The login's values win over those a manager pre-filled (kept only where the login has none).
            family = family_name or token_family or source.get("family_name")
            given = given_name or token_given or source.get("given_name")
        if not family:
            raise BadRequest("family_name is needed the first time (the token carries no name)")
        return {"family_name": family, "given_name": given, "email": email or source.get("email"),
                "national_id": principal.national_id or source.get("national_id"),
                "roles": sorted(r.value for r in principal.roles), "territories": sorted(principal.territories),
                "active": True, "removed_at": None, "last_login_at": self.clock().isoformat()}

    def upsert(self, manager: Principal, account_id: str, *, identity: dict[str, str | None], roles: list[str],
               territories: list[str]) -> tuple[dict, list[dict]]:
        """An account manager creates or updates an account of his territories, then pushes it.

        ``identity``: the ``IDENTITY_FIELDS`` the manager sent (absent: not sent). For an account that has
        logged in they are the holder's: absent or equal is fine, another value is a 409. Otherwise the
        ``PUT`` replaces them (absent = none) and ``family_name`` is required."""
        self._check_manager(manager, territories)
        _check_account_fields(territories=territories, identity=identity)
        base = {"roles": sorted(set(roles)), "territories": sorted(set(territories)), "active": True,
                "removed_at": None}

        def changes_for(source: dict | None) -> dict:
            if source is not None and source.get("last_login_at"):
                changed = sorted(f for f, v in identity.items() if v != source.get(f))
                if changed:
                    raise Conflict(f"{', '.join(changed)} of account {account_id} come from its holder's login "
                                   "(identity provider) and cannot be changed by a manager")
                return base
            if not identity.get("family_name"):
                raise Unprocessable("family_name is required (the account has not logged in yet)")
            return {**base, **{f: identity.get(f) for f in IDENTITY_FIELDS}}

        def allowed(source: dict) -> dict:
            if not self.manages(manager, source.get("territories") or []):
                raise NotFound(f"no account {account_id}")      # like GET: not his, so not there for him
            changes = changes_for(source)
            # A vendor holding the account must keep receiving conformant bodies (updates, deactivation).
            holders = sorted(s["vendor"] for s in source.get("vendor_sync") or [] if s.get("known_identifier"))
            lost = [ENGLISH[m] for m in missing_elements({**source, **changes}) if m not in missing_elements(source)]
            if holders and lost:
                raise Unprocessable(f"the {' and '.join(lost)} cannot be removed: vendors {', '.join(holders)} hold "
                                    "this account and FrPractitionerRegul requires them")
            return changes

        current = self.store.get(INDEX, account_id)
        changes = allowed(current.source) if current is not None else changes_for(None)
        account = self._save(account_id, changes, create_defaults={"vendor_sync": []}, check=allowed)
        return self.sync(account["id"])

    def remove(self, manager: Principal, account_id: str) -> tuple[dict, list[dict]]:
        """Deactivate the account and push ``active = false`` to every vendor now."""
        if not manager.has_any(Role.ADMIN, Role.ACCOUNT_MANAGER):
            raise Forbidden("only account managers manage regulator accounts")

        def allowed(source: dict) -> None:
            if not self.manages(manager, source.get("territories") or []):
                raise NotFound(f"no account {account_id}")      # like GET (no existence oracle)

        current = self.store.get(INDEX, account_id)
        if current is None:
            raise NotFound(f"no account {account_id}")
        allowed(current.source)
        account = self._save(account_id, {"active": False, "removed_at": self.clock().isoformat()}, create_defaults={},
                             check=allowed)
        return self.sync(account["id"], everyone=True)

    def list_managed(self, manager: Principal, *, blocked: bool = False, size: int = 100) -> list[dict]:
        """The accounts an account manager manages (all of their territories are his; admins: all),
        current ones only; ``blocked``: only those that cannot be pushed (``sync_missing``)."""
        if not manager.has_any(Role.ADMIN, Role.ACCOUNT_MANAGER):
            raise Forbidden("only account managers manage regulator accounts")
        territories = None if manager.has_any(Role.ADMIN) else sorted(manager.territories)
        if territories == []:
            return []
        hits = self.store.search(INDEX, managed_accounts_body(territories=territories, blocked=blocked,
                                                              size=size))["hits"]["hits"]
        accounts = [_completed(hit["_source"]) for hit in hits]
        if territories is not None:
            # An account spanning a territory the manager does not manage is not his (as GET /{id}).
            accounts = [a for a in accounts if self.manages(manager, a.get("territories") or [])]
        return accounts

    @staticmethod
    def manages(principal: Principal, territories: list[str] | set[str] | frozenset[str]) -> bool:
        """Whether ``principal`` manages an account of ``territories``: admins every account; an account
        manager those whose territories are all his — and never one without territory (nobody's)."""
        if principal.has_any(Role.ADMIN):
            return True
        return (principal.has_any(Role.ACCOUNT_MANAGER) and bool(territories)
                and set(territories) <= set(principal.territories))

    @staticmethod
    def _check_manager(manager: Principal, territories: list[str]) -> None:
        """The territories a manager asks for (the body, not the stored account: no existence is told)."""
        if manager.has_any(Role.ADMIN):
            return
        if not manager.has_any(Role.ACCOUNT_MANAGER):
            raise Forbidden("only account managers manage regulator accounts")
        if not territories:
            raise Forbidden("an account without territory is managed by admins only")
        outside = set(territories) - set(manager.territories)
        if outside:
            raise Forbidden(f"you do not manage {', '.join(sorted(outside))}")

    # -- pushing ------------------------------------------------------------------------------------

    def sync(self, account_id: str, *, everyone: bool = False) -> tuple[dict, list[dict]]:
        """Push the account to the vendors that need it (``everyone``: also those whose last push of this
        very body was accepted or refused). Returns the saved account and one result per vendor acted on."""
        account = self.get(account_id)
        active = bool(account.get("active", True))
        if not SYNCED_ROLES.intersection(account.get("roles") or []) and active:
            return account, []
        resource = practitioner_resource(account)
        wanted = fingerprint(resource)
        missing = missing_elements(account)
        previous = {s["vendor"]: s for s in account.get("vendor_sync") or []}
        actions = self._sync_actions(account, previous, wanted=wanted, missing=missing, active=active,
                                     everyone=everyone)
        if not actions:
            return account, []
        targets = {v.name: v for v in self.vendors() if v.name in actions}

        def push(vendor: VendorConfig) -> dict:
            return self._push(vendor, actions[vendor.name], account_id=account_id, account=account,
                              resource=resource, wanted=wanted, missing=missing, active=active, previous=previous)

        with ThreadPoolExecutor(max_workers=min(PARALLEL_VENDORS, len(targets))) as pool:
            results = list(pool.map(push, targets.values()))
        account = self._save(account_id, {"vendor_sync": sorted(previous.values(), key=lambda s: s["vendor"])},
                             create_defaults={})
        return account, results

    def _sync_actions(self, account: dict, previous: dict[str, dict], *, wanted: str, missing: list[str],
                      active: bool, everyone: bool) -> dict[str, str]:
        """What each enabled vendor gets: ``block`` (the account lacks what FrPractitionerRegul requires)
        or ``push``; vendors already up to date (or that refused this very body) are left out."""
        actions: dict[str, str] = {}
        for vendor in self.vendors():
            if not vendor.enabled:
                continue
            entry = previous.get(vendor.name) or {}
            known = _known_identifier(entry, account)
            if not active and known is None and not entry.get("last_attempt_at"):
                # Removed, and never even tried at this vendor: nothing to undo. (A vendor tried without an
                # accepted answer — a timeout — may hold it: it gets the deactivation, at worst as a create.)
                continue
            if missing and active:
                if entry.get("state") != "blocked" or entry.get("missing") != missing:
                    actions[vendor.name] = "block"
                continue
            changed_or_failed = entry.get("fingerprint") != wanted or bool(entry.get("last_error"))
            if everyone or (changed_or_failed and entry.get("rejected_fingerprint") != wanted):
                actions[vendor.name] = "push"
        return actions

    def _push(self, vendor: VendorConfig, action: str, *, account_id: str, account: dict, resource: dict,
              wanted: str, missing: list[str], active: bool, previous: dict[str, dict]) -> dict:
        """Act on one vendor (``action`` of ``_sync_actions``), its ``vendor_sync`` entry updated in
        ``previous``; the result reported for that vendor."""
        entry = dict(previous.get(vendor.name) or {"vendor": vendor.name})
        if action == "block":
            entry.update(state="blocked", missing=missing)
            previous[vendor.name] = entry
            return {"vendor": vendor.name, "ok": False, "blocked": True, "missing": missing}
        entry["last_attempt_at"] = self.clock().isoformat()
        known = _known_identifier(entry, account)
        try:
            result = self._send(vendor, resource, known=known, active=active)
            entry.update(state="synced", synced_at=self.clock().isoformat(), active=active, fingerprint=wanted,
                         known_identifier=resource_key(resource), vendor_resource=result.location,
                         last_error=None, rejected_fingerprint=None, missing=[])
            return {"vendor": vendor.name, "ok": True, "status": result.status}
        except AccountSyncError as exc:
            log.warning("account push failed", extra={"vendor": vendor.name, "account_id": account_id,
                                                      "reason": exc.reason})
            entry.update(last_error=exc.reason, missing=[])
            if exc.refused:
                entry.update(state="rejected", rejected_fingerprint=wanted)
            else:
                entry["state"] = "failed"
            return {"vendor": vendor.name, "ok": False, "status": exc.status, "error": str(exc)}
        finally:
            previous[vendor.name] = entry

    def _send(self, vendor: VendorConfig, resource: dict, *, known: str | None, active: bool) -> PushResult:
        """Create the account at the vendor (an update when it knew it already: 409), or update the one it
        holds under ``known``."""
        with AccountsClient(vendor, attempts=self.settings.account_sync_attempts,
                            timeout_s=self.settings.account_sync_timeout_s) as client:
            if known is None and active:
                try:
                    return client.create(resource)
                except AccountSyncError as exc:
                    if exc.status != 409:
                        raise
                    return client.upsert(resource)   # the vendor knew the account already
            return client.upsert(resource, target=known)


def _check_account_fields(*, territories: list[str], identity: dict[str, str | None]) -> None:
    """Territory codes and identity field names of a manager's ``PUT`` (400 otherwise)."""
    for territory in territories:
        if not is_territory(territory):
            raise BadRequest(f"not a territory code: {territory!r}")
    unknown = set(identity) - set(IDENTITY_FIELDS)
    if unknown:
        raise BadRequest(f"not identity fields: {', '.join(sorted(unknown))}")


def managed_accounts_body(*, territories: list[str] | None, blocked: bool, size: int) -> dict:
    """Query of ``list_managed`` (pure): current accounts of ``territories`` (``None``: every territory)."""
    filters: list[dict] = []
    if territories is not None:
        filters.append({"terms": {"territories": territories}})
    if blocked:
        filters.append({"exists": {"field": "sync_missing"}})
    return {"size": size, "sort": [{"family_name": "asc"}, {"id": "asc"}],
            "query": {"bool": {"filter": filters, "must_not": [{"exists": {"field": "removed_at"}}]}}}


#: French labels of the missing elements (the accounts page), and English ones (API messages).
LABELS = {"name.family": "le nom", "name.given": "le prénom", "telecom.email": "l’adresse e-mail"}
ENGLISH = {"name.family": "family name", "name.given": "first name", "telecom.email": "e-mail"}


def _completed(document: dict, *, before: dict | None = None) -> dict:
    """``sync_missing`` kept in step with the account's fields (only synchronised roles are concerned).

    ``before`` (the stored version being replaced): vendor entries written before ``known_identifier``
    existed get the identifier the account had then — what those pushes were sent under —, before a change
    of the account (a national id added) makes the current one differ."""
    concerned = SYNCED_ROLES.intersection(document.get("roles") or [])
    document = {**document, "sync_missing": missing_elements(document) if concerned else []}
    if before is not None and any(s.get("synced_at") and not s.get("known_identifier")
                                  for s in document.get("vendor_sync") or []):
        legacy = identifier_key(*account_identifier(before)[:2])
        document["vendor_sync"] = [
            {**s, "known_identifier": legacy} if s.get("synced_at") and not s.get("known_identifier") else s
            for s in document["vendor_sync"]]
    return document


def trusted_identity(source: dict | None, principal: Principal) -> dict:
    """The stored account ``source`` of ``principal`` as far as it describes him: the whole of it once he has
    logged in, or when a manager of his pre-created it; ``{}`` when someone of other territories wrote it
    under his subject (their e-mail or national id must not reach his orientations and appointments)."""
    if not source:
        return {}
    if source.get("last_login_at") or _pre_created_by_his_manager(source, principal):
        return source
    return {}


def _pre_created_by_his_manager(source: dict, principal: Principal) -> bool:
    """Whether a never-logged-in account was written by someone who manages the person logging in: whoever
    wrote it managed every territory it names, so when the login's territories are among them the writer
    was his manager (or an admin). An account without territory, or a login bringing others: no."""
    territories = set(source.get("territories") or [])
    return bool(territories) and bool(principal.territories) and set(principal.territories) <= territories


class _Reread(Exception):
    """The account changed between the read a login decided on and its write: decide again."""


def _known_identifier(entry: dict, account: dict) -> str | None:
    """The identifier ``entry``'s vendor holds the account under; ``None`` if it never accepted it. Entries
    written before ``known_identifier`` existed name the account's current identifier (what was sent then)."""
    if entry.get("known_identifier"):
        return entry["known_identifier"]
    if entry.get("synced_at"):
        system, value, _ = account_identifier(account)
        return identifier_key(system, value)
    return None
