"""Contact limits: frequency caps per user / channel / playbook, and quiet hours in local time.

>>> q = QuietHours.parse("21:00-08:00")
>>> from datetime import time
>>> q.contains(time(23, 30)), q.contains(time(7, 59)), q.contains(time(12, 0))
(True, True, False)
>>> led = FrequencyLedger()
>>> from datetime import datetime, timedelta
>>> t0 = datetime(2026, 9, 1, 12)
>>> cap = Cap(scope="playbook", max=1, per_hours=24)
>>> led.allows([cap], "p1", "push", "near-store", t0)
True
>>> led.record("p1", "push", "near-store", t0)
>>> led.allows([cap], "p1", "push", "near-store", t0 + timedelta(hours=2))
False
>>> led.allows([cap], "p1", "push", "near-store", t0 + timedelta(hours=25))
True
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict, deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

_HHMM = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Cap(BaseModel):
    """At most `max` contacts within `per_hours`, counted per user (`user`: all channels and
    playbooks), per user and channel (`channel`), or per user and playbook (`playbook`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: Literal["user", "channel", "playbook"] = "playbook"
    max: int = Field(ge=0)
    per_hours: float = Field(default=24.0, gt=0)


@dataclass(frozen=True)
class QuietHours:
    """A daily window in local time, possibly across midnight ("21:00-08:00")."""

    start: time
    end: time

    @staticmethod
    def parse(text: str | None) -> QuietHours | None:
        """None for "" / "off" / "none"; ValueError on anything else that is not HH:MM-HH:MM."""
        if text is None or text.strip().lower() in ("", "off", "none"):
            return None
        m = _HHMM.match(text)
        if not m:
            raise ValueError(f"quiet hours must look like 21:00-08:00, got {text!r}")
        h1, m1, h2, m2 = (int(x) for x in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"quiet hours out of range: {text!r}")
        return QuietHours(time(h1, m1), time(h2, m2))

    def contains(self, t: time) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end


@lru_cache(maxsize=512)
def zone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """A ZoneInfo, falling back to `default` for unknown or missing names (cached: hot path)."""
    for candidate in (name, default, "UTC"):
        if candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def local_time(ts_utc: datetime, tz: str | None, default: str = "UTC") -> datetime:
    """A naive UTC datetime as an aware local one."""
    return ts_utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone(tz, default))


class FrequencyLedger:
    """Contact times per (person, channel, playbook); answers cap checks in O(contacts in window)."""

    def __init__(self, keep_hours: float = 24 * 31):
        self._sent: dict[str, deque[tuple[datetime, str, str]]] = defaultdict(deque)
        self._keep = timedelta(hours=keep_hours)
        self._lock = threading.Lock()

    def allows(self, caps: list[Cap], person: str, channel: str, playbook: str, now: datetime) -> bool:
        """True when one more contact now stays within every cap."""
        if not caps:
            return True
        with self._lock:
            sent = self._sent.get(person)
            if not sent:
                return all(c.max > 0 for c in caps)
            for cap in caps:
                since = now - timedelta(hours=cap.per_hours)
                n = sum(
                    1 for ts, ch, pb in sent
                    if ts > since and (cap.scope == "user" or (cap.scope == "channel" and ch == channel)
                                       or (cap.scope == "playbook" and pb == playbook))
                )
                if n >= cap.max:
                    return False
        return True

    def record(self, person: str, channel: str, playbook: str, ts: datetime) -> None:
        with self._lock:
            sent = self._sent[person]
            sent.append((ts, channel, playbook))
            while sent and sent[0][0] < ts - self._keep:
                sent.popleft()
