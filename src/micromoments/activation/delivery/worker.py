"""The delivery worker: a queue drained by background threads, so `on_event` never waits on a send.

A failed send is retried after `backoff * 2**(attempt-1)` seconds (capped, with ±20% jitter so
retries from many messages do not arrive together); after `attempts` tries, or at once for a
non-retryable error, the message goes to the `dead_letters` table. Every outcome writes an
`exposures` row (delivered / dead_letter) through `log_sink`.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from micromoments.activation.delivery.base import Deliverer, DeliveryError, Message

log = logging.getLogger(__name__)
LogSink = Callable[[str, dict[str, Any]], None]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class _Job:
    message: Message
    attempt: int = 0
    last_error: str = ""


class DeliveryWorker:
    """Send messages in the background with retries, backoff and a dead-letter table.

    `deliverers` maps a channel (push / email / webhook / sms) or `webhook:<name>` to a Deliverer.
    """

    def __init__(self, deliverers: dict[str, Deliverer], *, log_sink: LogSink | None = None,
                 attempts: int = 5, backoff: float = 0.5, backoff_max: float = 30.0, threads: int = 2,
                 jitter: float = 0.2, poll_s: float = 0.01):
        self.deliverers = deliverers
        self.log_sink = log_sink
        self.attempts, self.backoff, self.backoff_max, self.jitter = max(1, attempts), backoff, backoff_max, jitter
        self.poll_s = poll_s
        self._heap: list[tuple[float, int, _Job]] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._busy = 0
        self._closed = False
        self.stats: Counter[str] = Counter()
        self.dead: deque[dict[str, Any]] = deque(maxlen=1000)       # recent dead letters
        self.attempt_log: deque[tuple[str, int, float, str]] = deque(maxlen=10000)  # (decision, try, t, result)
        self._threads = [threading.Thread(target=self._run, name=f"mm-delivery-{i}", daemon=True)
                         for i in range(max(1, threads))]
        for t in self._threads:
            t.start()

    # -- producer side (hot path) ---------------------------------------------------------------
    def submit(self, message: Message) -> None:
        """Queue a message; returns at once.

        No notify: waking a worker here hands it the GIL in the middle of the caller's request
        (milliseconds at p99 on a busy machine); the workers poll every `poll_s` instead.
        """
        with self._cv:
            heapq.heappush(self._heap, (time.monotonic(), next(self._seq), _Job(message)))
            self.stats["queued"] += 1

    def pending(self) -> int:
        with self._cv:
            return len(self._heap) + self._busy

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every queued message is delivered or dead-lettered (True) or time is up."""
        end = time.monotonic() + timeout
        with self._cv:
            while self._heap or self._busy:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(min(left, 0.05))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the threads after trying to drain the queue for up to `timeout` seconds."""
        self.flush(timeout)
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout=1.0)

    # -- worker side ----------------------------------------------------------------------------
    def _next(self) -> _Job | None:
        with self._cv:
            while not self._closed:
                if self._heap and self._heap[0][0] <= time.monotonic():
                    job = heapq.heappop(self._heap)[2]
                    self._busy += 1
                    return job
                wait = (self._heap[0][0] - time.monotonic()) if self._heap else self.poll_s
                self._cv.wait(max(0.001, min(wait, self.poll_s)))
        return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                self._attempt(job)
            except Exception:  # a bug in a deliverer must not kill the worker
                log.exception("delivery worker error")
            finally:
                with self._cv:
                    self._busy -= 1
                    self._cv.notify_all()

    def _deliverer(self, m: Message) -> Deliverer | None:
        if m.channel == "webhook" and m.target:
            return self.deliverers.get(f"webhook:{m.target}") or self.deliverers.get("webhook")
        return self.deliverers.get(m.channel)

    def _attempt(self, job: _Job) -> None:
        m = job.message
        job.attempt += 1
        deliverer = self._deliverer(m)
        try:
            if deliverer is None:
                raise DeliveryError(f"no deliverer configured for channel '{m.channel}'", retryable=False)
            deliverer.send(m)
        except DeliveryError as exc:
            job.last_error = str(exc)
            self.attempt_log.append((m.decision_id, job.attempt, time.monotonic(), "error"))
            if exc.retryable and job.attempt < self.attempts:
                delay = min(self.backoff_max, self.backoff * 2 ** (job.attempt - 1))
                delay *= 1 + random.uniform(-self.jitter, self.jitter)
                with self._cv:
                    heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), job))
                    self.stats["retried"] += 1
                return
            self._dead_letter(job)
            return
        self.attempt_log.append((m.decision_id, job.attempt, time.monotonic(), "ok"))
        self.stats["delivered"] += 1
        self._exposure(m, "delivered")

    def _exposure(self, m: Message, status: str) -> None:
        if self.log_sink is not None:
            self.log_sink("exposures", {
                "exposure_id": uuid.uuid4().hex, "decision_id": m.decision_id, "ts": utcnow(),
                "person_id": m.person_id, "content_id": m.content.get("id"), "channel": m.channel,
                "delivery_status": status,
            })

    def _dead_letter(self, job: _Job) -> None:
        m = job.message
        row = {
            "dead_letter_id": uuid.uuid4().hex, "ts": utcnow(), "decision_id": m.decision_id,
            "person_id": m.person_id, "channel": m.channel, "target": m.target or m.to,
            "payload": json.dumps(m.as_dict(), default=str, ensure_ascii=False),
            "attempts": job.attempt, "last_error": job.last_error,
        }
        self.stats["dead_letter"] += 1
        self.dead.append(row)
        log.warning("dead letter after %d attempt(s): %s", job.attempt, job.last_error)
        if self.log_sink is not None:
            self.log_sink("dead_letters", row)
        self._exposure(m, "dead_letter")
