"""INT_L02: orientation messages to the regulation software (LRM) of each SAS, through the Hub Santé.

The message content follows the national specification ("Données transmises au LRM"): appointment id,
method (``CreateAppointment`` / ``UpdateAppointment``), creation time, start, end, status (the guide's
list only: ``PENDING``, ``BOOKED``, ``FULFILLED``, ``NOSHOW``, ``CANCELLED``), orientation category
(``PS``, ``SOS``, ``PDM``, ``CPTS``, ``CDS``, ``MSP``), practitioner, organization and the regulator
who booked. It travels inside an EDXL-DE envelope holding an RC-DE header, addressed to the SAMU of the
orienting territory (``fr.health.samu330`` for SAS-33). Nothing about the patient is ever part of it.

Transport as the Hub specifies it: AMQP 0-9-1 over TLS with the platform's client certificate, SASL
EXTERNAL (the Hub knows a client by its certificate), a vhost, the ``hubsante`` exchange, and as
routing key the *sender's* own client id (the Hub checks that it equals ``senderID`` and routes on
``explicitAddressValue``). Persistent JSON messages (the Hub refuses others).

``LrmPublisher`` publishes from one background thread (pika's blocking connection is not thread-safe):
callers only enqueue, so a slow or absent Hub never slows a booking down. Publisher confirms are on
(the Hub's technical acknowledgement); a message is dropped from the queue only once the broker
confirmed it, and ``on_published`` is told; the connection is re-opened with a growing pause after a
failure. ``HubListener`` consumes the platform's ``{clientId}.ack`` (final acknowledgements, RC-REF)
and ``{clientId}.info`` (errors) queues and hands each one, parsed, to a handler. Nothing here knows
Elasticsearch.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

from sas_core.clock import utcnow
from sas_core.territories import samu_id

log = logging.getLogger(__name__)

SPECIALTY_URL = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
PROFESSION_URL = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"


def samu_recipient(territory: str | None) -> str:
    """Hub Santé address of the SAMU of a territory: ``SAS-33`` → ``fr.health.samu330`` (one formula with
    INT_L01's ``origin``: ``sas_core.territories.samu_id``)."""
    if territory is None or not territory.strip().upper().removeprefix("SAS-"):
        return "fr.health.samu000"
    return samu_id(territory)


PARIS = ZoneInfo("Europe/Paris")

CREATE = "CreateAppointment"
UPDATE = "UpdateAppointment"

#: Internal status → the guide's list ("status": PENDING, BOOKED, FULFILLED, NOSHOW, CANCELLED).
#: ``oriented`` (sent to a vendor's booking page, or to a practitioner beyond his slots) is awaiting
#: confirmation: PENDING, until the vendor's INT_R03 report confirms it (then BOOKED).
GUIDE_STATUS = {"oriented": "PENDING", "pending": "PENDING", "booked": "BOOKED", "fulfilled": "FULFILLED",
                "noshow": "NOSHOW", "cancelled": "CANCELLED"}
#: The guide's orientationCategory list.
GUIDE_CATEGORIES = frozenset({"PS", "SOS", "PDM", "CPTS", "CDS", "MSP"})


def hold_reason(orientation: dict[str, Any]) -> str | None:
    """Why an orientation cannot be announced yet, or ``None``.

    ``start`` and ``end`` are required in the message: an orientation beyond displayed slots whose
    time is not agreed yet would be refused by the Hub (INVALID_MESSAGE). It is held, and announced
    (``CreateAppointment``) by the update that brings its time."""
    if not orientation.get("consultation_start"):
        return "start_unknown"
    if not orientation.get("consultation_end"):
        return "end_unknown"
    return None


def _local(value: str | None) -> str | None:
    """An instant as the specification's examples write them: Paris time with its offset."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(PARIS).isoformat(timespec="seconds")


def _drop_empty(data: dict) -> dict:
    return {k: v for k, v in data.items() if v not in (None, "", [], {})}


def appointment_content(orientation: dict[str, Any], *, method: str) -> dict[str, Any]:
    """The ``appointment`` object of an orientation document (``method``: Create/UpdateAppointment)."""
    effecteur = orientation.get("effecteur") or {}
    regulator = orientation.get("regulator") or {}
    structure = orientation.get("structure") or {}
    practitioner = None
    if effecteur.get("national_id"):
        practitioner = _drop_empty({
            "rppsId": effecteur.get("national_id"),
            "lastName": effecteur.get("family_name") or effecteur.get("name"),
            "firstName": effecteur.get("given_name"),
            "specialityCode": effecteur.get("specialty"),
            "specialityUrl": SPECIALTY_URL if effecteur.get("specialty") else None,
            "professionUrl": PROFESSION_URL if effecteur.get("profession_code") else None,
            "professionCode": effecteur.get("profession_code"),
        })
    organization = None
    # Both fields are required in an organization: half of one is not sent. The id is already in its
    # wire form (1 + FINESS, 3 + SIRET) and passed through.
    if structure.get("id") and structure.get("name"):
        organization = {"organizationId": structure["id"], "name": structure["name"]}
    category = orientation.get("category")
    content = _drop_empty({
        "appointmentId": orientation["id"],
        "method": method,
        "created": _local(orientation.get("created_at")),
        "status": GUIDE_STATUS[orientation["status"]],
        # 0..1 in the guide: a category outside its list is left out rather than refused by the Hub.
        "orientationCategory": category if category in GUIDE_CATEGORIES else None,
        "start": _local(orientation.get("consultation_start")),
        "end": _local(orientation.get("consultation_end")),
        "practitioner": practitioner,
        "organization": organization,
        # The platform UUID of a regulator without national id is not sent (known to the platform only).
        "regulator": _drop_empty({
            "regulatorId": regulator.get("national_id"),
            "regulatorName": regulator.get("family_name") or regulator.get("name"),
            "regulatorFirstname": regulator.get("given_name"),
            "regulatorEmail": regulator.get("email"),
        }),
    })
    return content


def envelope(content: dict[str, Any], *, sender_id: str, recipient: str, now: datetime, ttl_s: int,
             message_id: str | None = None) -> dict[str, Any]:
    """EDXL-DE envelope holding the RC-DE header and the appointment."""
    distribution_id = message_id or new_message_id(sender_id)
    sent = now.astimezone(timezone.utc).isoformat(timespec="seconds")
    expires = (now + timedelta(seconds=ttl_s)).astimezone(timezone.utc).isoformat(timespec="seconds")
    return {
        "distributionID": distribution_id,
        "senderID": sender_id,
        "dateTimeSent": sent,
        "dateTimeExpires": expires,
        "distributionStatus": "Actual",
        "distributionKind": "Report",
        "descriptor": {"language": "fr-FR",
                       "explicitAddress": {"explicitAddressScheme": "hubex", "explicitAddressValue": recipient}},
        "content": [{"jsonContent": {"embeddedJsonContent": {"message": {
            "messageId": distribution_id,
            "sender": {"name": sender_id, "URI": f"hubex:{sender_id}"},
            "sentAt": sent,
            "status": "Actual",
            "kind": "Report",
            "recipient": [{"name": recipient, "URI": f"hubex:{recipient}"}],
            "appointment": content,
        }}}}],
    }


def new_message_id(sender_id: str) -> str:
    """``<senderId>_<internalId>``: the Hub refuses a distributionID not prefixed by the sender."""
    return f"{sender_id}_{uuid.uuid4()}"


# -- connection to the Hub -----------------------------------------------------------------------------

@dataclass(frozen=True)
class HubConnection:
    """Where and how to reach the Hub: AMQPS, the platform's client certificate, SASL EXTERNAL."""

    host: str
    port: int
    vhost: str
    cert_file: Path
    key_file: Path
    ca_file: Path
    #: Name checked in the Hub's certificate (defaults to ``host``).
    server_name: str | None = None
    heartbeat_s: int = 30

    def parameters(self):
        import pika

        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_file))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(str(self.cert_file), str(self.key_file))
        return pika.ConnectionParameters(
            host=self.host, port=self.port, virtual_host=self.vhost,
            credentials=pika.credentials.ExternalCredentials(),
            ssl_options=pika.SSLOptions(context, server_hostname=self.server_name or self.host),
            heartbeat=self.heartbeat_s, blocked_connection_timeout=30, socket_timeout=5,
            connection_attempts=1,
        )


