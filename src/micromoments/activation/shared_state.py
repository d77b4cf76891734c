"""Live state shared between server processes through Redis: profile snapshots and frequency caps.

In a scale-out setup (`micromoments serve --role collector|worker`) the worker that owns a
person's partition keeps the full live state in memory (`engine.ProfileState`) and, after each
batch it read from the bus, writes a **snapshot** of the fields `/v1/decide` needs as one JSON
value per person (`<prefix>s:<person_id>`, plus `<prefix>a:<anonymous_id>` -> person for ids
merged at login). Every other process (collectors, other workers) answers `/v1/decide` from
that snapshot, read in one round trip. (One value, not a hash of JSON fields: a worker writes a
snapshot per changed profile per read from the bus, and a hash of 30 fields cost 30 encodings
and a 60-argument HSET each.)

Frequency caps are checked and recorded in one Lua script (`RedisLedger`), atomically, so a
cap of 1 per day holds even when two processes try to contact the same person at once.

>>> snapshot_bytes(type("S", (), {"person_id": "p1", "moment": "go", "opted_out": {"email"}})())
b'{"person_id":"p1","moment":"go","opted_out":["email"]}'
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import orjson

from micromoments.activation.limits import Cap

__all__ = ["RedisLedger", "RedisSharedState", "Snapshot", "snapshot_bytes", "state_from_snapshot", "take_snapshot"]

# What decide() and the templates read from a ProfileState (see engine.Activator.decide).
SNAPSHOT_FIELDS = (
    "person_id", "user_id", "traits", "events", "last_ts", "session_no", "moment", "go_type",
    "moment_confidence", "moment_text", "moment_started_at", "stage", "persona", "segments", "scores",
    "consent", "opted_out", "last_contact", "cart", "cart_updated_at", "purchases", "last_purchase_at",
    "timezone", "lat", "lon", "device", "channel", "push_token", "last_decision", "anonymous_ids",
)
_TIMES = ("last_ts", "moment_started_at", "cart_updated_at", "last_purchase_at")


def _default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    if isinstance(value, Counter):
        return dict(value)
    return str(value)


def snapshot_bytes(state: Any) -> bytes:
    """One profile's snapshot: a JSON object of the `SNAPSHOT_FIELDS` it has."""
    return orjson.dumps({name: getattr(state, name) for name in SNAPSHOT_FIELDS if hasattr(state, name)},
                        default=_default, option=orjson.OPT_NAIVE_UTC)


@dataclass(frozen=True)
class Snapshot:
    """One profile, serialised: safe to write after the owner's lock is released."""

    person_id: str
    data: bytes
    anonymous_ids: frozenset[str]


def take_snapshot(state: Any) -> Snapshot:
    """Serialise `state` now (call it under the lock that guards the state).

    >>> take_snapshot(type("S", (), {"person_id": "p1", "anonymous_ids": {"a1"}})()).anonymous_ids
    frozenset({'a1'})
    """
    return Snapshot(state.person_id, snapshot_bytes(state), frozenset(getattr(state, "anonymous_ids", ()) or ()))


def _time(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)


def state_from_snapshot(state_cls: type, data: bytes) -> Any:
    """A `ProfileState` rebuilt from `snapshot_bytes` (fields not in the snapshot keep their defaults)."""
    values = orjson.loads(data)
    st = state_cls(values.pop("person_id"))
    for name in _TIMES:
        if name in values:
            values[name] = _time(values[name])
    if "last_contact" in values:
        values["last_contact"] = {k: _time(v) for k, v in (values["last_contact"] or {}).items()}
    if values.get("last_decision"):
        values["last_decision"] = (values["last_decision"][0], _time(values["last_decision"][1]))
    for name in ("opted_out", "anonymous_ids"):
        if name in values:
            values[name] = set(values[name] or ())
    if "segments" in values:
        values["segments"] = tuple(values["segments"] or ())
    for name, value in values.items():
        if hasattr(st, name):
            setattr(st, name, value)
    return st


# One round trip for decide, anonymous ids included (decide waits on it): the
# alias, if any, names the person whose snapshot to return. KEYS[1] = alias key, KEYS[2] = the
# id's own snapshot, ARGV[1] = the snapshot-key prefix. The person's key is only known inside
# the script; a single Redis allows that (Redis Cluster would not, and the bus does not use it).
_LOAD = """
local person = redis.call('GET', KEYS[1])
if person then
  local data = redis.call('GET', ARGV[1] .. person)
  if data then return data end
end
return redis.call('GET', KEYS[2])
"""


