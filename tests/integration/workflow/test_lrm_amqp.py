"""INT_L02 against a real RabbitMQ (Debian's, started by scripts/rabbitmq.sh) on its AMQPS listener:
TLS with client certificates and SASL EXTERNAL, the Hub's vhost, users and permissions.

The Hub Santé is played by a dispatcher (``hub.dispatcher``) that does what the Hub does with a message
published on ``hubsante``: it refuses one that is not persistent JSON, whose routing key is not its
sender, whose distributionID is not prefixed by it, that has expired, or whose appointment breaks the
guide's rules (error 300 on the sender's ``info`` queue, like the Hub's); it forwards the others to
``{recipient}.message`` (Report), ``.ack`` (Ack) or ``.info`` (Error). On demand it answers the next
message with one of its technical errors (102, 400, 500). The regulation software of SAS-33
(``fr.health.samu330``, its own certificate) reads its ``message`` queue and acknowledges (RC-REF) or
rejects (error 409) each message as the test tells it.
"""

from __future__ import annotations

import os
import ssl
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import pika
import pika.exceptions
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from connectors.lrm import HubConnection, HubListener, HubReport, LrmPublisher, hub_queues
from tests.weblogin import post_login

ROOT = Path(__file__).resolve().parents[3]
TLS_PORT = int(os.environ.get("SAS_RABBITMQ_TLS_PORT", "5671"))
HOME = Path(os.environ.get("SAS_RABBITMQ_HOME", "/var/lib/rabbitmq/sas"))
VHOST = os.environ.get("SAS_RABBITMQ_HUB_VHOST", "15-15_v2.0")
CLIENT = "fr.health.test.ptfsas"
LRM = "fr.health.samu330"
DISPATCHER = "hub.dispatcher"
EXCHANGE = "hubsante"
TLS = HOME / "tls"

GUIDE_STATUSES = {"PENDING", "BOOKED", "FULFILLED", "NOSHOW", "CANCELLED"}
GUIDE_CATEGORIES = {"PS", "SOS", "PDM", "CPTS", "CDS", "MSP"}
GUIDE_METHODS = {"CreateAppointment", "UpdateAppointment"}
HUB_ERRORS = {102: "UNRECOGNIZED_MESSAGE_FORMAT", 300: "INVALID_MESSAGE", 400: "EXPIRED_MESSAGE_BEFORE_ROUTING",
              500: "DEAD_LETTERED_QUEUE"}


def connection_of(cn: str) -> HubConnection:
    return HubConnection(host="127.0.0.1", port=TLS_PORT, vhost=VHOST, cert_file=TLS / "clients" / f"{cn}.pem",
                         key_file=TLS / "clients" / f"{cn}.key", ca_file=TLS / "ca.pem", server_name="localhost")


