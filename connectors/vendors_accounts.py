"""INT_R02: regulator accounts pushed to a vendor (the platform is the FHIR client).

- create: ``POST [base]/Practitioner`` → 201 with ``Location``;
- update / deactivate: conditional update ``PUT [base]/Practitioner?identifier=<system>|<value>``
  → 200 (or 201 when the vendor did not know the account: the update is idempotent);
- removal is ``active = false`` (there is no DELETE).

**Identifier change** (the guide's FAQ): the conditional update goes to the identifier the vendor *knows*
(``upsert(resource, target=...)``), the new one travels in the body. An account known by its platform UUID
that gains a national id is sent to ``?identifier=urn:oid:1.2.250.1.213.3.6|<uuid>``; sending it to the new
id would make an idempotent vendor create a second account and leave the first one active.

**Completeness**: FrPractitionerRegul requires ``name.family``, ``name.given`` and an e-mail ``telecom``;
certified vendors refuse a body without them. ``missing_elements`` says what an account lacks: callers do
not push such an account (``search_api.workflow.accounts``).

The identifier is the regulator's national id (system ``urn:oid:1.2.250.1.71.4.2.1``, type IDNPS) or,
without one, the platform UUID (system ``urn:oid:1.2.250.1.213.3.6``, type INTRN). Requests go over
httpx with the vendor's mutual-TLS material (``connectors.vendors.client.ssl_context``) and are retried
with exponential backoff (tenacity) on 429 / 5xx / timeouts / connection failures only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Self

import httpx
import orjson
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from connectors.vendors.client import FHIR_ACCEPT, ssl_context
from connectors.vendors.config import VendorConfig
from connectors.vendors.errors import ACCOUNT_REFUSALS, AccountSyncError
from sas_core.platform_ids import platform_uuid

RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
ID_TYPE_SYSTEM = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
#: The guide's canonical URL (``sushi-config.yaml``: ``canonical``) + ``StructureDefinition/FrPractitionerRegul``.
PROFILE = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/FrPractitionerRegul"
#: Statuses by which a vendor refuses the body itself (the guide: 400 malformed, 422 business rule): the same
#: body would be refused again, so it is not resent until it changes. Anything else may pass on a retry.
REFUSALS = ACCOUNT_REFUSALS
USER_AGENT = "sas-platform-accounts/1"


def account_identifier(account: dict[str, Any]) -> tuple[str, str, str]:
    """(system, value, type) identifying the account at vendors: national id first, else platform UUID."""
    if account.get("national_id"):
        return RPPS_SYSTEM, str(account["national_id"]), "IDNPS"
    return PLATFORM_SYSTEM, account.get("platform_id") or platform_uuid(str(account["id"])), "INTRN"


def identifier_key(system: str, value: str) -> str:
    """``system|value``: the form of the conditional update's ``?identifier=`` and of ``known_identifier``."""
    return f"{system}|{value}"


def resource_key(resource: dict[str, Any]) -> str:
    identifier = resource["identifier"][0]
    return identifier_key(identifier["system"], identifier["value"])


def missing_elements(account: dict[str, Any]) -> list[str]:
    """The FrPractitionerRegul elements an account cannot fill (``[]``: it can be pushed)."""
    missing = []
    if not (account.get("family_name") or "").strip():
        missing.append("name.family")
    if not (account.get("given_name") or "").strip():
        missing.append("name.given")
    if not (account.get("email") or "").strip():
        missing.append("telecom.email")
    return missing


def practitioner_resource(account: dict[str, Any], *, active: bool | None = None) -> dict[str, Any]:
    """The FrPractitionerRegul body of an account document."""
    system, value, kind = account_identifier(account)
    resource: dict[str, Any] = {
        "resourceType": "Practitioner",
        "meta": {"source": PLATFORM_SYSTEM, "profile": [PROFILE]},
        "identifier": [{"type": {"coding": [{"system": ID_TYPE_SYSTEM, "code": kind}]}, "system": system,
                        "value": value}],
        "active": bool(account.get("active", True) if active is None else active),
        "name": [{"family": account.get("family_name"),
                  **({"given": [account["given_name"]]} if account.get("given_name") else {})}],
    }
    if account.get("email"):
        resource["telecom"] = [{"system": "email", "value": account["email"]}]
    return resource


def fingerprint(resource: dict[str, Any]) -> str:
    """Stable hash of a Practitioner body: a login pushes again only when it changed."""
    return hashlib.sha256(orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)).hexdigest()[:20]


@dataclass(frozen=True)
class PushResult:
    status: int
    location: str | None


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, AccountSyncError) and exc.retryable


class AccountsClient:
    """Synchronous INT_R02 client of one vendor (``with AccountsClient(vendor) as client``)."""

    def __init__(self, vendor: VendorConfig, *, attempts: int = 3, timeout_s: float = 5.0,
                 backoff_initial_s: float = 0.2, backoff_max_s: float = 2.0) -> None:
        self.vendor = vendor
        self.attempts = attempts
        self.backoff_initial_s = backoff_initial_s
        self.backoff_max_s = backoff_max_s
        self._client = httpx.Client(
            base_url=vendor.base_url + "/", timeout=httpx.Timeout(timeout_s), verify=ssl_context(vendor),
            headers={"Accept": FHIR_ACCEPT, "Content-Type": "application/fhir+json", "User-Agent": USER_AGENT},
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def create(self, resource: dict[str, Any]) -> PushResult:
        """``POST Practitioner``."""
        return self._with_retries("POST", "Practitioner", None, resource)

    def upsert(self, resource: dict[str, Any], *, target: str | None = None) -> PushResult:
        """Conditional ``PUT Practitioner?identifier=<target>`` (creates when unknown). ``target``
        (``system|value``) is the identifier the vendor knows the account by, the body's by default: when
        they differ the vendor changes the account's identifier (FAQ)."""
        params = {"identifier": target or resource_key(resource)}
        return self._with_retries("PUT", "Practitioner", params, resource)

    def _with_retries(self, method: str, path: str, params, resource) -> PushResult:
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential_jitter(multiplier=self.backoff_initial_s, max=self.backoff_max_s,
                                        jitter=self.backoff_initial_s),
            retry=retry_if_exception(_retryable), reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._once(method, path, params, resource)
        raise AssertionError("unreachable")  # pragma: no cover

    def _once(self, method: str, path: str, params, resource) -> PushResult:
        name = self.vendor.name
        try:
            response = self._client.request(method, path, params=params, content=orjson.dumps(resource))
        except httpx.TimeoutException as exc:
            raise AccountSyncError("timeout", f"{name}: no answer in time", retryable=True) from exc
        except httpx.TransportError as exc:
            raise AccountSyncError("connection_error", f"{name}: {type(exc).__name__}", retryable=True) from exc
        status = response.status_code
        if status in (200, 201):
            return PushResult(status=status, location=response.headers.get("location"))
        text = _outcome(response)
        if status == 429 or status >= 500:
            raise AccountSyncError(f"http_{status}", f"{name}: HTTP {status}: {text}", status=status, retryable=True)
        raise AccountSyncError(f"http_{status}", f"{name}: HTTP {status}: {text}", status=status)


def _outcome(response: httpx.Response) -> str:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.text[:200]
    if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome":
        return "; ".join(str(i.get("diagnostics") or i.get("code")) for i in body.get("issue") or []
                         if isinstance(i, dict))[:300]
    return response.text[:200]
