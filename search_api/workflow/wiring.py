"""The workflow services of one app, built on first use (``get_workflow``), sharing one store, one
INT_L02 publisher and, when the Hub is configured, one listener of its ``ack``/``info`` queues."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from fastapi import Request

from connectors.lrm import HubConnection, HubListener, hub_queues, make_publisher
from connectors.vendors.config import VendorConfig, load_editors
from sas_core.settings import Settings
from search_api.executor import Executor
from search_api.workflow.accounts import AccountService
from search_api.workflow.booking import BookingService
from search_api.workflow.declarations import DeclarationService
from search_api.workflow.lrm_delivery import DeliveryTracker
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
    deliveries: DeliveryTracker | None = None
    listener: HubListener | None = None
    _vendors: list[VendorConfig] | None = field(default=None, repr=False)

    def vendors(self) -> list[VendorConfig]:
        """The editors registry (``SAS_EDITORS_FILE``), read once."""
        if self._vendors is None:
            self._vendors = load_editors(self.settings.editors_file)
        return self._vendors


def hub_connection(settings: Settings) -> HubConnection | None:
    """The Hub of the settings, or ``None`` (INT_L02 off). A Hub without certificate is refused: it
    only accepts TLS clients authenticated by theirs."""
    if not settings.lrm_hub_host:
        return None
    missing = [name for name in ("lrm_tls_cert", "lrm_tls_key", "lrm_tls_ca") if getattr(settings, name) is None]
    if missing:
        raise ValueError("SAS_LRM_HUB_HOST needs " + ", ".join(f"SAS_{m.upper()}" for m in missing))
    return HubConnection(host=settings.lrm_hub_host, port=settings.lrm_hub_port, vhost=settings.lrm_hub_vhost,
                         cert_file=settings.lrm_tls_cert, key_file=settings.lrm_tls_key, ca_file=settings.lrm_tls_ca,
                         server_name=settings.lrm_tls_server_name)


def build_workflow(settings: Settings, executor: Executor, *, publisher=None) -> Workflow:
    store = DocStore(executor)
    connection = hub_connection(settings)
    deliveries = DeliveryTracker(store=store)
    publisher = publisher or make_publisher(
        connection=connection, exchange=settings.lrm_exchange, sender_id=settings.lrm_sender_id,
        routing_key=settings.lrm_routing_key, ttl_s=settings.lrm_message_ttl_s, max_queue=settings.lrm_queue_size,
        on_published=deliveries.published, on_failed=deliveries.failed)
    listener = None
    if connection is not None and settings.lrm_listen:
        listener = HubListener(connection=connection, queues=hub_queues(settings.lrm_sender_id),
                               handler=deliveries.report).start()
    from search_api.audit import AuditLog

    orientations = OrientationService(store=store, publisher=publisher, audit=AuditLog(executor=executor))
    holder: dict = {}

    def vendors() -> list[VendorConfig]:
        return holder["workflow"].vendors()

    workflow = Workflow(
        settings=settings, store=store, publisher=publisher, orientations=orientations,
        booking=BookingService(store=store, orientations=orientations, settings=settings, vendors=vendors),
        declarations=DeclarationService(store=store, max_report_hours=settings.report_max_hours,
                                        reports_per_hour=settings.reports_per_hour),
        reports=ReportService(store=store, orientations=orientations, vendors=vendors),
        accounts=AccountService(store=store, settings=settings, vendors=vendors),
        deliveries=deliveries, listener=listener,
    )
    holder["workflow"] = workflow
    return workflow


def close_workflow(workflow: Workflow) -> None:
    """Stop the INT_L02 threads (tests, shutdown)."""
    if workflow.listener is not None:
        workflow.listener.close()
    workflow.publisher.close()


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


def refresh_metrics(app) -> None:
    """Figures of ``/metrics`` read from the index at scrape time (mass-deletion alerts of the harvests,
    undelivered INT_L02 messages)."""
    executor = getattr(app.state, "executor", None)
    if executor is not None:
        refresh_harvest_alerts(DocStore(executor))
    workflow = getattr(app.state, "workflow", None)
    if workflow is None:
        settings = getattr(app.state, "settings", None)
        if settings is None or not settings.lrm_hub_host:
            return
        with _lock:
            workflow = getattr(app.state, "workflow", None) or build_workflow(settings, app.state.executor)
            app.state.workflow = workflow
    if workflow.deliveries is not None and workflow.publisher.enabled:
        workflow.deliveries.refresh_gauge()


def refresh_harvest_alerts(store: DocStore) -> None:
    """``sas_harvest_deletions_held`` per vendor from its latest run: the harvests may run in another
    process (``sas scheduler``), the ``harvest_runs`` index is the record every process shares."""
    from sas_core.metrics import HARVEST_DELETIONS_HELD
    from search_api.workflow.dashboards import latest_harvest_runs_body, latest_runs

    latest = latest_runs(store.search("harvest_runs", latest_harvest_runs_body()))
    HARVEST_DELETIONS_HELD.clear()
    for vendor, run in latest.items():
        HARVEST_DELETIONS_HELD.labels(vendor).set(int(run.get("deletions_held") or 0))
