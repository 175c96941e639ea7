"""INT_L02 against a real RabbitMQ (Debian's, installed and started by scripts/rabbitmq.sh): every
orientation creation and update reaches the exchange as a JSON message routed to the orienting SAMU."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from datetime import datetime
from pathlib import Path

import pika
import pytest

from connectors.lrm import LrmPublisher
from search_api.workflow.wiring import build_workflow

ROOT = Path(__file__).resolve().parents[3]
PORT = int(os.environ.get("SAS_RABBITMQ_PORT", "5672"))
URL = f"amqp://guest:guest@127.0.0.1:{PORT}/%2F"


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def rabbitmq() -> str:
    """The broker: started by ``make services``; started here too when the suite runs without make
    (idempotent script)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq.sh")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return URL


@pytest.fixture
def lrm_queue(rabbitmq):
    """A queue bound to a fresh exchange for the SAMU of Gironde (SAS-33), as the Hub would route."""
    exchange = f"sas.lrm.test.{uuid.uuid4().hex[:8]}"
    connection = pika.BlockingConnection(pika.URLParameters(rabbitmq))
    channel = connection.channel()
    channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=exchange, routing_key="fr.health.samu330")

    def receive(count: int, timeout_s: float = 10.0) -> list[tuple[dict, pika.BasicProperties]]:
        messages = []
        deadline = time.monotonic() + timeout_s
        while len(messages) < count and time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                connection.process_data_events(0.1)
                continue
            messages.append((json.loads(body), properties))
        return messages

    yield exchange, receive
    channel.exchange_delete(exchange=exchange)
    connection.close()


def test_orientations_are_published(lrm_queue, wf_settings, es, harvested, free_slot, regulator_headers):
    from fastapi.testclient import TestClient

    from search_api.app import create_app
    from search_api.executor import Executor

    exchange, receive = lrm_queue
    settings = wf_settings.model_copy(update={"lrm_amqp_url": URL, "lrm_exchange": exchange,
                                              "lrm_sender_id": "fr.health.test.ptfsas"})
    app = create_app(settings, es=es)
    publisher = LrmPublisher(url=URL, exchange=exchange, sender_id=settings.lrm_sender_id, ttl_s=600)
    app.state.workflow = build_workflow(settings, Executor(es=es, prefix=settings.index_prefix), publisher=publisher)
    try:
        with TestClient(app) as client:
            slot = free_slot("medilib")
            booked = client.post("/v1/bookings", json={"slot_id": slot["id"]},
                                 headers={**regulator_headers, "Idempotency-Key": f"l02-{uuid.uuid4()}"})
            assert booked.status_code == 201, booked.text
            orientation = booked.json()["orientation"]
            cancelled = client.post(f"/v1/orientations/{orientation['id']}/cancel", headers=regulator_headers)
            assert cancelled.status_code == 200
            assert publisher.flush(10)
        messages = receive(2)
    finally:
        publisher.close()
    assert len(messages) == 2, messages
    (create, create_props), (update, _) = messages
    assert create_props.content_type == "application/json" and create_props.delivery_mode == 2
    assert create["senderID"] == "fr.health.test.ptfsas" and create["distributionKind"] == "Report"
    assert create["descriptor"]["explicitAddress"]["explicitAddressValue"] == "fr.health.samu330"
    assert create_props.message_id == create["distributionID"]
    appointment = create["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["appointment"]
    assert appointment["appointmentId"] == orientation["id"] and appointment["method"] == "CreateAppointment"
    assert appointment["status"] == "oriented" and appointment["orientationCategory"] == "PS"
    assert parse(appointment["start"]) == parse(slot["start"])
    assert parse(appointment["created"]) == parse(orientation["created_at"]).replace(microsecond=0)
    assert appointment["start"].endswith(("+01:00", "+02:00"))      # Paris time, as the specification writes it
    assert appointment["practitioner"]["rppsId"] == slot["practitioner_national_id"]
    assert appointment["practitioner"]["specialityCode"] == "SM54" and appointment["practitioner"]["professionCode"] == "10"
    assert appointment["regulator"]["regulatorId"] == "3620100057/70326SR"
    second = update["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["appointment"]
    assert second["method"] == "UpdateAppointment" and second["status"] == "cancelled"
    assert second["appointmentId"] == orientation["id"]


def test_publisher_survives_a_broker_it_cannot_reach_yet(rabbitmq):
    """Messages queued while the broker is unreachable are not lost once it answers (retry loop)."""
    publisher = LrmPublisher(url="amqp://guest:guest@127.0.0.1:1/%2F", exchange="x", sender_id="s", ttl_s=60)
    try:
        publisher.publish({"id": "o1", "status": "booked", "territory": "SAS-33"}, method="CreateAppointment")
        assert not publisher.flush(1.5)
        assert publisher.failures >= 1 and publisher.published == 0
    finally:
        publisher._stop.set()
