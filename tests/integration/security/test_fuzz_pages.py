"""The web pages are not in the OpenAPI schema (HTML): their query parameters, read from each route's own
signature, get hostile values from hypothesis (junk text, impossible and extreme dates, huge numbers) —
bounded and derandomized like ``test_fuzz.py``. No page may answer a 5xx."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import quote

from fastapi.routing import iter_route_contexts
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

EXAMPLES = 20
#: Parameters some pages read from the raw query string (INT_L01 contextual call) on top of their signature.
EXTRA_PARAMETERS = {"/app/recherche": ["adresse", "code_postal", "ville", "specialite", "medecin_traitant", "samu",
                                       "origin", "streetnumber", "streetname", "inseecode", "city", "specialty",
                                       "practitioner"]}
NOT_PAGES = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/metrics", "/static/{path:path}"}

_values = st.one_of(
    st.text(max_size=30),
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
    st.sampled_from(["9999-12-31", "0001-01-01", "2025-13-45", "2025-02-30T25:61", "9999-12-31T23:59:59+14:00",
                     "-1", "0", "99999999999999999999", "nan", "inf", "", "%00", "\u0000", "SAS-92", "true"]),
    st.integers().map(str),
)


def html_get_pages(app) -> list[tuple[str, list[str]]]:
    pages = []
    for route in iter_route_contexts(app.routes):
        original = route.original_route
        if "GET" not in (route.methods or ()) or route.path in NOT_PAGES:
            continue
        if getattr(original, "include_in_schema", True):
            continue  # JSON API: fuzzed from the schema in test_fuzz.py
        names = [p.alias for p in original.dependant.query_params] + EXTRA_PARAMETERS.get(route.path, [])
        pages.append((route.path, names))
    return pages


def test_no_page_fails_on_hostile_query_strings(api, everything_headers):
    pages = html_get_pages(api.app)
    assert any(path == "/app/recherche" for path, _ in pages), pages
    failures: list[str] = []
    for path, names in pages:
        failures += _fuzz_page(api, everything_headers, path, names)
    assert not failures, "\n".join(failures[:20])


def _fuzz_page(api, headers, path: str, names: list[str]) -> list[str]:
    """The failures (5xx) of GET ``path`` under hostile query strings on ``names`` and path segments."""
    failures: list[str] = []
    path_params = re.findall(r"{(\w+)}", path)

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(query=st.dictionaries(st.sampled_from(names), _values, max_size=len(names)) if names else st.just({}),
           segments=st.lists(st.text(min_size=1, max_size=20).filter(lambda s: "/" not in s),
                             min_size=len(path_params), max_size=len(path_params)))
    def run(query, segments) -> None:
        url = path
        for name, segment in zip(path_params, segments, strict=True):
            url = url.replace("{" + name + "}", quote(segment, safe=""))
        response = api.get(url, params=query, headers=headers, follow_redirects=False)
        if response.status_code >= 500:
            failures.append(f"GET {url} {query!r} → {response.status_code}")

    run()
    return failures
