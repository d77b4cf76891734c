"""Web app speed: server time of every `/app` page on a demo store (target < 300 ms per page).

Mounts the pages on a bare FastAPI app over an existing store (or builds one with
`micromoments demo`), signs in, waits for the analytics snapshot, then requests each page
`--repeat` times and reads the `Server-Timing` header the routes set. Prints, per page, the first
and the median/max server time and its ratio to the 300 ms budget, and the one-off cost of
computing the snapshot (which happens in the background when the server starts).

    .venv/bin/python benchmarks/pages.py --db /tmp/big/micromoments.duckdb
    .venv/bin/python benchmarks/pages.py --users 20000 --days 30     # ≈ 1M events; builds the store first
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_MS = 300.0
PAGES = ("/app?period=7d", "/app?period=all", "/app/live", "/app/journey", "/app/questions", "/app/personas",
         "/app/playbooks", "/app/experiments", "/app/journey/examples?path=buy",
         "/app/journey/examples?stage=consideration&moment=know", "/app/api/moments", "/app/api/moments?type=go",
         "PERSON")


def server_ms(response) -> float:
    m = re.search(r"dur=([\d.]+)", response.headers.get("server-timing", ""))
    return float(m.group(1)) if m else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", help="an existing store (after ingest + classify)")
    ap.add_argument("--users", type=int, default=20000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()

    db = args.db
    if db is None:
        out = Path(tempfile.mkdtemp(prefix="mm-pages-bench-"))
        subprocess.run([str(Path(sys.executable).parent / "micromoments"), "demo", "--users", str(args.users),
                        "--days", str(args.days), "--out", str(out)], check=True)
        db = str(out / "micromoments.duckdb")

    from fastapi import FastAPI
    from starlette.testclient import TestClient

    from micromoments.server.pages import hash_password, mount_pages

    app = FastAPI()
    started = time.perf_counter()
    cache = mount_pages(app, store_path=db, admin_users={"bench": hash_password("bench")})
    client = TestClient(app)
    page = client.get("/app/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    client.post("/app/login", data={"csrf_token": token, "username": "bench", "password": "bench"})
    while not (status := client.get("/app/api/status").json())["ready"]:
        if status["error"]:
            raise SystemExit(status["error"])
        time.sleep(0.5)
    cold = time.perf_counter() - started
    snap = cache.snapshot()
    events = snap.report.kpis.get("events", 0)
    person = snap.person_paths.index[len(snap.person_paths) // 2] if len(snap.person_paths) else "none"
    print(f"store {db}: {events:,} events, {len(snap.sessions):,} sessions, {len(snap.episodes):,} episodes")
    print(f"snapshot (background, once per store state): {cold:.1f} s wall, of which analytics "
          f"{snap.seconds:.1f} s and pre-rendered charts {snap.prerender_seconds:.1f} s")
    print(f"{'page':<58} {'first ms':>9} {'median ms':>10} {'max ms':>8} {'median/300ms':>13}")
    worst = 0.0
    for path in PAGES:
        url = f"/app/people/{person}" if path == "PERSON" else path
        times = []
        for _ in range(args.repeat):
            r = client.get(url)
            assert r.status_code == 200, (url, r.status_code, r.text[:300])
            times.append(server_ms(r))
        med = statistics.median(times)
        worst = max(worst, med)
        print(f"{url[:58]:<58} {times[0]:>9.1f} {med:>10.1f} {max(times):>8.1f} {med / BUDGET_MS:>12.2f}x")
    steps = ",".join(snap.report.funnel_steps)
    fresh = client.get("/app/api/funnel", params={"steps": "Product Viewed,Order Completed", "mode": "strict"})
    again = client.get("/app/api/funnel", params={"steps": "Product Viewed,Order Completed", "mode": "strict"})
    default = client.get("/app/api/funnel", params={"steps": steps})
    print(f"funnel API: a new funnel {server_ms(fresh):.0f} ms, the same again {server_ms(again):.1f} ms, "
          f"the page's default funnel {server_ms(default):.1f} ms")
    print(f"slowest page median: {worst:.1f} ms = {worst / BUDGET_MS:.2f}x the 300 ms budget")


if __name__ == "__main__":
    main()
