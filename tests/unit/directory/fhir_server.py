"""A local Annuaire Santé FHIR server for tests: paged searchset Bundles of PractitionerRole with their
included Practitioner / Organization, the ``ESANTE-API-KEY`` header, ``_count``, ``_lastUpdated=ge``."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlencode, urlparse

from connectors.directory.ids import luhn_key
from connectors.directory.nomenclatures import TRE_G15_SYSTEM, TRE_R23_SYSTEM, TRE_R38_SYSTEM

API_KEY = "test-esante-key"
FHIR_JSON = "application/fhir+json"


def rpps(base: str) -> str:
    return base + luhn_key(base)


def wrong_key(base: str) -> str:
    return base + str((int(luhn_key(base)) + 1) % 10)


def practitioner(pid: str, national: str, family: str, given: str, system: str = "urn:oid:1.2.250.1.71.4.2.1"):
    return {"resourceType": "Practitioner", "id": pid,
            "identifier": [{"system": system, "value": national}],
            "name": [{"family": family, "given": [given], "prefix": ["DR"]}]}


def organization(oid: str, name: str, line: str, postcode: str, city: str, finess: str = "", siret: str = ""):
    identifiers = []
    if finess:
        identifiers.append({"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "1" + finess})
    if siret:
        identifiers.append({"system": "urn:oid:1.2.250.1.71.4.2.2", "value": "3" + siret})
    return {"resourceType": "Organization", "id": oid, "name": name, "identifier": identifiers,
            "address": [{"line": [line], "postalCode": postcode, "city": city}],
            "telecom": [{"system": "phone", "value": "02 31 00 00 01"}]}


def role(rid: str, pid: str, oid: str, *, profession="10", mode="L", specialty="SM54", updated="2025-01-10T10:00:00Z",
         active=True):
    resource = {"resourceType": "PractitionerRole", "id": rid, "active": active,
                "meta": {"lastUpdated": updated},
                "practitioner": {"reference": f"Practitioner/{pid}"},
                "organization": {"reference": f"Organization/{oid}"},
                "code": [{"coding": [{"system": TRE_G15_SYSTEM, "code": profession}]},
                         {"coding": [{"system": TRE_R23_SYSTEM, "code": mode}]}],
                "telecom": [{"system": "phone", "value": "0231 45 67 89"}]}
    if specialty:
        resource["specialty"] = [{"coding": [{"system": TRE_R38_SYSTEM, "code": specialty}]}]
    return resource


class AnnuaireState:
    """Resources served; roles are paged in the order given."""

    def __init__(self) -> None:
        self.practitioners: dict[str, dict] = {}
        self.organizations: dict[str, dict] = {}
        self.roles: list[dict] = []
        self.omit_from_includes: set[str] = set()   # references served only by a direct read

    def handler(self, base_path: str = "/fhir"):
        def handle(method, path, headers):
            if headers.get("esante-api-key") != API_KEY:
                return 401, FHIR_JSON, json.dumps(
                    {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "login"}]}).encode()
            parsed = urlparse(path)
            route = parsed.path[len(base_path):].strip("/")
            if route.startswith("Practitioner/"):
                return _read(self.practitioners, route)
            if route.startswith("Organization/"):
                return _read(self.organizations, route)
            if route != "PractitionerRole":
                return 404, FHIR_JSON, b"{}"
            return self._search_roles(path, parsed, headers)
        return handle

    def _search_roles(self, path, parsed, headers):
        """A searchset page of roles (``_lastUpdated=ge``, ``_count``, ``_offset``) with a next link."""
        query = parse_qs(parsed.query)
        roles = self.roles
        since = (query.get("_lastUpdated") or [""])[0]
        if since.startswith("ge"):
            roles = [r for r in roles if r["meta"]["lastUpdated"] >= since[2:]]
        count = int((query.get("_count") or ["50"])[0])
        offset = int((query.get("_offset") or ["0"])[0])
        page = roles[offset: offset + count]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        self._include_references(page, entries)
        bundle = {"resourceType": "Bundle", "type": "searchset", "total": len(roles), "entry": entries,
                  "link": [{"relation": "self", "url": path}]}
        if offset + count < len(roles):
            next_query = {k: v for k, v in query.items() if k != "_offset"}
            next_query["_offset"] = [str(offset + count)]
            bundle["link"].append({"relation": "next", "url": f"{headers['host'] and 'http://' + headers['host']}"
                                                              f"{parsed.path}?{urlencode(next_query, doseq=True)}"})
        return 200, FHIR_JSON, json.dumps(bundle).encode()

    def _include_references(self, page: list[dict], entries: list[dict]) -> None:
        """Appends to ``entries`` each Practitioner / Organization the page's roles refer to, once."""
        for r in page:
            for ref, table in ((r["practitioner"]["reference"], self.practitioners),
                               (r["organization"]["reference"], self.organizations)):
                if ref in self.omit_from_includes:
                    continue
                resource = table.get(ref.split("/", 1)[1])
                if resource and not any(e["resource"] is resource for e in entries):
                    entries.append({"resource": resource, "search": {"mode": "include"}})


def _read(table: dict[str, dict], route: str):
    """A direct read (``<Type>/<id>``): the resource, or 404."""
    found = table.get(route.split("/", 1)[1])
    return (200, FHIR_JSON, json.dumps(found).encode()) if found else (404, FHIR_JSON, b"{}")


def sample_state() -> AnnuaireState:
    state = AnnuaireState()
    state.practitioners = {
        "p1": practitioner("p1", "8" + rpps("1000123456"), "MARTIN", "Paul"),
        "p2": practitioner("p2", "8" + wrong_key("1000234567"), "FAUX", "Id"),
        "p3": practitioner("p3", rpps("1000345678"), "DURAND", "Élise", system="http://rpps.fr"),
        "p4": practitioner("p4", "0750912345", "MOREAU", "Julie"),
    }
    state.organizations = {
        "o1": organization("o1", "CABINET DU DR MARTIN", "12 bis rue de la Paix", "14000", "CAEN",
                           siret="81000123400016"),
        "o2": organization("o2", "CENTRE DE SANTE DES CARMES", "5 rue des Carmes", "75015", "PARIS",
                           finess="750054321"),
    }
    state.roles = [
        role("r1", "p1", "o1", updated="2025-01-05T08:00:00Z"),
        role("r2", "p1", "o2", specialty="SM59", updated="2025-01-12T08:00:00Z"),
        role("r3", "p2", "o1"),
        role("r4", "p3", "o1", specialty="SM40", updated="2025-01-11T08:00:00Z"),
        role("r5", "p4", "o2", profession="91", specialty="", updated="2025-01-13T08:00:00Z"),
        role("r6", "p3", "o2", active=False),
        role("r7", "p1", "o1", profession="77"),
    ]
    state.omit_from_includes = {"Organization/o2"}
    return state
