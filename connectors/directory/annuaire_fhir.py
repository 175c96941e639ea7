"""The Annuaire Santé FHIR API (ANS): practice places as ``PractitionerRole`` resources.

``GET [base]/PractitionerRole?_include=PractitionerRole:practitioner&_include=PractitionerRole:organization
&_count=N[&_lastUpdated=ge<instant>]`` with the API key in the ``ESANTE-API-KEY`` header; searchset
Bundles are followed page by page through ``link[relation=next]`` (one page in memory at a time). Each
active PractitionerRole becomes one ``PracticeRecord`` (the same record the RPPS file gives), so the
rest of the pipeline does not care where a practice place came from:

* ``Practitioner.identifier`` — the national id (system ``urn:oid:1.2.250.1.71.4.2.1``, ``8``+RPPS or
  ``0``+ADELI), or the bare RPPS (system ``http://rpps.fr``); ``name`` family / given / prefix;
* ``PractitionerRole.code`` — profession (TRE_G15) and exercise mode (TRE_R23) codings;
  ``specialty`` — TRE_R38 codings; ``telecom`` phones; ``meta.lastUpdated``; ``active``;
* ``Organization`` — the structure: ``id`` (technical id), ``name``, ``identifier`` (IDNST: ``1``+FINESS,
  ``3``+SIRET), ``address`` (``line``, ``postalCode``, ``city``), ``telecom``.

A referenced Practitioner / Organization missing from the page is read by id (and cached for the run).
Transient failures (transport errors, 429, 5xx) are retried with backoff (tenacity).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from connectors.directory.ids import check_rpps, split_national
from connectors.directory.nomenclatures import PROFESSIONS, Specialties
from connectors.directory.records import Address, PracticeRecord, Rejection, Remark
from sas_core.errors import BackendUnavailable, ConfigurationError

API_KEY_HEADER = "ESANTE-API-KEY"
NATIONAL_ID_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"
STRUCTURE_ID_SYSTEM = "urn:oid:1.2.250.1.71.4.2.2"
RPPS_SYSTEM = "http://rpps.fr"
_DIGITS = re.compile(r"\D+")


class _Transient(Exception):
    """A failure worth retrying (transport error, 429, 5xx)."""


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (_Transient, httpx.TransportError))


class AnnuaireFhirClient:
    """A small read-only client of the Annuaire Santé FHIR API (see module doc)."""

    def __init__(self, base_url: str, *, api_key: str | None, page_size: int = 500, timeout_s: float = 30.0,
                 attempts: int = 4, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": "application/fhir+json", "User-Agent": "sas-platform directory"}
        if api_key:
            headers[API_KEY_HEADER] = api_key
        self._client = httpx.Client(timeout=timeout_s, headers=headers, transport=transport,
                                    follow_redirects=True)
        self.page_size = page_size
        self.attempts = attempts
        self.requests = 0
        self._cache: dict[str, dict | None] = {}

    def __enter__(self) -> AnnuaireFhirClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    # --- HTTP -------------------------------------------------------------------------------------
    def _get_json(self, url: str, params: dict | None = None) -> dict:
        retrying = Retrying(stop=stop_after_attempt(self.attempts), wait=wait_exponential(multiplier=0.2, max=5),
                            retry=retry_if_exception(_is_transient), reraise=True)
        try:
            for attempt in retrying:
                with attempt:
                    self.requests += 1
                    response = self._client.get(url, params=params)
                    if response.status_code in (401, 403):
                        raise ConfigurationError(
                            f"Annuaire Santé API refused the API key (HTTP {response.status_code}); "
                            "check SAS_ANNUAIRE_FHIR_API_KEY"
                        )
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Transient(f"HTTP {response.status_code} from {url}")
                    if response.status_code != 200:
                        raise BackendUnavailable(f"Annuaire Santé API answered HTTP {response.status_code} "
                                                 f"for {response.request.url}: {response.text[:200]}")
                    return response.json()
        except (_Transient, httpx.TransportError) as exc:
            raise BackendUnavailable(f"Annuaire Santé API unreachable after {self.attempts} attempts: {exc}") from exc
        except ValueError as exc:
            raise BackendUnavailable(f"Annuaire Santé API sent something that is not JSON: {exc}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def pages(self, resource: str, params: dict) -> Iterator[dict]:
        """Searchset Bundles of ``resource``, following ``link[next]``."""
        url: str | None = f"{self.base_url}/{resource}"
        query: dict | None = params
        while url:
            bundle = self._get_json(url, query)
            if bundle.get("resourceType") != "Bundle":
                raise BackendUnavailable(f"Annuaire Santé API: expected a Bundle, got {bundle.get('resourceType')}")
            yield bundle
            url = next((link.get("url") for link in bundle.get("link") or [] if link.get("relation") == "next"), None)
            query = None  # the next link carries the whole query

    def _read(self, reference: str) -> dict | None:
        if reference not in self._cache:
            try:
                self._cache[reference] = self._get_json(f"{self.base_url}/{reference}")
            except BackendUnavailable:
                self._cache[reference] = None
        return self._cache[reference]

    # --- mapping ----------------------------------------------------------------------------------
    def practice_records(self, *, specialties: Specialties, since: datetime | None = None
                         ) -> Iterator[PracticeRecord | Rejection | Remark]:
        """Every practice place (active PractitionerRole), updated since ``since`` when given."""
        params = {
            "_include": ["PractitionerRole:practitioner", "PractitionerRole:organization"],
            "_count": str(self.page_size),
        }
        if since is not None:
            params["_lastUpdated"] = "ge" + since.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        position = 0
        for bundle in self.pages("PractitionerRole", params):
            included: dict[str, dict] = {}
            roles: list[dict] = []
            for entry in bundle.get("entry") or []:
                resource = entry.get("resource") or {}
                kind = resource.get("resourceType")
                if kind == "PractitionerRole":
                    roles.append(resource)
                elif kind in {"Practitioner", "Organization"} and resource.get("id"):
                    included[f"{kind}/{resource['id']}"] = resource
            for role in roles:
                position += 1
                yield from self._role_record(role, included, specialties, position)

    def _resolve(self, reference: dict | None, included: dict[str, dict]) -> dict | None:
        ref = (reference or {}).get("reference") or ""
        if not ref:
            return None
        ref = ref.split("/_history")[0]
        if ref.startswith(self.base_url + "/"):
            ref = ref[len(self.base_url) + 1:]
        return included.get(ref) or self._read(ref)

    def _role_record(self, role: dict, included: dict[str, dict], specialties: Specialties, position: int
                     ) -> Iterator[PracticeRecord | Rejection | Remark]:
        if role.get("active") is False:
            yield Remark("inactive_role", position, role.get("id", ""))
            return
        practitioner = self._resolve(role.get("practitioner"), included)
        if practitioner is None:
            yield Rejection("missing_practitioner", position, role.get("id", ""))
            return
        ids = _national_id(practitioner)
        if isinstance(ids, str):
            yield Rejection(ids, position, practitioner.get("id", ""))
            return
        id_type, raw = ids
        last, first, prefix = _name_of(practitioner)
        if not last:
            yield Rejection("missing_name", position, practitioner.get("id", ""))
            return
        profession, mode = _profession_and_mode(role)
        if profession not in PROFESSIONS:
            yield Rejection("unknown_profession", position, profession or "(none)")
            return
        found, unknown = _specialties_of(role, specialties)
        for code in unknown:
            yield Remark("unknown_specialty", position, code)
        organization = self._resolve(role.get("organization"), included) or {}
        finess, siret = _structure_ids(organization)
        address = _address((organization.get("address") or [None])[0])
        phones = _phones(role.get("telecom")) or _phones(organization.get("telecom"))
        yield PracticeRecord(
            source="annuaire_fhir",
            line_no=position,
            id_type="rpps" if id_type == "rpps" else "adeli",
            raw_id=raw,
            national_id=("8" if id_type == "rpps" else "0") + raw,
            last_name=last,
            first_name=first,
            civility={"DR": "Docteur", "PR": "Professeur"}.get(prefix.upper(), prefix),
            profession_code=profession,
            profession_label=PROFESSIONS[profession],
            specialties=found,
            exercise_mode=mode,
            technical_id=organization.get("id") or "",
            structure_name=organization.get("name") or "",
            siret=siret,
            siren=siret[:9] if len(siret) == 14 else "",
            finess=finess,
            address=address,
            phones=phones,
            updated=((role.get("meta") or {}).get("lastUpdated") or ""),
        )


def _name_of(practitioner: dict) -> tuple[str, str, str]:
    """(last name, first names, prefix) of the practitioner's first name entry."""
    names = practitioner.get("name") or [{}]
    name = names[0] if isinstance(names[0], dict) else {}
    last = (name.get("family") or "").strip()
    first = " ".join(name.get("given") or []).strip()
    prefix = (name.get("prefix") or [""])[0]
    return last, first, prefix