class RedisSharedState:
    """Profile snapshots in Redis: `save_many` (the owning worker), `load` (anyone, for decide).

    `ttl_hours` expires a profile nobody updated for that long (0 = never).
    """

    def __init__(self, url: str, *, prefix: str = "mm:", ttl_hours: float = 720.0, client: Any = None):
        import redis  # noqa: PLC0415 — optional dependency

        # decide() reads on the request path: a Redis that hangs must fail the request, not the server.
        self._redis = client or redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.prefix = prefix
        self.ttl_s = int(ttl_hours * 3600)
        self._load_script = self._redis.register_script(_LOAD)
        self.saved = 0
        self.loads = 0

    def key(self, person_id: str) -> str:
        return f"{self.prefix}s:{person_id}"

    def save_many(self, snapshots: list[Snapshot]) -> None:
        """Write `snapshots` (see `take_snapshot`) and their anonymous-id aliases in one round trip."""
        if not snapshots:
            return
        pipe = self._redis.pipeline(transaction=False)
        for snap in snapshots:
            pipe.set(self.key(snap.person_id), snap.data, ex=self.ttl_s or None)
            for anon in snap.anonymous_ids:
                if anon != snap.person_id:
                    pipe.set(f"{self.prefix}a:{anon}", snap.person_id, ex=self.ttl_s or None)
        pipe.execute()
        self.saved += len(snapshots)

    def load(self, person_id: str, state_cls: type) -> Any | None:
        """The snapshot of `person_id` (an anonymous id is followed to its person), or None."""
        self.loads += 1
        data = self._load_script(keys=[f"{self.prefix}a:{person_id}", self.key(person_id)],
                                 args=[self.key("")])
        return None if data is None else state_from_snapshot(state_cls, data)

    def close(self) -> None:
        self._redis.close()


# Check every cap and record the contact in one step. KEYS[1]: the person's contact log (a
# sorted set scored by event time). ARGV: now, member, keep_seconds, channel, playbook, then
# triples (scope, max, seconds). Members are "channel|playbook|unique".
_ACQUIRE = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local member, keep, channel, playbook = ARGV[2], tonumber(ARGV[3]), ARGV[4], ARGV[5]
local widest = 0
for i = 6, #ARGV, 3 do
  local s = tonumber(ARGV[i + 2]); if s > widest then widest = s end
end
local sent = redis.call('ZRANGEBYSCORE', key, '(' .. (now - widest), '+inf', 'WITHSCORES')
for i = 6, #ARGV, 3 do
  local scope, max, secs = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local n = 0
  for j = 1, #sent, 2 do
    if tonumber(sent[j + 1]) > now - secs then
      local ch, pb = string.match(sent[j], '^([^|]*)|([^|]*)|')
      if scope == 'user' or (scope == 'channel' and ch == channel) or (scope == 'playbook' and pb == playbook) then
        n = n + 1
      end
    end
  end
  if n >= max then return 0 end
end
redis.call('ZADD', key, now, member)
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - keep)
redis.call('EXPIRE', key, keep)
return 1
"""


def _epoch(ts: dt.datetime) -> float:
    return ts.replace(tzinfo=dt.UTC).timestamp() if ts.tzinfo is None else ts.timestamp()


class RedisLedger:
    """Frequency caps shared by every process (same interface as `limits.FrequencyLedger`).

    `allows(...)` checks the caps *and* records the contact atomically when they allow it
    (a Lua script), so two processes cannot both take the last slot; `record(...)` is then a
    no-op. A playbook that passes the caps but then has no content or fails to render keeps
    its slot: the error is on the side of contacting less, never more.

    >>> RedisLedger.__doc__ is not None
    True
    """

    def __init__(self, url: str, *, prefix: str = "mm:", keep_hours: float = 24 * 31, client: Any = None):
        import redis  # noqa: PLC0415

        self._redis = client or redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self.prefix = prefix
        self.keep_s = int(keep_hours * 3600)
        self._script = self._redis.register_script(_ACQUIRE)
        self.acquired = 0
        self.refused = 0

    def allows(self, caps: list[Cap], person: str, channel: str, playbook: str, now: dt.datetime) -> bool:
        if not caps:
            return True
        if any(c.max <= 0 for c in caps):
            return False
        args: list[Any] = [_epoch(now), f"{channel}|{playbook}|{uuid.uuid4().hex}", self.keep_s, channel, playbook]
        for cap in caps:
            args += [cap.scope, cap.max, cap.per_hours * 3600]
        ok = bool(self._script(keys=[f"{self.prefix}c:{person}"], args=args))
        if ok:
            self.acquired += 1
        else:
            self.refused += 1
        return ok

    def record(self, person: str, channel: str, playbook: str, ts: dt.datetime) -> None:
        """Already recorded by `allows` (atomically)."""
