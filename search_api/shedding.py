"""Load shedding of the search routes: past capacity, a quick 503 beats a slow answer for everyone.

Past ``max_concurrent_searches`` admitted searches, the next one is refused at once with 503 and
``Retry-After``: queueing it behind the thread pool only made every caller wait seconds (p99 grew with
the queue) and the probes with them. The count is kept on the event loop (an ``async`` dependency,
solved before the synchronous endpoint is handed to the thread pool), so no lock is needed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from sas_core.errors import Overloaded
from sas_core.metrics import SEARCHES_SHED


class SearchAdmission:
    """In-flight search counter of one API process."""

    def __init__(self, *, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.in_flight = 0


async def admit_search(request: Request) -> AsyncIterator[None]:
    """Route dependency: count the search while it runs, or refuse it when the limit is reached."""
    admission: SearchAdmission = request.app.state.search_admission
    if admission.limit and admission.in_flight >= admission.limit:
        SEARCHES_SHED.inc()
        raise Overloaded(f"too many searches in progress ({admission.limit}); retry in {admission.retry_after_s} s",
                         retry_after_s=admission.retry_after_s)
    admission.in_flight += 1
    try:
        yield
    finally:
        admission.in_flight -= 1