def _profession_and_mode(role: dict) -> tuple[str, str]:
    """The TRE_G15 profession and TRE_R23 exercise mode codes of a role ("" when absent; the last wins)."""
    profession = mode = ""
    for concept in role.get("code") or []:
        for coding in concept.get("coding") or []:
            system = coding.get("system") or ""
            if "TRE_G15" in system or "TRE-G15" in system:
                profession = coding.get("code") or ""
            elif "TRE_R23" in system or "TRE-R23" in system:
                mode = coding.get("code") or ""
    return profession, mode


def _specialties_of(role: dict, specialties: Specialties) -> tuple[list[tuple[str, str]], list[str]]:
    """The role's TRE_R38 specialties as (code, label), once each, and the codes the table does not know
    (one per occurrence, labelled by the resource's display or the code itself)."""
    found: list[tuple[str, str]] = []
    unknown: list[str] = []
    for concept in role.get("specialty") or []:
        for coding in concept.get("coding") or []:
            system = coding.get("system") or ""
            code = coding.get("code") or ""
            if code and ("TRE_R38" in system or "TRE-R38" in system):
                label = specialties.label(code)
                if label is None:
                    unknown.append(code)
                    label = coding.get("display") or code
                if (code, label) not in found:
                    found.append((code, label))
    return found, unknown