def inner(message: dict) -> dict:
    return message["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]


def edxl(*, sender: str, recipient: str, kind: str, message: dict) -> dict:
    distribution_id = f"{sender}_{uuid.uuid4()}"
    now = datetime.now(timezone.utc)
    return {"distributionID": distribution_id, "senderID": sender, "dateTimeSent": now.isoformat(timespec="seconds"),
            "dateTimeExpires": (now + timedelta(days=1)).isoformat(timespec="seconds"),
            "distributionStatus": "Actual", "distributionKind": kind,
            "descriptor": {"language": "fr-FR",
                           "explicitAddress": {"explicitAddressScheme": "hubex", "explicitAddressValue": recipient}},
            "content": [{"jsonContent": {"embeddedJsonContent": {"message": message}}}]}


def appointment_problems(message: dict) -> list[str]:
    """The guide's rules on ``appointment`` (as strict as the Hub's schema validation)."""
    try:
        appointment = inner(message)["appointment"]
    except (KeyError, IndexError, TypeError):
        return ["no appointment"]
    problems = []
    for name in ("appointmentId", "method", "created", "start", "end", "status", "regulator"):
        if not appointment.get(name):
            problems.append(f"appointment.{name}: required")
    if appointment.get("method") not in GUIDE_METHODS:
        problems.append(f"appointment.method: {appointment.get('method')!r} not in {sorted(GUIDE_METHODS)}")
    if appointment.get("status") not in GUIDE_STATUSES:
        problems.append(f"appointment.status: {appointment.get('status')!r} not in {sorted(GUIDE_STATUSES)}")
    if "orientationCategory" in appointment and appointment["orientationCategory"] not in GUIDE_CATEGORIES:
        problems.append("appointment.orientationCategory: does not have a value in the enumeration")
    organization = appointment.get("organization")
    if organization is not None and not (organization.get("organizationId") and organization.get("name")):
        problems.append("appointment.organization: organizationId and name required")
    for name in ("created", "start", "end"):
        value = appointment.get(name)
        if value and datetime.fromisoformat(value).tzinfo is None:
            problems.append(f"appointment.{name}: offset required")
    return problems


def blocking(cn: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_of(cn).parameters())


class Peer(threading.Thread):
    """A consumer on one broker connection of its own (pika connections are not thread-safe)."""

    def __init__(self, cn: str, queue: str) -> None:
        super().__init__(daemon=True)
        self.cn, self.queue = cn, queue
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            connection = blocking(self.cn)
            self.channel = connection.channel()
            self.channel.confirm_delivery()
            self.channel.basic_consume(queue=self.queue, on_message_callback=self._on)
            self.ready.set()
            while not self.stop.is_set():
                connection.process_data_events(time_limit=0.2)
            connection.close()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
            self.ready.set()

    def _on(self, channel, method, properties, body) -> None:
        self.handle(channel, method, properties, body)
        channel.basic_ack(method.delivery_tag)

    def handle(self, channel, method, properties, body) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class Hub(Peer):
    """The Hub's dispatcher."""

    def __init__(self) -> None:
        super().__init__(DISPATCHER, "dispatch")
        self.forced: list[int] = []
        self.refused: list[tuple[int, str]] = []

    def setup(self) -> None:
        connection = blocking(DISPATCHER)
        channel = connection.channel()
        channel.exchange_declare(EXCHANGE, exchange_type="topic", durable=True)
        channel.exchange_declare("distribution", exchange_type="direct", durable=True)
        channel.queue_declare("dispatch", durable=True)
        channel.queue_bind("dispatch", EXCHANGE, routing_key="#")
        for client in (CLIENT, LRM):
            for kind in ("message", "ack", "info"):
                name = f"{client}.{kind}"
                channel.queue_declare(name, durable=True)
                channel.queue_bind(name, "distribution", routing_key=name)
                channel.queue_purge(name)
        channel.queue_purge("dispatch")
        connection.close()

    def error_to(self, channel, sender: str, code: int, cause: str, source: dict | None, referenced: str) -> None:
        message = edxl(sender="fr.health.hub", recipient=sender, kind="Error", message={"error": {
            "errorCode": {"statusCode": code, "statusString": HUB_ERRORS[code]}, "errorCause": cause,
            "sourceMessage": source or {}, "referencedDistributionID": referenced}})
        self.refused.append((code, referenced))
        channel.basic_publish("distribution", f"{sender}.info", orjson.dumps(message),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def handle(self, channel, method, properties, body) -> None:
        sender = method.routing_key
        try:
            message = orjson.loads(body)
            distribution_id = message["distributionID"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.error_to(channel, sender, 102, "could not deserialize", None, "unavailable")
            return
        if self.forced:
            code = self.forced.pop(0)
            self.error_to(channel, sender, code, f"forced {HUB_ERRORS[code]}", message, distribution_id)
            return
        problems = []
        if properties.content_type != "application/json":
            problems.append("content type must be application/json")
        if properties.delivery_mode != 2:
            problems.append("non-persistent delivery mode")
        if message.get("senderID") != sender:
            problems.append(f"sender inconsistency: routing key {sender}, senderID {message.get('senderID')}")
        if not distribution_id.startswith(f"{message.get('senderID')}_"):
            problems.append("invalid distributionID format")
        kind = message.get("distributionKind")
        if kind == "Report":
            problems += appointment_problems(message)
        if datetime.fromisoformat(message["dateTimeExpires"]) <= datetime.now(timezone.utc):
            self.error_to(channel, sender, 400, "expired", message, distribution_id)
            return
        if problems:
            self.error_to(channel, sender, 300, "; ".join(problems), message, distribution_id)
            return
        recipient = message["descriptor"]["explicitAddress"]["explicitAddressValue"]
        queue = f"{recipient}.{ {'Ack': 'ack', 'Error': 'info'}.get(kind, 'message') }"
        channel.basic_publish("distribution", queue, body, properties)


class RegulationSoftware(Peer):
    """SAS-33's regulation software: ``decide(appointment)`` → None (acknowledge) or an error cause (409)."""

    def __init__(self, decide: Callable[[dict], str | None]) -> None:
        super().__init__(LRM, f"{LRM}.message")
        self.decide = decide
        self.received: list[tuple[dict, pika.BasicProperties]] = []

    def handle(self, channel, method, properties, body) -> None:
        message = orjson.loads(body)
        self.received.append((message, properties))
        cause = self.decide(inner(message)["appointment"])
        if cause is None:
            reply = edxl(sender=LRM, recipient=message["senderID"], kind="Ack", message={
                "messageId": "", "sender": {"name": LRM, "URI": f"hubex:{LRM}"}, "kind": "Ack", "status": "Actual",
                "recipient": [{"name": message["senderID"], "URI": f"hubex:{message['senderID']}"}],
                "reference": {"distributionID": message["distributionID"]}})
            inner(reply)["messageId"] = reply["distributionID"]
        else:
            reply = edxl(sender=LRM, recipient=message["senderID"], kind="Error", message={"error": {
                "errorCode": {"statusCode": 409, "statusString": "CONFLICT"}, "errorCause": cause,
                "sourceMessage": message, "referencedDistributionID": message["distributionID"]}})
        # As any client of the Hub: to its exchange, with its own id as routing key.
        channel.basic_publish(EXCHANGE, LRM, orjson.dumps(reply),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))

    def appointments(self) -> list[dict]:
        return [inner(m)["appointment"] for m, _ in self.received]


@pytest.fixture(scope="module")
def broker() -> None:
    """The broker with its AMQPS listener: started by ``make services``; started here too when the
    suite runs without make (idempotent script)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq.sh")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def hub(broker):
    hub = Hub()
    hub.setup()
    hub.start()
    assert hub.ready.wait(10) and hub.error is None, hub.error
    yield hub
    hub.stop.set()
    hub.join(5)


@pytest.fixture
def lrm_decisions(hub):
    """Appointment id → error cause (rejected with 409); absent: acknowledged."""
    decisions: dict[str, str] = {}
    lrm = RegulationSoftware(lambda appointment: decisions.get(appointment["appointmentId"]))
    lrm.start()
    assert lrm.ready.wait(10) and lrm.error is None, lrm.error
    yield lrm, decisions
    lrm.stop.set()
    lrm.join(5)


@pytest.fixture
def platform(broker, hub, wf_settings, es, harvested):
    """The real app, its INT_L02 connected to the Hub over AMQPS with the platform's certificate."""
    from search_api.app import create_app
    from search_api.workflow.wiring import close_workflow

    settings = wf_settings.model_copy(update={
        "lrm_hub_host": "127.0.0.1", "lrm_hub_port": TLS_PORT, "lrm_hub_vhost": VHOST, "lrm_sender_id": CLIENT,
        "lrm_tls_cert": TLS / "clients" / f"{CLIENT}.pem", "lrm_tls_key": TLS / "clients" / f"{CLIENT}.key",
        "lrm_tls_ca": TLS / "ca.pem", "lrm_tls_server_name": "localhost"})
    app = create_app(settings, es=es)
    with TestClient(app) as client:
        yield client
        workflow = getattr(app.state, "workflow", None)
        if workflow is not None:
            close_workflow(workflow)


def wait_for(check: Callable[[], object], timeout_s: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def delivery(client: TestClient, orientation_id: str, headers: dict) -> dict:
    answer = client.get(f"/v1/orientations/{orientation_id}", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json().get("lrm_delivery") or {}


def delivered_state(client, orientation_id, headers, state: str, timeout_s: float = 15.0) -> dict:
    """Wait for ``state``; a refusal while waiting for anything else fails at once, with the Hub's words."""
    def check():
        found = delivery(client, orientation_id, headers)
        if found.get("state") == "refused" and state != "refused":
            raise AssertionError(f"refused instead of {state}: {found.get('code')} {found.get('reason')}")
        return found.get("state") == state and found

    return wait_for(check, timeout_s, f"lrm_delivery.state = {state}")


def book(client: TestClient, slot: dict, headers: dict) -> dict:
    booked = client.post("/v1/bookings", json={"slot_id": slot["id"]},
                         headers={**headers, "Idempotency-Key": f"l02-{uuid.uuid4()}"})
    assert booked.status_code == 201, booked.text
    return booked.json()["orientation"]


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def metric_samples(text: str) -> dict[tuple[str, tuple], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_redirect_is_pending_then_booked_when_the_vendor_confirms(platform, lrm_decisions, free_slot,
                                                                   regulator_headers):
    """Redirect mode: PENDING at redirect time, BOOKED once the vendor's report confirms; both reach the
    regulation software through the Hub (which refused ``oriented``) and are acknowledged."""
    lrm, _ = lrm_decisions
    slot = free_slot("medilib")
    orientation = book(platform, slot, regulator_headers)
    assert orientation["status"] == "oriented" and orientation["booking_mode"] == "redirect"
    first = delivered_state(platform, orientation["id"], regulator_headers, "acknowledged")
    assert first["method"] == "CreateAppointment" and first["by"] == LRM
    assert first["distribution_id"].startswith(f"{CLIENT}_")

    created = lrm.appointments()[-1]
    assert created["appointmentId"] == orientation["id"] and created["method"] == "CreateAppointment"
    assert created["status"] == "PENDING" and created["orientationCategory"] == "PS"
    assert parse(created["start"]) == parse(slot["start"]) and parse(created["end"]) == parse(slot["end"])
    message, properties = lrm.received[-1]
    assert message["senderID"] == CLIENT and message["distributionID"] == first["distribution_id"]
    assert properties.content_type == "application/json" and properties.delivery_mode == 2

    # What an INT_R03 report confirming the appointment does to the orientation.
    app_workflow = platform.app.state.workflow
    app_workflow.orientations.change(orientation["id"], by="vendor:medilib", status="booked",
                                     fields={"vendor_appointment_system": "urn:medilib", "vendor_appointment_id": "A1"})
    second = wait_for(lambda: (d := delivery(platform, orientation["id"], regulator_headers))["distribution_id"]
                      != first["distribution_id"] and d.get("state") == "acknowledged" and d, what="second ack")
    assert second["method"] == "UpdateAppointment"
    updated = lrm.appointments()[-1]
    assert updated["status"] == "BOOKED" and updated["method"] == "UpdateAppointment"
    assert updated["appointmentId"] == orientation["id"]


@pytest.fixture
def slow_lrm(hub):
    """The regulation software not started yet: decisions are registered before it reads its queue."""
    decisions: dict[str, str] = {}
    lrm = RegulationSoftware(lambda appointment: decisions.get((appointment["appointmentId"], appointment["method"]))
                             or decisions.get(appointment["appointmentId"]))
    yield lrm, decisions
    if lrm.is_alive():
        lrm.stop.set()
        lrm.join(5)


def test_a_rejection_by_the_regulation_software_is_recorded_and_counted(platform, slow_lrm, free_slot,
                                                                         regulator_headers, token_for):
    """The LRM's functional error (409) on the ``info`` queue: the orientation says refused with code and
    reason; the dashboard counts it as undelivered for SAS-33; /metrics too."""
    lrm, decisions = slow_lrm
    admin = token_for("admin")
    before = metric_samples(platform.get("/metrics", headers=admin).text)
    orientation = book(platform, free_slot("agendax"), regulator_headers)
    decisions[orientation["id"]] = f"appointment {orientation['id']} already exists"
    published = delivered_state(platform, orientation["id"], regulator_headers, "published")
    assert published["method"] == "CreateAppointment"
    lrm.start()
    assert lrm.ready.wait(10) and lrm.error is None
    refused = delivered_state(platform, orientation["id"], regulator_headers, "refused")
    assert refused["code"] == "409" and refused["by"] == LRM
    assert refused["reason"].startswith("CONFLICT: appointment ") and "already exists" in refused["reason"]

    dashboard = platform.get("/v1/dashboards/orientations", headers=regulator_headers).json()
    bordeaux = next(t for t in dashboard["per_territory"] if t["territory"] == "SAS-33")
    assert bordeaux["lrm_undelivered"] >= 1 and bordeaux["lrm_undelivered_states"].get("refused", 0) >= 1
    after = metric_samples(platform.get("/metrics", headers=admin).text)
    assert after[("sas_lrm_undelivered", (("state", "refused"), ("territory", "SAS-33")))] >= 1
    key = ("sas_lrm_refusals_total", (("code", "409"),))
    assert after[key] == before.get(key, 0) + 1
    published_key = ("sas_lrm_messages_total", (("outcome", "published"),))
    assert after[published_key] >= before.get(published_key, 0) + 1

    # The operators' page: the refusal on the orientation's row, the count per territory above the table.
    platform.cookies.clear()
    login = post_login(platform, {"role": "regulator", "territories": "SAS-33", "next": "/app/recherche"},
                       follow_redirects=False)
    assert login.status_code == 303
    page = platform.get("/app/tableaux/orientations")
    platform.cookies.clear()
    assert page.status_code == 200
    assert "Messages non acquittés par le logiciel de régulation" in page.text
    assert "Refusé</span> <small>(409 : CONFLICT: appointment " in page.text


def test_rejected_and_acknowledged_messages_side_by_side(platform, slow_lrm, free_slot, regulator_headers):
    """Some acknowledged, some rejected, decided before the LRM reads them: each orientation gets its own."""
    lrm, decisions = slow_lrm
    orientations = [book(platform, free_slot("agendax"), regulator_headers) for _ in range(3)]
    decisions[orientations[1]["id"]] = "unknown practitioner"
    for o in orientations:
        delivered_state(platform, o["id"], regulator_headers, "published")
    lrm.start()
    assert lrm.ready.wait(10) and lrm.error is None
    states = [wait_for(lambda o=o: (d := delivery(platform, o["id"], regulator_headers)).get("state")
                       in ("acknowledged", "refused") and d, what="report") for o in orientations]
    assert [s["state"] for s in states] == ["acknowledged", "refused", "acknowledged"]
    assert states[1]["code"] == "409" and "unknown practitioner" in states[1]["reason"]


def test_only_the_latest_message_decides(platform, slow_lrm, free_slot, regulator_headers):
    """A creation rejected then an update acknowledged: the update carries the whole appointment, so the
    orientation ends acknowledged (a report about a superseded message changes nothing)."""
    lrm, decisions = slow_lrm
    orientation = book(platform, free_slot("agendax"), regulator_headers)
    first = delivered_state(platform, orientation["id"], regulator_headers, "published")
    decisions[(orientation["id"], "CreateAppointment")] = "not ready"
    cancelled = platform.post(f"/v1/orientations/{orientation['id']}/cancel", headers=regulator_headers)
    assert cancelled.status_code == 200, cancelled.text
    second = wait_for(lambda: (d := delivery(platform, orientation["id"], regulator_headers)).get("state")
                      == "published" and d["distribution_id"] != first["distribution_id"] and d, what="update")
    lrm.start()
    assert lrm.ready.wait(10) and lrm.error is None
    wait_for(lambda: len([a for a in lrm.appointments() if a["appointmentId"] == orientation["id"]]) == 2,
             what="both messages at the LRM")
    final = delivered_state(platform, orientation["id"], regulator_headers, "acknowledged")
    assert final["distribution_id"] == second["distribution_id"] and final["method"] == "UpdateAppointment"
    statuses = [a["status"] for a in lrm.appointments() if a["appointmentId"] == orientation["id"]]
    assert statuses == ["BOOKED", "CANCELLED"]


@pytest.mark.parametrize("code", [102, 300, 400, 500])
def test_hub_errors_are_recorded_with_their_code(platform, hub, lrm_decisions, free_slot, regulator_headers, code):
    """The Hub's technical errors on ``info`` (102, 300, 400, 500): refused, with the Hub's code and reason."""
    hub.forced.append(code)
    orientation = book(platform, free_slot("agendax"), regulator_headers)
    refused = delivered_state(platform, orientation["id"], regulator_headers, "refused")
    assert refused["code"] == str(code) and refused["by"] == "fr.health.hub"
    assert refused["reason"].startswith(HUB_ERRORS[code])


def test_beyond_orientation_is_held_until_its_time_is_agreed(platform, lrm_decisions, harvested, wf_offers,
                                                               regulator_headers):
    """``start``/``end`` are required: a beyond-slots orientation without agreed time is not sent (held,
    counted undelivered); the update bringing its time announces it with CreateAppointment."""
    lrm, _ = lrm_decisions
    offer = next(o for o in wf_offers["agenda"] if o["sas"]["accepts_beyond"])
    answer = platform.post("/v1/bookings/beyond", json={"offer_id": offer["id"]},
                           headers={**regulator_headers, "Idempotency-Key": f"l02b-{uuid.uuid4()}"})
    assert answer.status_code == 201, answer.text
    orientation = answer.json()["orientation"]
    held = delivery(platform, orientation["id"], regulator_headers)
    assert held["state"] == "held" and held["code"] == "start_unknown" and not held.get("distribution_id")
    dashboard = platform.get("/v1/dashboards/orientations", headers=regulator_headers).json()
    bordeaux = next(t for t in dashboard["per_territory"] if t["territory"] == "SAS-33")
    assert bordeaux["lrm_undelivered_states"]["held"] >= 1
    time.sleep(0.5)
    assert orientation["id"] not in {a["appointmentId"] for a in lrm.appointments()}

    start = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    platform.app.state.workflow.orientations.change(orientation["id"], by="reg-bordeaux-1", fields={
        "consultation_start": start.isoformat(), "consultation_end": (start + timedelta(minutes=20)).isoformat()})
    acknowledged = delivered_state(platform, orientation["id"], regulator_headers, "acknowledged")
    assert acknowledged["method"] == "CreateAppointment"
    sent = [a for a in lrm.appointments() if a["appointmentId"] == orientation["id"]]
    assert len(sent) == 1 and sent[0]["method"] == "CreateAppointment" and sent[0]["status"] == "PENDING"
    assert parse(sent[0]["start"]) == start


def test_transport_is_tls_with_client_certificates_and_the_hubs_routing(broker, hub):
    """The Hub's listener refuses a client without certificate; a client may publish only with its own id
    as routing key (the Hub's topic permission): the recipient id as routing key is refused."""
    plain = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    parameters = pika.ConnectionParameters(host="127.0.0.1", port=TLS_PORT, virtual_host=VHOST,
                                           credentials=pika.credentials.ExternalCredentials(),
                                           ssl_options=pika.SSLOptions(plain, server_hostname="localhost"),
                                           connection_attempts=1, socket_timeout=5)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(parameters)

    connection = blocking(CLIENT)
    channel = connection.channel()
    channel.confirm_delivery()   # the publication waits for the broker's verdict
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        channel.basic_publish(EXCHANGE, LRM, b"{}", pika.BasicProperties(content_type="application/json",
                                                                          delivery_mode=2))
    assert refused.value.reply_code == 403 and "ACCESS_REFUSED" in refused.value.reply_text
    channel = connection.channel()
    channel.confirm_delivery()
    channel.basic_publish(EXCHANGE, CLIENT, b"{}", pika.BasicProperties(content_type="application/json",
                                                                         delivery_mode=2))   # its own id: accepted
    connection.close()


def test_listener_keeps_a_report_it_could_not_record(broker, hub):
    """A report the handler could not record (Elasticsearch down) stays in the queue and comes again;
    one about nothing of ours is taken off and counted."""
    calls: list[HubReport] = []

    def handler(report: HubReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            raise ConnectionError("Elasticsearch is unreachable")

    listener = HubListener(connection=connection_of(CLIENT), queues=hub_queues(CLIENT), handler=handler,
                           retry_pause_s=0.2).start()
    try:
        assert listener.connected.wait(10)
        ack = edxl(sender=LRM, recipient=CLIENT, kind="Ack", message={"reference": {"distributionID": f"{CLIENT}_x"}})
        connection = blocking(DISPATCHER)
        channel = connection.channel()
        channel.basic_publish("distribution", f"{CLIENT}.ack", orjson.dumps(ack),
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
        channel.basic_publish("distribution", f"{CLIENT}.info", b"not an EDXL message",
                              pika.BasicProperties(content_type="application/json", delivery_mode=2))
        wait_for(lambda: listener.handled == 1 and listener.ignored == 1, what="the report recorded at last")
        assert [c.distribution_id for c in calls] == [f"{CLIENT}_x", f"{CLIENT}_x"] and listener.failures == 1
        time.sleep(0.3)
        assert channel.queue_declare(f"{CLIENT}.ack", passive=True).method.message_count == 0
        connection.close()
    finally:
        listener.close()


def test_publisher_survives_a_hub_it_cannot_reach_yet(broker):
    """Messages queued while the Hub is unreachable are not lost (retry loop)."""
    unreachable = HubConnection(host="127.0.0.1", port=1, vhost=VHOST, cert_file=TLS / "clients" / f"{CLIENT}.pem",
                                key_file=TLS / "clients" / f"{CLIENT}.key", ca_file=TLS / "ca.pem",
                                server_name="localhost")
    publisher = LrmPublisher(connection=unreachable, exchange=EXCHANGE, sender_id=CLIENT, ttl_s=60)
    try:
        publisher.publish({"id": "o1", "status": "booked", "territory": "SAS-33",
                           "consultation_start": "2030-01-01T10:00:00Z", "consultation_end": "2030-01-01T10:20:00Z"},
                          method="CreateAppointment")
        assert not publisher.flush(1.5)
        assert publisher.failures >= 1 and publisher.published == 0
    finally:
        publisher._stop.set()
