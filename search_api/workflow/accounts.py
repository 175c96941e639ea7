"""Regulator accounts and their synchronisation to vendors (INT_R02).

- At **login** (``POST /v1/accounts/login``) the caller's account is created or updated from his token
  and the details he gives, then pushed to every vendor that still needs it: never pushed, pushed with
  different content (fingerprint), or last push failed. First push = ``POST Practitioner``; later ones
  = conditional ``PUT Practitioner?identifier=…`` (idempotent: it creates when the vendor lost it).
- On **removal** (``DELETE /v1/accounts/{id}``) ``active = false`` is pushed to every vendor at once.

Each vendor's outcome is recorded in ``vendor_sync`` (time, fingerprint, error): a failed push is
retried at the next login (and by ``sync`` callers); requests themselves are retried by the client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from connectors.vendors.config import VendorConfig
from connectors.vendors_accounts import AccountsClient, AccountSyncError, fingerprint, practitioner_resource
from mappings.accounts import AccountDoc
from sas_core.errors import BadRequest, Conflict, Forbidden, NotFound
from sas_core.settings import Settings
from sas_core.territories import is_territory
from search_api.auth import Principal, Role
from search_api.workflow.common import utcnow
from search_api.workflow.store import DocStore

log = logging.getLogger(__name__)
INDEX = "accounts"
SYNCED_ROLES = {"regulator", "osnp"}
PARALLEL_VENDORS = 8


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
        return found.source

    # -- writing ------------------------------------------------------------------------------------

    def _save(self, account_id: str, changes: dict, *, create_defaults: dict) -> dict:
        """Create or update the account under compare-and-set."""
        for _ in range(10):
            now = self.clock().isoformat()
            current = self.store.get(INDEX, account_id)
            if current is None:
                document = {**create_defaults, **changes, "id": account_id, "created_at": now, "updated_at": now}
                AccountDoc.model_validate(document)
                if self.store.create(INDEX, account_id, document):
                    return document
                continue
            document = {**current.source, **changes, "updated_at": now}
            AccountDoc.model_validate(document)
            if self.store.replace(INDEX, current, document):
                return document
        raise Conflict(f"account {account_id} is being changed by others; retry")

    def login(self, principal: Principal, *, family_name: str | None, given_name: str | None,
              email: str | None) -> tuple[dict, list[dict]]:
        """The login hook: record the caller's account, then push it where needed."""
        if not principal.has_any(Role.REGULATOR, Role.OSNP):
            raise Forbidden("only regulator and OSNP accounts are synchronised to vendors")
        existing = self.store.get(INDEX, principal.sub)
        source = existing.source if existing is not None else {}
        if source.get("removed_at"):
            raise Forbidden("this account was removed")
        family = family_name or source.get("family_name") or (principal.name.split()[-1] if principal.name else None)
        if not family:
            raise BadRequest("family_name is needed the first time (the token carries no name)")
        given = given_name or source.get("given_name") or (
            " ".join(principal.name.split()[:-1]) if principal.name and len(principal.name.split()) > 1 else None)
        changes = {"family_name": family, "given_name": given, "email": email or source.get("email"),
                   "national_id": principal.national_id or source.get("national_id"),
                   "roles": sorted(r.value for r in principal.roles), "territories": sorted(principal.territories),
                   "active": True, "last_login_at": self.clock().isoformat()}
        account = self._save(principal.sub, changes, create_defaults={"vendor_sync": []})
        return self.sync(account["id"])

    def upsert(self, manager: Principal, account_id: str, *, family_name: str, given_name: str | None,
               email: str | None, national_id: str | None, roles: list[str], territories: list[str]) -> tuple[dict, list[dict]]:
        """An account manager creates or updates an account of his territories, then pushes it."""
        self._check_manager(manager, territories)
        for territory in territories:
            if not is_territory(territory):
                raise BadRequest(f"not a territory code: {territory!r}")
        current = self.store.get(INDEX, account_id)
        if current is not None:
            self._check_manager(manager, current.source.get("territories") or [])
        changes = {"family_name": family_name, "given_name": given_name, "email": email, "national_id": national_id,
                   "roles": sorted(set(roles)), "territories": sorted(set(territories)), "active": True,
                   "removed_at": None}
        account = self._save(account_id, changes, create_defaults={"vendor_sync": []})
        return self.sync(account["id"])

    def remove(self, manager: Principal, account_id: str) -> tuple[dict, list[dict]]:
        """Deactivate the account and push ``active = false`` to every vendor now."""
        current = self.store.get(INDEX, account_id)
        if current is None:
            raise NotFound(f"no account {account_id}")
        self._check_manager(manager, current.source.get("territories") or [])
        account = self._save(account_id, {"active": False, "removed_at": self.clock().isoformat()}, create_defaults={})
        return self.sync(account["id"], everyone=True)

    @staticmethod
    def _check_manager(manager: Principal, territories: list[str]) -> None:
        if manager.has_any(Role.ADMIN):
            return
        if not manager.has_any(Role.ACCOUNT_MANAGER):
            raise Forbidden("only account managers manage regulator accounts")
        outside = set(territories) - set(manager.territories)
        if outside:
            raise Forbidden(f"you do not manage {', '.join(sorted(outside))}")

    # -- pushing ------------------------------------------------------------------------------------

    def sync(self, account_id: str, *, everyone: bool = False) -> tuple[dict, list[dict]]:
        """Push the account to the vendors that need it (all of them with ``everyone``)."""
        account = self.get(account_id)
        if not SYNCED_ROLES.intersection(account.get("roles") or []) and account.get("active", True):
            return account, []
        resource = practitioner_resource(account)
        wanted = fingerprint(resource)
        previous = {s["vendor"]: s for s in account.get("vendor_sync") or []}
        targets = [v for v in self.vendors() if v.enabled and (
            everyone or previous.get(v.name, {}).get("fingerprint") != wanted or previous[v.name].get("last_error"))]
        if not targets:
            return account, []

        def push(vendor: VendorConfig) -> dict:
            entry = dict(previous.get(vendor.name) or {"vendor": vendor.name})
            entry["last_attempt_at"] = self.clock().isoformat()
            try:
                with AccountsClient(vendor, attempts=self.settings.account_sync_attempts,
                                    timeout_s=self.settings.account_sync_timeout_s) as client:
                    first = vendor.name not in previous or not previous[vendor.name].get("synced_at")
                    try:
                        result = client.create(resource) if first and account.get("active", True) \
                            else client.upsert(resource)
                    except AccountSyncError as exc:
                        if not first or exc.status not in (400, 409, 412, 422):
                            raise
                        result = client.upsert(resource)   # the vendor knew the account already
                entry.update(synced_at=self.clock().isoformat(), active=bool(account.get("active", True)),
                             fingerprint=wanted, vendor_resource=result.location, last_error=None)
                return {"vendor": vendor.name, "ok": True, "status": result.status}
            except AccountSyncError as exc:
                log.warning("account push failed", extra={"vendor": vendor.name, "account_id": account_id,
                                                          "reason": exc.reason})
                entry["last_error"] = exc.reason
                return {"vendor": vendor.name, "ok": False, "error": str(exc)}
            finally:
                previous[vendor.name] = entry

        with ThreadPoolExecutor(max_workers=min(PARALLEL_VENDORS, len(targets))) as pool:
            results = list(pool.map(push, targets))
        account = self._save(account_id, {"vendor_sync": sorted(previous.values(), key=lambda s: s["vendor"])},
                             create_defaults={})
        return account, results