def _structure_ids(organization: dict) -> tuple[str, str]:
    """(FINESS, SIRET) of an organization, from its ``1``/``3``-prefixed structure identifiers."""
    finess = siret = ""
    for identifier in organization.get("identifier") or []:
        value = identifier.get("value") or ""
        if identifier.get("system") == STRUCTURE_ID_SYSTEM and len(value) > 1:
            if value[0] == "1":
                finess = value[1:]
            elif value[0] == "3":
                siret = value[1:]
    return finess, siret


def _national_id(practitioner: dict) -> tuple[str, str] | str:
    """(``rpps``|``adeli``, raw id) or the rejection reason."""
    reason = "missing_identifier"
    for identifier in practitioner.get("identifier") or []:
        value = (identifier.get("value") or "").strip()
        system = identifier.get("system") or ""
        if system == NATIONAL_ID_SYSTEM and value:
            parsed = split_national(value)
            if parsed:
                return parsed
            reason = "invalid_rpps_key" if len(value) == 12 and value[0] == "8" and value[1:].isdigit() \
                else "invalid_national_id"
        elif system == RPPS_SYSTEM and value:
            problem = check_rpps(value)
            if problem is None:
                return "rpps", value
            reason = problem
    return reason


def _address(data: dict | None) -> Address:
    if not data:
        return Address()
    lines = [x.strip() for x in data.get("line") or [] if x and x.strip()]
    postcode = (data.get("postalCode") or "").strip()
    city = (data.get("city") or "").strip()
    insee = ""
    for extension in data.get("extension") or []:
        if (extension.get("url") or "").lower().endswith(("insee", "insee-code", "code-insee")):
            insee = extension.get("valueString") or ""
    return Address(street=lines[-1] if lines else "", complement=" ".join(lines[:-1]), postcode=postcode,
                   city=city, insee=insee, country=(data.get("country") or "").strip())


def _phones(telecom: list | None) -> list[str]:
    phones = []
    for contact in telecom or []:
        if contact.get("system") == "phone":
            digits = _DIGITS.sub("", contact.get("value") or "")
            if len(digits) >= 8 and digits not in phones:
                phones.append(digits)
    return phones
