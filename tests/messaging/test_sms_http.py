"""The HTTP SMS gateway against a real local HTTP server (http.server on 127.0.0.1)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from messaging.delivery import DeliveryError, OutgoingSms
from messaging.sms_http import HttpSmsGateway

Reply = tuple[int, bytes]


@dataclass
class Aggregator:
    """A provider that records requests and answers with ``respond(request_json)``."""

    url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    respond: Callable[[dict[str, Any]], Reply] | None = None
    event: threading.Event = field(default_factory=threading.Event)


def _accepting(aggregator: Aggregator) -> Callable[[dict[str, Any]], Reply]:
    seen: dict[str, str] = {}

    def respond(request: dict[str, Any]) -> Reply:
        body = request["body"]
        reference = body["reference"]
        if reference in seen:
            return 200, json.dumps({"message_id": seen[reference], "duplicate": True}).encode()
        seen[reference] = f"P{len(seen) + 1:05d}"
        return 200, json.dumps({"message_id": seen[reference], "parts": body["parts"]}).encode()

    return respond


@pytest.fixture
def aggregator() -> Iterator[Aggregator]:
    state = Aggregator(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(length)
            request = {
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": json.loads(raw.decode("utf-8")),
            }
            state.requests.append(request)
            respond = state.respond or _accepting(state)
            if state.respond is None:
                state.respond = respond
            status, body = respond(request)
            if status == 0:  # hang until the test is over: a time-out for the client
                state.event.wait(10)
                return
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status in (301, 302, 307):
                self.send_header("Location", "http://127.0.0.1:1/elsewhere")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/sms/send"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.event.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _sms(key: str = "ack:ticket:7", text: str = "Başvurunuz alındı. Kod: 7KMQ-4XR9") -> OutgoingSms:
    return OutgoingSms(recipient="+905321234567", text=text, idempotency_key=key, sender="BELEDIYE")


def test_posts_json_with_credentials_sender_reference_and_public_information_mark(
    aggregator: Aggregator,
) -> None:
    gateway = HttpSmsGateway(aggregator.url, "kullanici", "gizli-şifre")
    result = gateway.send(_sms())
    assert (result.provider_message_id, result.parts, result.duplicate) == ("P00001", 1, False)
    [request] = aggregator.requests
    assert request["path"] == "/api/sms/send"
    auth = request["headers"]["authorization"]
    assert auth.startswith("Basic ")
    assert base64.b64decode(auth.removeprefix("Basic ")).decode() == "kullanici:gizli-şifre"
    assert request["headers"]["idempotency-key"] == "ack:ticket:7"
    assert request["body"] == {
        "reference": "ack:ticket:7",
        "sender": "BELEDIYE",
        "recipient": "+905321234567",
        "text": "Başvurunuz alındı. Kod: 7KMQ-4XR9",
        "encoding": "ucs2",
        "parts": 1,
        "message_type": "BILGILENDIRME",
        "commercial": False,
    }


def test_a_resend_with_the_same_key_is_recognised_by_the_provider(
    aggregator: Aggregator,
) -> None:
    gateway = HttpSmsGateway(aggregator.url)
    first = gateway.send(_sms(text="x" * 200))
    again = gateway.send(_sms(text="x" * 200))
    assert first.parts == 2 and not first.duplicate
    assert again.duplicate and again.provider_message_id == first.provider_message_id
    assert [r["body"]["reference"] for r in aggregator.requests] == ["ack:ticket:7"] * 2
    assert "authorization" not in aggregator.requests[0]["headers"]


def test_http_409_with_the_earlier_id_is_a_duplicate(aggregator: Aggregator) -> None:
    aggregator.respond = lambda _: (409, b'{"message_id": "P-OLD"}')
    result = HttpSmsGateway(aggregator.url).send(_sms())
    assert result.duplicate and result.provider_message_id == "P-OLD"


@pytest.mark.parametrize(
    ("status", "body", "retryable"),
    [
        (400, b'{"error": "invalid number"}', False),
        (401, b'{"error": "bad credentials"}', False),
        (403, b"forbidden", False),
        (404, b"", False),
        (422, b'{"message": "content rejected"}', False),
        (408, b"", True),
        (429, b'{"error": "slow down"}', True),
        (500, b"boom", True),
        (502, b"", True),
        (503, b'{"error": "maintenance"}', True),
        (200, b'{"error": "invalid sender header"}', False),
        (200, b'{"error": "queue full", "retryable": true}', True),
        (200, b"not json", True),
        (200, b'{"status": "ok"}', True),  # accepted? unknown: retry with the same reference
        (302, b"", False),  # a moved endpoint is a configuration error
    ],
)
def test_provider_errors_map_to_delivery_errors(
    aggregator: Aggregator, status: int, body: bytes, retryable: bool
) -> None:
    aggregator.respond = lambda _: (status, body)
    with pytest.raises(DeliveryError) as caught:
        HttpSmsGateway(aggregator.url).send(_sms())
    assert caught.value.retryable is retryable
    assert len(aggregator.requests) == 1  # no redirect followed, no hidden retry


def test_a_silent_provider_is_a_retryable_time_out(aggregator: Aggregator) -> None:
    aggregator.respond = lambda _: (0, b"")
    with pytest.raises(DeliveryError) as caught:
        HttpSmsGateway(aggregator.url, timeout=0.5).send(_sms())
    assert caught.value.retryable is True


def test_an_unreachable_provider_is_retryable() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DeliveryError) as caught:
        HttpSmsGateway(f"http://127.0.0.1:{port}/send", timeout=2).send(_sms())
    assert caught.value.retryable is True


def test_invalid_messages_never_reach_the_provider(aggregator: Aggregator) -> None:
    gateway = HttpSmsGateway(aggregator.url)
    for bad in (
        OutgoingSms("+905321234567", "", "k", "BELEDIYE"),
        OutgoingSms("0532 123 45 67", "metin", "k", "BELEDIYE"),
    ):
        with pytest.raises(DeliveryError) as caught:
            gateway.send(bad)
        assert caught.value.retryable is False
    assert aggregator.requests == []


@pytest.mark.parametrize("url", ["ftp://host/x", "not a url", "http://sms.example.invalid/x"])
def test_configuration_is_checked_at_start(url: str) -> None:
    with pytest.raises(ValueError):
        HttpSmsGateway(url)