class Publisher(Protocol):
    enabled: bool

    def new_message_id(self) -> str: ...

    def publish(self, orientation: dict[str, Any], *, method: str, message_id: str | None = None) -> str: ...

    def close(self) -> None: ...


class NullPublisher:
    """INT_L02 switched off (no ``SAS_LRM_HUB_HOST``): messages are counted, not sent."""

    enabled = False

    def __init__(self) -> None:
        self.skipped = 0

    def new_message_id(self) -> str:
        return ""

    def publish(self, orientation: dict[str, Any], *, method: str, message_id: str | None = None) -> str:
        self.skipped += 1
        return ""

    def close(self) -> None:
        return None

    def flush(self, timeout_s: float = 0.0) -> bool:
        return True


#: ``on_published(orientation_id, distribution_id)``: the broker confirmed the message.
#: ``on_failed(orientation_id, distribution_id, code, reason)``: it never will (e.g. unroutable).
Published = Callable[[str, str], None]
Failed = Callable[[str, str, str, str], None]


class LrmPublisher:
    """Publishes orientation messages to the Hub's exchange from a background thread."""

    enabled = True

    def __init__(self, *, connection: HubConnection, exchange: str, sender_id: str, routing_key: str | None = None,
                 ttl_s: int = 86400, max_queue: int = 10_000, on_published: Published | None = None,
                 on_failed: Failed | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.connection = connection
        self.exchange = exchange
        self.sender_id = sender_id
        # The Hub accepts from a client only its own id as routing key (topic permission + senderID check).
        self.routing_key = routing_key or sender_id
        self.ttl_s = ttl_s
        self.clock = clock
        self.on_published = on_published
        self.on_failed = on_failed
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.published = 0
        self.failures = 0
        self.dropped = 0
        # The AMQP connection and channel of the publishing thread (only it touches them).
        self._amqp: Any = None
        self._channel: Any = None
        self._thread = threading.Thread(target=self._run, name="lrm-publisher", daemon=True)
        self._thread.start()

    # -- callers --------------------------------------------------------------------------------

    def new_message_id(self) -> str:
        return new_message_id(self.sender_id)

    def publish(self, orientation: dict[str, Any], *, method: str, message_id: str | None = None) -> str:
        """Queue the message of ``orientation`` (never blocks; the oldest is dropped when full).
        Returns its distributionID."""
        content = appointment_content(orientation, method=method)
        territory = (orientation.get("regulator") or {}).get("territory") or orientation.get("territory")
        recipient = samu_recipient(territory)
        message = envelope(content, sender_id=self.sender_id, recipient=recipient, now=self.clock(), ttl_s=self.ttl_s,
                           message_id=message_id or self.new_message_id())
        item = (str(orientation["id"]), message)
        while True:
            try:
                self._queue.put_nowait(item)
                # Cleared after the put: the thread sets it again only once the queue is drained.
                self._idle.clear()
                return message["distributionID"]
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                    self.dropped += 1
                    log.error("LRM queue full: oldest message dropped", extra={"dropped": self.dropped})
                except queue.Empty:
                    pass

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every queued message was confirmed by the broker (tests, shutdown)."""
        return self._idle.wait(timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        self.flush(timeout_s)
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    # -- the publishing thread ------------------------------------------------------------------

    def _connect(self):
        import pika

        connection = pika.BlockingConnection(self.connection.parameters())
        channel = connection.channel()
        # The exchange is the Hub's: a client has no right to declare it, only to publish to it.
        channel.confirm_delivery()
        return connection, channel

    def _send(self, channel, message: dict) -> None:
        import pika

        channel.basic_publish(
            exchange=self.exchange, routing_key=self.routing_key, body=orjson.dumps(message), mandatory=True,
            properties=pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8", delivery_mode=2, priority=0,
                message_id=message["distributionID"], app_id=self.sender_id),
        )

    def _tell(self, callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:  # noqa: BLE001 - recording the outcome must never stop the publishing
            log.exception("could not record an LRM delivery outcome", extra={"distribution_id": args[1]})

    def _run(self) -> None:
        import pika.exceptions

        pause = 0.5
        pending: tuple[str, dict] | None = None
        while not self._stop.is_set():
            if pending is None:
                pending = self._next_message()
                if pending is None:
                    continue
            orientation_id, message = pending
            try:
                self._publish_now(message)
                self.published += 1
                self._queue.task_done()
                pending = None
                pause = 0.5
                self._tell(self.on_published, orientation_id, message["distributionID"])
            except pika.exceptions.UnroutableError:
                # Returned by the broker: retrying would block every later message behind this one.
                self._queue.task_done()
                pending = None
                log.error("LRM message unroutable", extra={"distribution_id": message["distributionID"]})
                self._tell(self.on_failed, orientation_id, message["distributionID"], "UNROUTABLE",
                           f"no queue bound to {self.exchange!r} for routing key {self.routing_key!r}")
            except Exception as exc:  # noqa: BLE001 - broker down, refused, nacked: retry later
                self.failures += 1
                log.warning("LRM publication failed, will retry", extra={"error": type(exc).__name__,
                                                                        "retry_in_s": pause})
                self._drop_connection()
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
        self._drop_connection()

    def _next_message(self) -> tuple[str, dict] | None:
        """The next queued message, or ``None`` after a short wait (the connection's heartbeats are served
        meanwhile, and the idle flag is set once the queue is drained)."""
        try:
            return self._queue.get(timeout=0.2)
        except queue.Empty:
            pass
        if self._queue.unfinished_tasks == 0:
            self._idle.set()
        if self._amqp is not None:
            try:
                self._amqp.process_data_events(0)   # heartbeats while idle
            except Exception:  # noqa: BLE001 - any failure means: reconnect later
                self._amqp = self._channel = None
        return None

    def _publish_now(self, message: dict) -> None:
        """Send one message, connecting first when there is no connection; raises what the broker says."""
        if self._channel is None:
            self._amqp, self._channel = self._connect()
        self._send(self._channel, message)

    def _drop_connection(self) -> None:
        """Close the connection, quietly (it is usually broken already); the next message reconnects."""
        try:
            if self._amqp is not None and self._amqp.is_open:
                self._amqp.close()
        except Exception:  # noqa: BLE001
            pass
        self._amqp = self._channel = None


# -- what comes back: final acknowledgements and errors ---------------------------------------------------

@dataclass(frozen=True)
class HubReport:
    """One message of the ``ack`` or ``info`` queue, about one of ours (``distribution_id``)."""

    kind: str                       # "ack" (final acknowledgement, RC-REF) or "error"
    distribution_id: str | None     # the distributionID of our message it is about
    sender: str | None              # who says so: the LRM (fr.health.samuXXX) or the Hub (fr.health.hub)
    refused: bool = False
    code: int | None = None         # Hub: 102, 300, 400, 500...; LRM: e.g. 409
    status: str | None = None       # statusString, e.g. INVALID_MESSAGE
    cause: str | None = None


MAX_CAUSE = 1000


def parse_hub_report(body: bytes) -> HubReport | None:
    """The report of an ``ack``/``info`` message, or ``None`` when it is about nothing of ours."""
    try:
        data = orjson.loads(body)
        kind = str(data.get("distributionKind") or "")
        inner = data["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError):
        return None
    sender = data.get("senderID")
    if kind == "Ack" and isinstance(inner.get("reference"), dict):
        reference = inner["reference"]
        return HubReport(kind="ack", distribution_id=reference.get("distributionID"), sender=sender,
                         refused=bool(reference.get("refused")),
                         cause=("refused by the recipient" if reference.get("refused") else None))
    if kind == "Error" and isinstance(inner.get("error"), dict):
        error = inner["error"]
        code = error.get("errorCode") or {}
        referenced = error.get("referencedDistributionID")
        source = error.get("sourceMessage")
        if not referenced and isinstance(source, dict):
            referenced = source.get("distributionID")
        status_code = code.get("statusCode")
        return HubReport(kind="error", distribution_id=referenced, sender=sender, refused=True,
                         code=int(status_code) if isinstance(status_code, int | float) else None,
                         status=code.get("statusString"),
                         cause=str(error.get("errorCause") or "")[:MAX_CAUSE] or None)
    return None


class HubListener:
    """Consumes the platform's ``ack`` and ``info`` queues in a background thread.

    Each message is parsed and handed to ``handler(report)``; it is acknowledged to the broker once the
    handler returned (a failing handler — Elasticsearch down — gets it again after a pause: nothing is
    lost). Messages about nothing of ours are acknowledged and counted (``ignored``).
    """

    def __init__(self, *, connection: HubConnection, queues: list[str], handler: Callable[[HubReport], None],
                 prefetch: int = 20, retry_pause_s: float = 1.0) -> None:
        self.connection = connection
        self.queues = list(queues)
        self.handler = handler
        self.prefetch = prefetch
        self.retry_pause_s = retry_pause_s
        self.handled = 0
        self.ignored = 0
        self.failures = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lrm-hub-listener", daemon=True)

    def start(self) -> HubListener:
        self._thread.start()
        return self

    def close(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout_s)

    def _on_message(self, channel, method, properties, body) -> None:
        report = parse_hub_report(body)
        if report is None or not report.distribution_id:
            self.ignored += 1
            log.warning("Hub message about nothing of ours ignored", extra={"queue": method.routing_key})
            channel.basic_ack(method.delivery_tag)
            return
        try:
            self.handler(report)
        except Exception:  # noqa: BLE001 - kept in the queue: handled again after a pause
            self.failures += 1
            log.exception("could not record a Hub report, will retry",
                          extra={"distribution_id": report.distribution_id})
            self._stop.wait(self.retry_pause_s)
            channel.basic_nack(method.delivery_tag, requeue=True)
            return
        self.handled += 1
        channel.basic_ack(method.delivery_tag)

    def _run(self) -> None:
        import pika

        pause = 0.5
        while not self._stop.is_set():
            connection = None
            try:
                connection = pika.BlockingConnection(self.connection.parameters())
                channel = connection.channel()
                channel.basic_qos(prefetch_count=self.prefetch)
                for name in self.queues:
                    # The queues are the Hub's: consumed, never declared.
                    channel.basic_consume(queue=name, on_message_callback=self._on_message)
                self.connected.set()
                pause = 0.5
                while not self._stop.is_set():
                    connection.process_data_events(time_limit=0.5)
            except Exception as exc:  # noqa: BLE001 - Hub down, queue missing, refused: reconnect later
                self.connected.clear()
                self.failures += 1
                log.warning("Hub listener disconnected, will retry", extra={"error": type(exc).__name__,
                                                                           "retry_in_s": pause})
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
            finally:
                try:
                    if connection is not None and connection.is_open:
                        connection.close()
                except Exception:  # noqa: BLE001
                    pass
        self.connected.clear()


def hub_queues(client_id: str) -> list[str]:
    """The platform listens on ``{clientId}.ack`` and ``{clientId}.info``."""
    return [f"{client_id}.ack", f"{client_id}.info"]


def make_publisher(*, connection: HubConnection | None, exchange: str, sender_id: str, routing_key: str | None,
                   ttl_s: int, max_queue: int, on_published: Published | None = None, on_failed: Failed | None = None):
    """The publisher of the settings: ``LrmPublisher`` when the Hub is configured, else ``NullPublisher``."""
    if connection is None:
        return NullPublisher()
    return LrmPublisher(connection=connection, exchange=exchange, sender_id=sender_id, routing_key=routing_key,
                        ttl_s=ttl_s, max_queue=max_queue, on_published=on_published, on_failed=on_failed)
