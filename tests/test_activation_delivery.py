"""Delivery with real receivers: signed webhooks, retries with backoff, dead letters, SMTP, push shape."""

from __future__ import annotations

import time
from typing import Any

import duckdb

from _activation_fixtures import SECRET, Receiver, SmtpSink
from micromoments.activation.delivery import (
    DeliveryWorker,
    Message,
    PushDeliverer,
    SmtpDeliverer,
    WebhookDeliverer,
    sign,
    verify_signature,
)
from micromoments.store.schema import DEAD_LETTERS_COLUMNS, create_table_sql


def msg(i: int = 0, channel: str = "webhook", **kw: Any) -> Message:
    return Message(decision_id=f"d{i}", person_id=f"p{i}", channel=channel,
                   content={"id": "store-nearby-push", "title": "Greenhaven Leeds is 0.9 km away",
                            "body": "Hi Ana, Greenhaven Leeds is open until 20:00 today.",
                            "url": "https://www.greenhaven.example/stores/S002"}, playbook="go-near-store", **kw)


class Rows:
    def __init__(self) -> None:
        self.rows: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, table: str, row: dict[str, Any]) -> None:
        self.rows.append((table, row))

    def of(self, table: str) -> list[dict[str, Any]]:
        return [r for t, r in self.rows if t == table]


def test_webhook_is_hmac_signed_and_the_receiver_checks_it():
    r = Receiver()
    try:
        WebhookDeliverer(r.url + "/hook", SECRET).send(msg(1))
        got = r.wait(1)[0]
        assert got.valid and got.path == "/hook"
        assert got.json["decision_id"] == "d1" and got.json["type"] == "micromoments.decision"
        # Tampering with the body, the signature or the secret fails verification.
        tampered = got.body.replace(b"Leeds", b"Leedz")
        assert tampered != got.body and not verify_signature(SECRET, tampered, got.signature)
        t, mac = got.signature.split(",")
        bad_mac = mac[:-1] + ("0" if mac[-1] != "0" else "1")
        assert not verify_signature(SECRET, got.body, f"{t},{bad_mac}")
        assert not verify_signature("wrong-secret", got.body, got.signature)
        assert not verify_signature(SECRET, got.body, None)
        # An old signature is refused (replay protection).
        old = sign(SECRET, got.body, timestamp=int(time.time()) - 3600)
        assert not verify_signature(SECRET, got.body, old)
    finally:
        r.close()


def test_a_wrong_secret_is_rejected_by_the_receiver_and_dead_lettered_without_retries():
    r = Receiver()
    rows = Rows()
    w = DeliveryWorker({"webhook": WebhookDeliverer(r.url, "not-the-secret")}, log_sink=rows,
                       attempts=4, backoff=0.01)
    try:
        w.submit(msg(2))
        assert w.flush(5)
        assert len(r.received) == 1 and not r.received[0].valid  # 401: no point retrying
        dead = rows.of("dead_letters")
        assert len(dead) == 1 and dead[0]["attempts"] == 1 and "401" in dead[0]["last_error"]
    finally:
        w.close()
        r.close()


def test_retries_with_exponential_backoff_then_dead_letter():
    r = Receiver(status=503)  # the receiver keeps failing
    rows = Rows()
    w = DeliveryWorker({"webhook": WebhookDeliverer(r.url, SECRET)}, log_sink=rows, attempts=5,
                       backoff=0.08, backoff_max=10, jitter=0.2)
    try:
        w.submit(msg(3))
        assert w.flush(10)
        tries = r.received
        assert len(tries) == 5 and all(t.valid for t in tries)
        gaps = [b.at - a.at for a, b in zip(tries, tries[1:])]
        # 0.08, 0.16, 0.32, 0.64 s (+-20% jitter): each wait about doubles.
        for k, gap in enumerate(gaps):
            assert 0.08 * 2 ** k * 0.75 <= gap <= 0.08 * 2 ** k * 1.25 + 0.15, gaps
        dead = rows.of("dead_letters")
        assert len(dead) == 1 and set(dead[0]) == set(DEAD_LETTERS_COLUMNS)
        assert dead[0]["attempts"] == 5 and "503" in dead[0]["last_error"] and dead[0]["decision_id"] == "d3"
        assert [e["delivery_status"] for e in rows.of("exposures")] == ["dead_letter"]
        # The dead-letter row fits the store table.
        con = duckdb.connect()
        con.execute(create_table_sql("dead_letters", DEAD_LETTERS_COLUMNS))
        con.executemany(f"INSERT INTO dead_letters VALUES ({', '.join('?' * len(DEAD_LETTERS_COLUMNS))})",
                        [[dead[0][c] for c in DEAD_LETTERS_COLUMNS]])
        assert con.execute("SELECT attempts, channel FROM dead_letters").fetchall() == [(5, "webhook")]
    finally:
        w.close()
        r.close()


