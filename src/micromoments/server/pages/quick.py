"""Pages that need no analytics open at once: a *quick* snapshot for them while the first one is computed.

The playbooks, experiments and live pages read the store's small tables (playbook files, decisions,
exposures, outcomes, assignments, the latest moments) with plain SQL. Before the first snapshot of
`AnalyticsCache` exists they get a `Snapshot` with the store's tables and a cursor of its own but no
journeys (`partial=True`), instead of the "Computing the analytics…" page.

>>> # snap = quick_snapshot(cache); snap.partial, snap.journey
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from micromoments.report.data import ReportData
from micromoments.server.pages.analytics import EPISODE_COLUMNS, SESSION_COLUMNS, Snapshot

QUICK_PAGES = frozenset({"live", "playbooks", "experiments"})
_KEEP_S = 2.0  # a quick snapshot is reused this long (its table list is re-read after)


def quick_snapshot(cache: Any) -> Snapshot:
    """A `Snapshot` without journeys for the pages in `QUICK_PAGES` (kept on `cache` for a moment)."""
    held = getattr(cache, "_quick", None)
    if held is not None and time.monotonic() - held[0] < _KEEP_S:
        return held[1]
    db = cache.cursor()
    tables = set(db.query("SELECT table_name FROM duckdb_tables() WHERE NOT temporary").table_name)
    events = db.count("events") if "events" in tables else 0
    report = ReportData(has_events=events > 0, has_moments="event_moments" in tables, kpis={"events": events})
    snap = Snapshot(signature=(), computed_at=time.time(), seconds=0.0, report=report, db=db, journey=None,
                    sessions=pd.DataFrame(columns=SESSION_COLUMNS), episodes=pd.DataFrame(columns=EPISODE_COLUMNS),
                    person_paths=pd.Series(dtype="string"), event_counts=pd.Series(dtype="int64"), tables=tables,
                    partial=True)
    if held is not None:
        held[1].db.duck.close()
    cache._quick = (time.monotonic(), snap)
    return snap


def progress(cache: Any) -> dict[str, Any]:
    """What the first computation is doing and for how long: {"stage": str, "seconds": float}."""
    started = getattr(cache, "build_started", None)
    return {"stage": getattr(cache, "stage", "") or "starting",
            "seconds": 0.0 if started is None else time.monotonic() - started}
