"""Regulator accounts and their synchronisation to vendors (INT_R02).

- ``POST /v1/accounts/login``: called by the web client when a regulator / OSNP logs in: records the
  account and pushes it to the vendors that still need it;
- ``PUT /v1/accounts/{id}`` / ``DELETE /v1/accounts/{id}``: account managers create, update, remove
  (removal pushes ``active=false`` to every vendor at once); an account outside their territories answers
  404 as on ``GET``, and the identity fields of an account that has logged in are its holder's (409);
- ``GET /v1/accounts/{id}``: the account and its per-vendor synchronisation state;
- ``GET /v1/accounts``: account managers list the accounts of their territories (``blocked=true``: those
  that cannot be pushed, with ``sync_missing`` naming the FrPractitionerRegul elements to fill in).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from search_api.auth import Principal, Role
from search_api.deps import CurrentPrincipal, roles
from search_api.services import WorkflowDep
from search_api.workflow.accounts import IDENTITY_FIELDS

router = APIRouter(prefix="/v1/accounts", tags=["accounts (INT_R02)"])
Manager = Annotated[Principal, Depends(roles(Role.ACCOUNT_MANAGER, Role.ADMIN))]
#: Only regulator and OSNP accounts are synchronised (declared here so that the role matrix is explicit).
LoggingIn = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP))]
AccountId = Annotated[str, Path(min_length=3, max_length=100, pattern=r"^[0-9A-Za-z._:@-]+$")]
#: An address certified vendors accept (their ``telecom.value`` check): local part, @, dotted domain.
EMAIL = r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$"


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    family_name: str | None = Field(None, max_length=100)
    given_name: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=200, pattern=EMAIL)


class AccountIn(BaseModel):
    """A manager's PUT. The identity fields (names, e-mail, national id) are the holder's once he has logged
    in: then leave them out (or send them unchanged); ``family_name`` is required until then."""

    model_config = ConfigDict(extra="forbid")

    family_name: str | None = Field(None, min_length=1, max_length=100)
    given_name: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=200, pattern=EMAIL)
    national_id: str | None = Field(None, max_length=30)
    # Known roles only (a typo or an invented role is a 422, not a stored value pushed to vendors).
    roles: list[Role] = Field(default=[Role.REGULATOR], max_length=len(Role))
    territories: list[str] = Field(min_length=1, max_length=120)


def _answer(account: dict, results: list[dict]) -> dict[str, Any]:
    return {"account": account, "vendor_results": results}


@router.post("/login", summary="Login hook: record the caller's account and push it to vendors (INT_R02)")
def login(principal: LoggingIn, workflow: WorkflowDep, body: LoginIn | None = None) -> dict[str, Any]:
    body = body or LoginIn()
    account, results = workflow.accounts.login(principal, family_name=body.family_name, given_name=body.given_name,
                                               email=body.email)
    return _answer(account, results)


@router.get("", summary="Accounts of the manager's territories and their synchronisation state")
def list_accounts(manager: Manager, workflow: WorkflowDep,
                  blocked: Annotated[bool, Query(description="only accounts that cannot be pushed")] = False,
                  size: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    items = workflow.accounts.list_managed(manager, blocked=blocked, size=size)
    return {"items": items, "count": len(items)}


@router.get("/{account_id}", summary="An account and its per-vendor synchronisation state")
def get_account(account_id: AccountId, principal: CurrentPrincipal, workflow: WorkflowDep) -> dict[str, Any]:
    from sas_core.errors import NotFound

    account = workflow.accounts.get(account_id)
    mine = principal.sub == account_id
    # An account without territory is nobody's (admins only), not every manager's.
    if not (mine or workflow.accounts.manages(principal, account.get("territories") or [])):
        raise NotFound(f"no account {account_id}")
    return account


@router.put("/{account_id}", summary="Create or update an account (account managers), then push it")
def put_account(account_id: AccountId, body: AccountIn, manager: Manager, workflow: WorkflowDep) -> dict[str, Any]:
    # Only the identity fields the manager sent (absent ones are left to the holder's login).
    identity = {name: getattr(body, name) for name in IDENTITY_FIELDS if name in body.model_fields_set}
    account, results = workflow.accounts.upsert(manager, account_id, identity=identity,
                                                roles=[r.value for r in body.roles], territories=body.territories)
    return _answer(account, results)


@router.delete("/{account_id}", summary="Remove an account: active=false pushed to every vendor at once")
def delete_account(account_id: AccountId, manager: Manager, workflow: WorkflowDep) -> dict[str, Any]:
    account, results = workflow.accounts.remove(manager, account_id)
    return _answer(account, results)
