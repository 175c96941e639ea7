"""FHIR ``OperationOutcome`` answers of the INT_R03 listener, also written by the middleware when it refuses
a request before the route (body too large, credentials): the same form whoever answers."""

from __future__ import annotations

import orjson
from fastapi.responses import Response

from search_api.workflow.appointments import Issue, operation_outcome

FHIR_JSON = "application/fhir+json"
#: The platform's HTTP statuses → the FHIR issue type of their ``OperationOutcome``.
SAS_CODES = {400: "invalid", 401: "login", 403: "forbidden", 404: "not-found", 409: "conflict", 422: "business-rule",
             413: "too-long", 429: "throttled", 503: "transient", 504: "timeout"}


def outcome_response(status: int, issues: list[Issue], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(operation_outcome(issues)), status_code=status, media_type=FHIR_JSON,
                    headers=headers)
