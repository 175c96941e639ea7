"""The one error family of the vendors boundary.

Whatever we ask a scheduling vendor — slots (INT_R01 / INT_R04 / SOS), an Appointment, an account push
(INT_R02) — a failure is a ``VendorError`` with a short, stable ``reason`` (for counting and metrics), the
HTTP status when there was one, and whether retrying may help. Callers above the boundary (the harvester,
the booking and account workflows) catch this family and decide what it means for them (a stale batch, a
502 to the operator, a retry later); they never see an ``httpx`` exception.
"""

from __future__ import annotations


class VendorError(Exception):
    """A request to a vendor failed (after retries). ``reason`` is short and stable, for counting."""

    retryable = False

    def __init__(self, reason: str, message: str, *, status: int | None = None,
                 retry_after_s: float | None = None, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s
        if retryable is not None:
            self.retryable = retryable


class VendorUnavailable(VendorError):
    """429, 5xx, timeout, connection failure: worth retrying, and counted by the circuit breaker."""

    retryable = True


class VendorRejected(VendorError):
    """4xx other than 429: our request was refused; retrying is useless and the vendor is not down."""


class VendorMalformed(VendorError):
    """The answer is not a usable FHIR Bundle (not JSON, wrong resource, foreign ``next`` link)."""


class CircuitOpen(VendorError):
    """The vendor's circuit breaker is open: no request sent."""


class AppointmentError(VendorError):
    """Creating the Appointment at the vendor failed (proxied booking): nothing was booked, as far as we know."""


#: Statuses with which a vendor refuses an account body: resending the same body is refused again.
ACCOUNT_REFUSALS = frozenset({400, 422})


class AccountSyncError(VendorError):
    """A push of an account to a vendor (INT_R02) failed after retries."""

    @property
    def refused(self) -> bool:
        """The vendor refused this body (not a transient or configuration failure)."""
        return self.status in ACCOUNT_REFUSALS
