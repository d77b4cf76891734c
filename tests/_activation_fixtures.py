"""Real local parts for the activation tests: an HTTP receiver that checks the HMAC, an aiosmtpd
SMTP server, and Segment-shaped events like the demo's (run through the collector's mapping)."""

from __future__ import annotations

import datetime as dt
import email
import itertools
import json
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from micromoments.activation.delivery.webhook import SIGNATURE_HEADER, verify_signature
from micromoments.activation.live_events import canonical_event

SECRET = "test-secret-7d1f"
_ids = itertools.count()


@dataclass
class Received:
    path: str
    body: bytes
    signature: str | None
    valid: bool
    at: float

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A threaded HTTP server that verifies each body's HMAC; answers `status` (or 503 for the first
    `fail_first` requests)."""

    secret: str = SECRET
    status: int = 200
    fail_first: int = 0
    received: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                sig = self.headers.get(SIGNATURE_HEADER)
                ok = verify_signature(receiver.secret, body, sig)
                receiver.received.append(Received(self.path, body, sig, ok, time.monotonic()))
                n = len(receiver.received)
                code = 503 if n <= receiver.fail_first else (receiver.status if ok else 401)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n: int, timeout: float = 10.0) -> list[Received]:
        end = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < end:
            time.sleep(0.01)
        return self.received


class Sink:
    """An activator `log_sink` that keeps every row per table, for the tests to read."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def __call__(self, table: str, row: dict[str, Any]) -> None:
        self.rows[table].append(row)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """A real aiosmtpd server on localhost collecting the messages it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[email.message.Message] = []
        self.envelopes: list[Any] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
                sink.envelopes.append(envelope)
                sink.messages.append(email.message_from_bytes(envelope.content))
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait(self, n: int, timeout: float = 10.0) -> list[email.message.Message]:
        end = time.monotonic() + timeout
        while len(self.messages) < n and time.monotonic() < end:
            time.sleep(0.01)
        return self.messages

    def close(self) -> None:
        self.controller.stop()


# -- events shaped like the demo's Segment JSONL (see /tmp demo events.jsonl) ---------------------
LEEDS = {"latitude": 53.79, "longitude": -1.54, "city": "Leeds", "country": "GB"}
NOWHERE = {"latitude": 57.7, "longitude": -12.0, "city": None, "country": "GB"}  # sea, far from any store


def raw_event(kind: str, when: dt.datetime, *, anon: str = "anon-1", user: str | None = None,
              event: str | None = None, name: str | None = None, props: dict[str, Any] | None = None,
              traits: dict[str, Any] | None = None, location: dict[str, Any] | None = None,
              timezone: str = "Europe/London", device: str = "mobile", extra_ctx: dict[str, Any] | None = None,
              page: dict[str, Any] | None = None) -> dict[str, Any]:
    stamp = when.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    ev: dict[str, Any] = {
        "type": kind, "messageId": f"t-{next(_ids)}", "anonymousId": anon, "timestamp": stamp,
        "sentAt": stamp, "channel": "direct",
        "context": {"locale": "en-GB", "timezone": timezone, "ip": "192.0.2.58", "os": {"name": "iOS"},
                    "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15",
                    "device": {"type": device}, "location": location or LEEDS,
                    "page": page or {"path": "/", "title": "Greenhaven", "url": "https://www.greenhaven.example/"}},
    }
    ev["context"].update(extra_ctx or {})
    if user:
        ev["userId"] = user
    if event:
        ev["event"] = event
    if name:
        ev["name"] = name
    if props is not None:
        ev["properties"] = props
    if traits is not None:
        ev["traits"] = traits
    return ev


def canon(raw: dict[str, Any]) -> dict[str, Any]:
    """The collector's canonical event (received when it was sent)."""
    ts = dt.datetime.fromisoformat(raw["sentAt"].replace("Z", ""))
    return canonical_event(raw, received_at=ts, now=ts)


def search(when: dt.datetime, query: str, **kw: Any) -> dict[str, Any]:
    return canon(raw_event("track", when, event="Products Searched", props={"query": query}, **kw))


def identify(when: dt.datetime, user: str, first_name: str, email_addr: str, **kw: Any) -> dict[str, Any]:
    return canon(raw_event("identify", when, user=user,
                           traits={"email": email_addr, "first_name": first_name, "country": "GB"}, **kw))


def add_to_cart(when: dt.datetime, **kw: Any) -> dict[str, Any]:
    return canon(raw_event("track", when, event="Product Added", props={
        "product_id": "GH800205", "sku": "GH800205", "name": "patio slabs", "brand": "bradstone",
        "category": "landscaping", "price": 28.0, "quantity": 2, "cart_id": "c-1"}, **kw))
