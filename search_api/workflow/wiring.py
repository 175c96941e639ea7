"""The workflow services of one app, built on first use (``get_workflow``), sharing one store and
one INT_L02 publisher."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from connectors.lrm import make_publisher
from connectors.vendors.config import VendorConfig, load_editors
from sas_core.settings import Settings
from search_api.executor import Executor
from search_api.workflow.accounts import AccountService
from search_api.workflow.booking import BookingService
from search_api.workflow.declarations import DeclarationService
from search_api.workflow.orientations import OrientationService
from search_api.workflow.reports import ReportService
from search_api.workflow.store import DocStore


@dataclass
class Workflow:
    settings: Settings
    store: DocStore
    publisher: object
    orientations: OrientationService
    booking: BookingService
    declarations: DeclarationService
    reports: ReportService
    accounts: AccountService
    _vendors: list[VendorConfig] | None = field(default=None, repr=False)

    def vendors(self) -> list[VendorConfig]:
        """The editors registry (``SAS_EDITORS_FILE``), read once."""
        if self._vendors is None:
            self._vendors = load_editors(self.settings.editors_file)
        return self._vendors


def build_workflow(settings: Settings, executor: Executor, *, publisher=None) -> Workflow:
    store = DocStore(executor)
    publisher = publisher or make_publisher(url=settings.lrm_amqp_url, exchange=settings.lrm_exchange,
                                            sender_id=settings.lrm_sender_id, ttl_s=settings.lrm_message_ttl_s,
                                            max_queue=settings.lrm_queue_size)
    from search_api.audit import AuditLog

    orientations = OrientationService(store=store, publisher=publisher, audit=AuditLog(executor=executor))
    holder: dict = {}

    def vendors() -> list[VendorConfig]:
        return holder["workflow"].vendors()

    workflow = Workflow(
        settings=settings, store=store, publisher=publisher, orientations=orientations,
        booking=BookingService(store=store, orientations=orientations, settings=settings, vendors=vendors),
        declarations=DeclarationService(store=store),
        reports=ReportService(store=store, orientations=orientations),
        accounts=AccountService(store=store, settings=settings, vendors=vendors),
    )
    holder["workflow"] = workflow
    return workflow


_lock = threading.Lock()


def get_workflow(request: Request) -> Workflow:
    """The app's workflow services (``app.state.workflow``), created once."""
    workflow = getattr(request.app.state, "workflow", None)
    if workflow is None:
        with _lock:
            workflow = getattr(request.app.state, "workflow", None)
            if workflow is None:
                workflow = build_workflow(request.app.state.settings, request.app.state.executor)
                request.app.state.workflow = workflow
    return workflow
