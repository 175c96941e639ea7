"""Bad input never makes the service fail: schemathesis generates requests from the app's own OpenAPI schema
(valid ones, then invalid ones: wrong types, out-of-range values, missing fields, junk strings) for every
operation, and sends them in-process to the real app wired to the real (guarded) Elasticsearch.

Bounded and deterministic: ``EXAMPLES`` examples per operation and generation mode, derandomized (same
examples every run), no example database, no shrinking. The caller holds every role (and an admin's
scope), so each request goes past authorisation into the route's own validation and logic. Any 5xx is a
failure, reported with the request that caused it.

FHIR endpoints read their body themselves (no schema): a separate property test sends them malformed bodies
and requires a 4xx OperationOutcome.
"""

from __future__ import annotations

import json
import time
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

EXAMPLES = 15
#: Operations not fuzzed, with the reason (none today: add one only with a reason).
SKIPPED: dict[str, str] = {}
_SETTINGS = dict(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, phases=[Phase.explicit,
                 Phase.generate], suppress_health_check=list(HealthCheck), print_blob=False)


def _describe(case, response) -> str:
    body = response.text[:300] if hasattr(response, "text") else ""
    return (f"{case.method} {case.formatted_path} query={case.query!r} body={str(case.body)[:200]!r} "
            f"→ {response.status_code} {body}")


def test_no_server_error_on_any_operation(api, everything_headers):
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    calls = 0
    started = time.monotonic()
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the OpenAPI schema lost operations"
    for operation in operations:
        label = f"{operation.method.upper()} {operation.path}"
        if label in SKIPPED:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                strategy = operation.as_strategy(generation_mode=mode)
            except Exception as exc:  # an operation without anything to make invalid
                if mode is GenerationMode.NEGATIVE:
                    continue
                raise AssertionError(f"{label}: no strategy: {exc}") from exc

            @settings(**_SETTINGS)
            @given(case=strategy)
            def run(case) -> None:
                nonlocal calls
                calls += 1
                # The schema declares both schemes; generated junk credentials would only test the door.
                case.headers = {k: v for k, v in (case.headers or {}).items()
                                if k.lower() not in ("authorization", "x-api-key")}
                response = case.call(headers=everything_headers)
                statuses[response.status_code] += 1
                if response.status_code >= 500:
                    failures.append(_describe(case, response))

            try:
                run()
            except Unsatisfiable:
                # Nothing in this operation can be made invalid (no parameters, no body): positive only.
                if mode is not GenerationMode.NEGATIVE:
                    raise
    elapsed = time.monotonic() - started
    print(f"fuzz: {len(operations)} operations, {calls} requests, {elapsed:.1f} s, {len(failures)} server errors; "
          f"statuses {dict(sorted(statuses.items()))}")
    assert calls >= len(operations) * 2, "too few requests were generated"
    # The credentials work: most requests reach the routes (not refused at the door).
    assert statuses[401] + statuses[403] < calls / 4, statuses
    assert not failures, "server errors:\n" + "\n".join(failures[:30])


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_appointment_like = st.fixed_dictionaries(
    {"resourceType": st.sampled_from(["Appointment", "Patient", "", 3])},
    optional={"status": _json_values, "identifier": _json_values, "start": _json_values, "end": _json_values,
              "participant": _json_values, "slot": _json_values, "extension": _json_values},
)
_bodies = (st.binary(max_size=200) | _json_values.map(lambda v: json.dumps(v).encode())
           | _appointment_like.map(lambda v: json.dumps(v).encode()))


@pytest.mark.parametrize("method,url", [("POST", "/fhir/Appointment"),
                                        ("PUT", "/fhir/Appointment?identifier=urn:oid:1.2.3|fuzz-1")])
def test_fhir_malformed_bodies_get_an_operation_outcome(api, token_for, method, url):
    headers = {**token_for("vendor", name="medilib", sub="fuzz-vendor"), "Content-Type": "application/fhir+json"}

    @settings(**{**_SETTINGS, "max_examples": 40})
    @given(body=_bodies)
    def run(body: bytes) -> None:
        response = api.request(method, url, content=body, headers=headers)
        assert 400 <= response.status_code < 500, (body[:200], response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith("application/fhir+json")
        outcome = response.json()
        assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"], outcome

    run()
