"""The workflow services of one app, built once at start-up (``search_api.services``), sharing one store,
one INT_L02 publisher and, when the Hub is configured, one listener of its ``ack``/``info`` queues."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from connectors.lrm import HubConnection, HubListener, Publisher, hub_queues, make_publisher
from connectors.vendors.config import VendorConfig, load_vendors
from sas_core.metrics import HARVEST_DELETIONS_HELD
from sas_core.settings import Settings
from search_api.audit import AuditLog
from search_api.auth import Principal
from search_api.executor import Executor
from search_api.workflow.accounts import AccountService
from search_api.workflow.booking import BookingService
from search_api.workflow.dashboards import latest_harvest_runs_body, latest_runs
from search_api.workflow.declarations import DeclarationService
from search_api.workflow.lrm_delivery import DeliveryTracker
from search_api.workflow.orientations import OrientationService, require_effecteur_of
from search_api.workflow.reports import ReportService
from search_api.workflow.scope import scope_for
from search_api.workflow.store import DocStore


@dataclass
class Workflow:
    settings: Settings
    store: DocStore
    publisher: Publisher
    orientations: OrientationService
    booking: BookingService
    declarations: DeclarationService
    reports: ReportService
    accounts: AccountService
    deliveries: DeliveryTracker | None = None
    listener: HubListener | None = None
    _vendors: list[VendorConfig] | None = field(default=None, repr=False)

    def vendors(self) -> list[VendorConfig]:
        """The vendors registry (``SAS_VENDORS_FILE``), read once."""
        if self._vendors is None:
            self._vendors = load_vendors(self.settings.vendors_file)
        return self._vendors

    def honour(self, orientation_id: str, principal: Principal) -> dict:
        """The effecteur of the orientation confirms that the consultation took place."""
        scope = scope_for(principal)
        require_effecteur_of(scope, self.orientations.get(orientation_id, scope))
        return self.orientations.honour(orientation_id, scope=scope, by=principal.sub)

    def cancel(self, orientation_id: str, principal: Principal, *, reason: str | None) -> dict:
        """Cancel an open orientation of the caller's scope; the platform agenda's place or the vendor
        claim is given back."""

        def give_back(document: dict) -> None:
            if document.get("source") == "platform_agenda" and document.get("slot_id"):
                self.booking.release_agenda_place(document["slot_id"])
            else:
                self.booking.release_vendor_claim(document)

        return self.orientations.cancel(orientation_id, scope=scope_for(principal), by=principal.sub,
                                        reason=reason, on_cancel=give_back)


def hub_connection(settings: Settings) -> HubConnection | None:
    """The Hub of the settings, or ``None`` (INT_L02 off). A Hub without certificate is refused: it
    only accepts TLS clients authenticated by theirs."""
    if not settings.lrm_hub_host:
        return None
    cert, key, ca = settings.lrm_tls_cert, settings.lrm_tls_key, settings.lrm_tls_ca
    if cert is None or key is None or ca is None:
        missing = [name for name in ("lrm_tls_cert", "lrm_tls_key", "lrm_tls_ca") if getattr(settings, name) is None]
        raise ValueError("SAS_LRM_HUB_HOST needs " + ", ".join(f"SAS_{m.upper()}" for m in missing))
    return HubConnection(host=settings.lrm_hub_host, port=settings.lrm_hub_port, vhost=settings.lrm_hub_vhost,
                         cert_file=cert, key_file=key, ca_file=ca, server_name=settings.lrm_tls_server_name)


def build_workflow(settings: Settings, executor: Executor, *, audit: AuditLog, publisher=None,
                   on_declarations_changed: Callable[[], None] = lambda: None) -> Workflow:
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
    orientations = OrientationService(store=store, publisher=publisher, audit=audit)
    holder: dict = {}

    def vendors() -> list[VendorConfig]:
        return holder["workflow"].vendors()

    workflow = Workflow(
        settings=settings, store=store, publisher=publisher, orientations=orientations,
        booking=BookingService(store=store, orientations=orientations, settings=settings, vendors=vendors),
        declarations=DeclarationService(store=store, max_report_hours=settings.report_max_hours,
                                        reports_per_hour=settings.reports_per_hour,
                                        on_change=on_declarations_changed),
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


def refresh_metrics(app) -> None:
    """Figures of ``/metrics`` read from the index at scrape time (mass-deletion alerts of the harvests,
    undelivered INT_L02 messages)."""
    services = getattr(app.state, "services", None)
    if services is None:
        return
    refresh_harvest_alerts(services.workflow.store)
    workflow = services.workflow
    if workflow.deliveries is not None and workflow.publisher.enabled:
        workflow.deliveries.refresh_gauge()


def refresh_harvest_alerts(store: DocStore) -> None:
    """``sas_harvest_deletions_held`` per vendor from its latest run: the harvests may run in another
    process (``sas scheduler``), the ``harvest_runs`` index is the record every process shares."""
    latest = latest_runs(store.search("harvest_runs", latest_harvest_runs_body()))
    HARVEST_DELETIONS_HELD.clear()
    for vendor, run in latest.items():
        HARVEST_DELETIONS_HELD.labels(vendor).set(int(run.get("deletions_held") or 0))
