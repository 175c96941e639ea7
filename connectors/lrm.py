"""INT_L02: orientation messages to the regulation software (LRM) of each SAS, over AMQP 0-9-1.

The message content follows the national specification ("Données transmises au LRM"): appointment id,
method (``CreateAppointment`` / ``UpdateAppointment``), creation time, start, end, status, orientation
category, practitioner (national id, names, specialty, profession), organization (structure id and
name) and the regulator who booked (national id, names, e-mail). It travels inside an EDXL-DE envelope
holding an RC-DE header, addressed to the SAMU of the orienting territory (``fr.health.samu330`` for
SAS-33). Nothing about the patient is ever part of it.

``LrmPublisher`` publishes from one background thread (pika's blocking connection is not thread-safe):
callers only enqueue, so a slow or absent broker never slows a booking down. Publisher confirms are on;
a message is dropped from the queue only once the broker confirmed it; the connection is re-opened with
a growing pause after a failure. Nothing here knows Elasticsearch.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import orjson

log = logging.getLogger(__name__)

SPECIALTY_URL = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
PROFESSION_URL = "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante"


def samu_recipient(territory: str | None) -> str:
    """Hub Santé address of the SAMU of a territory: ``SAS-33`` → ``fr.health.samu330``."""
    code = (territory or "").upper().removeprefix("SAS-")
    if not code:
        return "fr.health.samu000"
    return f"fr.health.samu{code if len(code) == 3 else code + '0'}"


PARIS = ZoneInfo("Europe/Paris")


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
    if structure.get("id") or structure.get("name"):
        organization = _drop_empty({"organizationId": structure.get("id"), "name": structure.get("name")})
    content = _drop_empty({
        "appointmentId": orientation["id"],
        "method": method,
        "created": _local(orientation.get("created_at")),
        "status": orientation.get("status"),
        "orientationCategory": orientation.get("category"),
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
    distribution_id = message_id or f"{sender_id}_{uuid.uuid4()}"
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


class Publisher(Protocol):
    def publish(self, orientation: dict[str, Any], *, method: str) -> None: ...

    def close(self) -> None: ...


class NullPublisher:
    """INT_L02 switched off (no ``SAS_LRM_AMQP_URL``): messages are counted, not sent."""

    def __init__(self) -> None:
        self.skipped = 0

    def publish(self, orientation: dict[str, Any], *, method: str) -> None:
        self.skipped += 1

    def close(self) -> None:
        return None

    def flush(self, timeout_s: float = 0.0) -> bool:
        return True


class LrmPublisher:
    """Publishes orientation messages to an AMQP exchange from a background thread.

    Routing key = the recipient SAMU (``fr.health.samu330``); the Hub (or a local binding) routes it
    to that SAMU's ``message`` queue. Messages are persistent JSON with ``message_id`` = distributionID.
    """

    def __init__(self, *, url: str, exchange: str, sender_id: str, ttl_s: int = 86400, max_queue: int = 10_000,
                 exchange_type: str = "topic", clock=lambda: datetime.now(timezone.utc)) -> None:
        self.url = url
        self.exchange = exchange
        self.exchange_type = exchange_type
        self.sender_id = sender_id
        self.ttl_s = ttl_s
        self.clock = clock
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self.published = 0
        self.failures = 0
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="lrm-publisher", daemon=True)
        self._thread.start()

    # -- callers --------------------------------------------------------------------------------

    def publish(self, orientation: dict[str, Any], *, method: str) -> None:
        """Queue the message of ``orientation`` (never blocks; the oldest is dropped when full)."""
        content = appointment_content(orientation, method=method)
        recipient = samu_recipient((orientation.get("regulator") or {}).get("territory") or orientation.get("territory"))
        message = envelope(content, sender_id=self.sender_id, recipient=recipient, now=self.clock(), ttl_s=self.ttl_s)
        while True:
            try:
                self._queue.put_nowait((recipient, message))
                # Cleared after the put: the thread sets it again only once the queue is drained.
                self._idle.clear()
                return
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

        parameters = pika.URLParameters(self.url)
        parameters.heartbeat = 30
        parameters.blocked_connection_timeout = 30
        parameters.socket_timeout = 5
        connection = pika.BlockingConnection(parameters)
        channel = connection.channel()
        channel.exchange_declare(exchange=self.exchange, exchange_type=self.exchange_type, durable=True)
        channel.confirm_delivery()
        return connection, channel

    def _send(self, channel, recipient: str, message: dict) -> None:
        import pika

        channel.basic_publish(
            exchange=self.exchange, routing_key=recipient, body=orjson.dumps(message), mandatory=False,
            properties=pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                message_id=message["distributionID"], app_id=self.sender_id,
                headers={"recipient": recipient}),
        )

    def _run(self) -> None:
        connection = channel = None
        pause = 0.5
        pending: tuple[str, dict] | None = None
        while not self._stop.is_set():
            if pending is None:
                try:
                    pending = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if self._queue.unfinished_tasks == 0:
                        self._idle.set()
                    if connection is not None:
                        try:
                            connection.process_data_events(0)   # heartbeats while idle
                        except Exception:  # noqa: BLE001 - any failure means: reconnect later
                            connection = channel = None
                    continue
            try:
                if channel is None:
                    connection, channel = self._connect()
                self._send(channel, *pending)
                self.published += 1
                self._queue.task_done()
                pending = None
                pause = 0.5
            except Exception as exc:  # noqa: BLE001 - broker down, refused, unroutable: retry later
                self.failures += 1
                log.warning("LRM publication failed, will retry", extra={"error": type(exc).__name__,
                                                                        "retry_in_s": pause})
                try:
                    if connection is not None and connection.is_open:
                        connection.close()
                except Exception:  # noqa: BLE001
                    pass
                connection = channel = None
                self._stop.wait(pause)
                pause = min(pause * 2, 30.0)
        try:
            if connection is not None and connection.is_open:
                connection.close()
        except Exception:  # noqa: BLE001
            pass


def make_publisher(*, url: str | None, exchange: str, sender_id: str, ttl_s: int, max_queue: int):
    """The publisher of the settings: ``LrmPublisher`` when a URL is set, else ``NullPublisher``."""
    if not url:
        return NullPublisher()
    return LrmPublisher(url=url, exchange=exchange, sender_id=sender_id, ttl_s=ttl_s, max_queue=max_queue)
