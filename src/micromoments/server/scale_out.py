"""The live path's wiring outside the request: the bus handler, and the collector and worker
processes of a scale-out deployment (docs/deploy.md).

>>> from micromoments.config import Config
>>> seen = []
>>> handle = live_handler(seen.append, Config())
>>> handle({"type": "track", "event": "Viewed", "anonymousId": "a1", "messageId": "m1",
...         "timestamp": "2026-01-01T00:00:00Z"})
>>> seen[0]["event"]
'Viewed'
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI

from micromoments.activation.bus import EventBus, RedisStreamsBus, WalShipper, partition_of
from micromoments.activation.live_events import canonical_event
from micromoments.activation.quarantine_log import QuarantineLog
from micromoments.activation.wal import WriteAheadLog
from micromoments.activation.lake_loader import make_loader
from micromoments.activation.wal_loader import LogForwarder, LogSink
from micromoments.config import Config, ServerConfig
from micromoments.errors import InputError
from micromoments.server.collector import Collector
from micromoments.server.endpoints import Api
from micromoments.store import Store

__all__ = ["NoLoader", "ScaleOut", "collector_wal", "live_handler", "start_scale_out"]

log = logging.getLogger("micromoments.server")


def live_handler(on_event: Callable[[dict[str, Any]], Any], config: Config, *,
                 partition: tuple[int, int] = (0, 1), dedupe: int = 0) -> Callable[[dict[str, Any]], None]:
    """Bus handler: the stamped Segment event -> `canonical_event` -> the activator.

    The mapping runs here, on the bus thread, not on the request path. `partition=(i, n)`
    keeps only the events of people in partition i of n (`bus.partition_of`); `dedupe`
    remembers that many messageIds and skips repeats (the Redis bus delivers at least once).
    """
    max_future = config.ingest.max_future_skew_hours
    min_time = config.ingest.min_time()
    index, count = partition
    seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    def handle(event: dict[str, Any]) -> None:
        if count > 1 and partition_of(event, count) != index:
            return
        if dedupe:
            mid = event.get("messageId")
            if mid is not None:
                if mid in seen:
                    return
                seen[mid] = None
                if len(seen) > dedupe:
                    seen.popitem(last=False)
        try:
            row = canonical_event(event, received_at=None, max_future_hours=max_future, min_time=min_time)
        except InputError as exc:  # the collector checked it; a rule changed since (a restart): skip it
            log.warning("live path skipped event %s: %s", event.get("messageId"), exc)
            return
        on_event(row)

    return handle


class NoLoader:
    """Stands in for the store loader in /admin/stats of a process that does not own the store."""

    def __init__(self, shipper: Any):
        self.loaded = self.duplicates = self.quarantined = self.log_rows = self.rounds = 0
        self.last_round_seconds = 0.0
        self.last_error = getattr(shipper, "last_error", None)
        self._pending = shipper.pending() if shipper is not None else 0

    def pending_segments(self) -> int:
        return self._pending


class ScaleOut:
    """The background parts of a collector or worker process, closed in order on shutdown."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], Any]] = []

    def close(self) -> None:
        for fn in self.closers:
            try:
                fn()
            except Exception:
                log.exception("shutting down %s failed", getattr(fn, "__qualname__", fn))


def collector_wal(wal_dir: str | Path, server: ServerConfig) -> WriteAheadLog:
    """The WAL the collector acknowledges from, with `[server]`'s durability settings."""
    return WriteAheadLog(wal_dir, fsync=server.fsync, group_commit_ms=server.group_commit_ms,
                         preallocate=server.wal_preallocate, sync_interval_ms=server.fsync_interval_ms)


