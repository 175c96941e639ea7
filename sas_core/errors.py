"""The error family of the platform's own boundary (what its callers see).

Each class carries the HTTP status it maps to; the API turns any ``SasError`` into a JSON answer
(or a FHIR OperationOutcome on FHIR routes) in one place (``search_api.errors``). Code below the API
raises these and never builds HTTP responses itself. The other boundaries have one family each, mapped to
this one where they meet the API: the vendors (``connectors.vendors.errors.VendorError`` → ``BadGateway``) and
Elasticsearch (transport and API errors → ``BackendUnavailable`` / ``BackendTimeout`` / ``BadRequest`` in the
executor).
"""

from __future__ import annotations


class SasError(Exception):
    """Base of every error the platform raises on purpose."""

    status_code: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class BadRequest(SasError):
    status_code = 400
    code = "bad_request"


class Unauthenticated(SasError):
    status_code = 401
    code = "unauthenticated"


class Forbidden(SasError):
    status_code = 403
    code = "forbidden"


class NotFound(SasError):
    status_code = 404
    code = "not_found"


class Conflict(SasError):
    status_code = 409
    code = "conflict"


class Unprocessable(SasError):
    status_code = 422
    code = "unprocessable"


class PayloadTooLarge(SasError):
    """The request body exceeds what the route accepts (refused before it is read, when possible)."""

    status_code = 413
    code = "payload_too_large"


class TooManyRequests(SasError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int = 1, details: dict | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class BackendUnavailable(SasError):
    """Elasticsearch (or another backend) cannot be reached: the client should retry later."""

    status_code = 503
    code = "backend_unavailable"

    def __init__(self, message: str, *, retry_after_s: int = 5, details: dict | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after_s = retry_after_s


class Overloaded(BackendUnavailable):
    """This API process already runs as many searches as it may: retry shortly (or on another replica)."""

    code = "overloaded"


class BadGateway(SasError):
    """A vendor we asked on the caller's behalf failed or refused (a ``connectors.vendors.errors.VendorError``)."""

    status_code = 502
    code = "vendor_error"


class BackendTimeout(SasError):
    status_code = 504
    code = "backend_timeout"


class ConfigurationError(SasError):
    """The platform is set up wrongly (missing file, bad setting); raised by CLI and start-up code."""

    status_code = 500
    code = "configuration_error"


class DataQualityError(SasError):
    """An input file or feed is too broken to be loaded (e.g. rejected share above the threshold)."""

    status_code = 422
    code = "data_quality"
