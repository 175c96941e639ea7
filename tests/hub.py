"""The Hub Santé as the tests play it: the local broker's AMQPS listener (scripts/rabbitmq.sh: its test PKI,
the Hub's vhost, exchange, users and permissions). Connections use a client certificate and SASL EXTERNAL,
as the Hub requires; ``platform_settings`` wires the platform's INT_L02 to it."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pika

ROOT = Path(__file__).resolve().parents[1]
PORT = int(os.environ.get("SAS_RABBITMQ_TLS_PORT", "5671"))
TLS = Path(os.environ.get("SAS_RABBITMQ_HOME", "/var/lib/rabbitmq/sas")) / "tls"
VHOST = os.environ.get("SAS_RABBITMQ_HUB_VHOST", "15-15_v2.0")
EXCHANGE = "hubsante"
DISPATCHER = "hub.dispatcher"
PLATFORM_ID = "fr.health.test.ptfsas"


def ensure_broker() -> None:
    """The broker with its AMQPS listener (``make services`` starts it; idempotent when run again)."""
    done = subprocess.run(["bash", str(ROOT / "scripts" / "rabbitmq.sh")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def parameters(cn: str) -> pika.ConnectionParameters:
    """AMQPS with the client certificate of ``cn`` and SASL EXTERNAL."""
    context = ssl.create_default_context(cafile=str(TLS / "ca.pem"))
    context.load_cert_chain(str(TLS / "clients" / f"{cn}.pem"), str(TLS / "clients" / f"{cn}.key"))
    return pika.ConnectionParameters(host="127.0.0.1", port=PORT, virtual_host=VHOST,
                                     ssl_options=pika.SSLOptions(context, "localhost"),
                                     credentials=pika.credentials.ExternalCredentials())


def platform_settings(**extra) -> dict:
    """Settings updates connecting the platform's INT_L02 publisher to the test Hub (no ack/info listener)."""
    return {"lrm_hub_host": "127.0.0.1", "lrm_hub_port": PORT, "lrm_hub_vhost": VHOST, "lrm_sender_id": PLATFORM_ID,
            "lrm_listen": False, "lrm_tls_cert": TLS / "clients" / f"{PLATFORM_ID}.pem",
            "lrm_tls_key": TLS / "clients" / f"{PLATFORM_ID}.key", "lrm_tls_ca": TLS / "ca.pem",
            "lrm_tls_server_name": "localhost", **extra}


@contextmanager
def published_messages() -> Iterator[Callable[..., list[tuple[str, dict]]]]:
    """What the platform publishes on the Hub's exchange, read with the dispatcher's certificate through a
    queue of our own: ``receive(match, count)`` waits for ``count`` (routing key, EDXL-DE message) pairs
    whose message satisfies ``match``."""
    ensure_broker()
    connection = pika.BlockingConnection(parameters(DISPATCHER))
    channel = connection.channel()
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="topic", durable=True)
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(queue=queue, exchange=EXCHANGE, routing_key="#")
    seen: list[tuple[str, dict]] = []

    def receive(match: Callable[[dict], bool], count: int, timeout_s: float = 15.0) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout_s
        while True:
            mine = [(key, message) for key, message in seen if match(message)]
            if len(mine) >= count or time.monotonic() >= deadline:
                return mine
            method, _, body = channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                connection.process_data_events(0.1)
                continue
            seen.append((method.routing_key, json.loads(body)))

    try:
        yield receive
    finally:
        connection.close()


def recipient(message: dict) -> str:
    return message["descriptor"]["explicitAddress"]["explicitAddressValue"]


def appointment(message: dict) -> dict:
    return message["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]["appointment"]