def start_scale_out(app: FastAPI, api: Api, config: Config, role: str, wal_dir: Path, store_path: str,
                     activator: Any, sink: LogSink, bus: EventBus | None, store: Store | None) -> ScaleOut:
    """Start a `collector` or `worker` process (both need a Redis bus).

    Both collect: validate, append to the WAL (group commit), acknowledge; a `WalShipper`
    then moves each durable group onto the Redis stream and deletes shipped segments. A
    collector answers /v1/decide from the profile snapshots in Redis. A worker also reads the
    stream: its activator (one consumer group per person partition) keeps the live state and
    writes snapshots, with frequency caps in Redis; the worker with `load_store` reads the
    stream through the `loader` group into its own log (`<wal_dir>-inbox`) and the store.
    """
    from micromoments.activation.shared_state import RedisLedger, RedisSharedState

    server = config.server
    url, stream = server.bus, server.bus_stream
    parts = ScaleOut()
    wal = collector_wal(wal_dir, server)
    out_bus = RedisStreamsBus(url, stream=stream)
    # Refused events go to `<stream>:quarantine`; the loader worker stores them (docs/security.md).
    refused = QuarantineLog(wal_dir, fsync=server.fsync)
    shipper = WalShipper(wal, out_bus, interval_ms=server.flush_interval_ms, refused=refused,
                         refused_bus=RedisStreamsBus(url, stream=stream + ":quarantine"))
    if wal.recovered_segments:
        log.info("shipping %d WAL segment(s) left by the last run", len(wal.recovered_segments))
    shipper.start()
    app.state.wal, app.state.shipper, app.state.bus = wal, shipper, out_bus
    api.collector = Collector(wal, None, max_event_bytes=api.event_limit,
                              max_future_hours=config.ingest.max_future_skew_hours,
                              dedupe_window=server.dedupe_window, min_time=config.ingest.min_time(),
                              quarantine=refused)
    app.state.collector = api.collector
    parts.closers += [wal.close, shipper.close]  # acknowledged groups reach the stream before we stop
    loader = None
    if role == "worker" and server.load_store:
        inbox = WriteAheadLog(Path(str(wal_dir) + "-inbox"), fsync=server.fsync)
        inbox_refused = QuarantineLog(inbox.directory, fsync=server.fsync)
        loader = make_loader(inbox, store_path, config=config, interval_ms=server.flush_interval_ms, log_sink=sink,
                             store=store, quarantine=inbox_refused)
        events_in = RedisStreamsBus(url, stream=stream, group="loader", consumer="loader", block_ms=200)

        def to_inbox(lines: list[bytes]) -> None:
            if lines:  # durable in the inbox before the entries are acknowledged
                inbox.write_sync(b"\n".join(lines) + b"\n")

        events_in.subscribe_blobs(to_inbox)
        logs_in = RedisStreamsBus(url, stream=stream + ":logs", group="loader", consumer="loader", block_ms=200)
        logs_in.subscribe(LogForwarder.receiver(sink))
        refused_in = RedisStreamsBus(url, stream=stream + ":quarantine", group="loader", consumer="loader",
                                     block_ms=200)
        refused_in.subscribe_blobs(lambda lines: inbox_refused.append(_refused_rows(lines)))
        loader.start()
        app.state.loader = loader
        parts.closers += [events_in.close, logs_in.close, refused_in.close, inbox.close]
    if activator is not None and hasattr(activator, "decide"):
        activator.shared = RedisSharedState(url, prefix=stream + ":", ttl_hours=server.state_ttl_hours)
        if role == "worker" and hasattr(activator, "on_event"):
            activator.ledger = RedisLedger(url, prefix=stream + ":")
            index, count = server.worker_index, max(1, server.worker_count)
            group = "activators" if count == 1 else f"activators-{index}"
            live_bus = bus if bus is not None else RedisStreamsBus(url, stream=stream, group=group,
                                                                   consumer=f"{group}-worker", block_ms=100,
                                                                   start_id="$")
            live_bus.subscribe(live_handler(activator.on_event, config, partition=(index, count), dedupe=1_000_000))
            if hasattr(live_bus, "after_batch"):
                live_bus.after_batch(activator.flush_shared)
            app.state.bus = live_bus
            parts.closers.append(live_bus.close)
        parts.closers.append(activator.close)
    if loader is None:  # this process's decisions and exposures go to the loader through the bus
        forwarder = LogForwarder(sink, RedisStreamsBus(url, stream=stream + ":logs"))
        forwarder.start()
        parts.closers.append(forwarder.close)
    if loader is not None:
        parts.closers.append(loader.close)
    return parts


def _refused_rows(lines: list[bytes]) -> list[dict[str, Any]]:
    """The quarantine rows shipped by collectors (a line that is not one is skipped, not retried forever)."""
    rows = []
    for line in lines:
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            log.warning("skipped a quarantine line from the bus that is not JSON")
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