def test_a_retry_that_succeeds_is_delivered_once_and_not_dead_lettered():
    r = Receiver(fail_first=2)
    rows = Rows()
    w = DeliveryWorker({"webhook": WebhookDeliverer(r.url, SECRET)}, log_sink=rows, attempts=5, backoff=0.02)
    try:
        w.submit(msg(4))
        assert w.flush(5)
        assert len(r.received) == 3
        assert rows.of("dead_letters") == []
        assert [e["delivery_status"] for e in rows.of("exposures")] == ["delivered"]
        assert w.stats["retried"] == 2 and w.stats["delivered"] == 1
    finally:
        w.close()
        r.close()


def test_one_failing_message_does_not_hold_up_the_others():
    bad, good = Receiver(status=503), Receiver()
    w = DeliveryWorker({"webhook:bad": WebhookDeliverer(bad.url, SECRET),
                        "webhook:good": WebhookDeliverer(good.url, SECRET)},
                       attempts=3, backoff=0.5, threads=1)
    try:
        w.submit(msg(5, target="bad"))
        t = time.monotonic()
        for i in range(10):
            w.submit(msg(10 + i, target="good"))
        good.wait(10, timeout=3)
        assert len(good.received) == 10 and good.received[-1].at - t < 0.45  # before the first retry is due
        assert w.flush(5)
        assert len(bad.received) == 3 and w.stats["dead_letter"] == 1
    finally:
        w.close()
        bad.close()
        good.close()


def test_push_is_fcm_and_apns_shaped_and_signed():
    r = Receiver()
    try:
        PushDeliverer(r.url + "/fcm", SECRET).send(msg(6, channel="push", to="device-token-abc"))
        got = r.wait(1)[0]
        assert got.valid
        m = got.json["message"]
        assert m["token"] == "device-token-abc"
        assert m["notification"]["title"] == "Greenhaven Leeds is 0.9 km away"
        assert m["apns"]["payload"]["aps"]["alert"]["body"].startswith("Hi Ana, Greenhaven Leeds")
        assert all(isinstance(v, str) for v in m["data"].values())  # FCM data values are strings
    finally:
        r.close()


def test_email_over_smtp_reaches_a_real_server():
    s = SmtpSink()
    try:
        SmtpDeliverer("127.0.0.1", s.port, "hello@greenhaven.example").send(
            msg(7, channel="email", to="ana@post.example"))
        m = s.wait(1)[0]
        assert s.envelopes[0].rcpt_tos == ["ana@post.example"]
        assert m["Subject"] == "Greenhaven Leeds is 0.9 km away"
        body = m.get_payload(decode=True).decode()
        assert "open until 20:00" in body and "https://www.greenhaven.example/stores/S002" in body
    finally:
        s.close()


def test_email_to_a_down_smtp_server_is_retried_then_dead_lettered():
    from _activation_fixtures import free_port

    rows = Rows()
    w = DeliveryWorker({"email": SmtpDeliverer("127.0.0.1", free_port(), "x@y.example", timeout=1)},
                       log_sink=rows, attempts=3, backoff=0.01)
    try:
        w.submit(msg(8, channel="email", to="ana@post.example"))
        assert w.flush(10)
        dead = rows.of("dead_letters")
        assert len(dead) == 1 and dead[0]["attempts"] == 3 and dead[0]["target"] == "ana@post.example"
    finally:
        w.close()
