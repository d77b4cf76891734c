"""Load benchmark of `micromoments serve`: the load comes from a second process on loopback.

    .venv/bin/python benchmarks/serve.py [--seconds 8] [--connections 32] [--no-activator] [--split]
                                         [--worker-nice 10] [--phases single,batch,decide]

`--split` runs the scale-out setup of docs/deploy.md on this machine: a redis-server, one
`serve --role worker` (playbooks, live state, the store) and one `serve --role collector`
that takes the load (validate, WAL group commit, acknowledge, ship to the Redis stream);
/v1/decide is asked of the collector, which reads the worker's profile snapshots in Redis.

Four phases, each bounded in time:
1. `single`: `POST /v1/track` requests, closed loop with `--connections` in flight: the most
   requests/s the server takes, and p50/p99 at that saturation;
2. `paced`: `POST /v1/track` at a fixed `--paced-rate` (3,000) requests/s, open loop (latency
   counts from the moment a request was due, so a stall is not hidden): p50/p99 at the rate the
   target names ("3,000 requests/s with p99 <= 25 ms");
3. `batch`: `POST /v1/batch` with 500 events each: events/s;
4. `decide`: `POST /v1/decide` at a fixed 500 requests/s (open loop): p50/p99;
5. `batch-plain` and `batch-gzip`: the same batches from the asyncio client, plain and with
   `Content-Encoding: gzip` (compressed by the client, as the SDKs do): events/s of each and
   their ratio;
6. `decide-page`: `/v1/decide` as micromoments.js asks it from a web page (text/plain body with
   the write key in it, an `Origin` header, CORS on the answer, the content-only view) at
   500 requests/s: p50/p99. The page limit per key and address is off here
   (`decide_rate_limit_per_second = 0`): every request comes from one address.

Every event has its own messageId (no dedupe shortcut) and the WAL is written as the server's
config says (`--fsync-interval-ms`, default 100 as `[server] fsync_interval_ms`). The load
generator is `wrk` (Debian package) when installed, else an asyncio client in a
subprocess. It also prints the server's CPU time per request, which says what one core
could do when the machine is not shared.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gzip as gzip_module
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KEY = "bench-key"
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
TICK = os.sysconf("SC_CLK_TCK")

EVENT = ('{"type":"track","event":"Products Searched","messageId":"%s","anonymousId":"anon-%d",'
         '"properties":{"query":"paint near me"},"context":{"page":{"url":"https://shop.example/search?q=paint"},'
         '"userAgent":"Mozilla/5.0 (iPhone)","location":{"latitude":53.3,"longitude":-6.2}}}')

WRK_SCRIPT = r"""
local counter = 0
local threads = 0
function setup(thread) thread:set("tid", threads); threads = threads + 1 end
function init(args) prefix = "w" .. tid .. "-" .. tostring(os.time()) .. "-" .. tostring(math.random(1e9)) .. "-" end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%(auth)s"
local template = '%(event)s'
local per = %(per)d
request = function()
  if per == 0 then
    counter = counter + 1
    return wrk.format(nil, "/v1/track", nil, string.format(template, prefix .. counter, counter %% 5000))
  end
  local parts = {}
  for i = 1, per do
    counter = counter + 1
    parts[i] = string.format(template, prefix .. counter, counter %% 5000)
  end
  return wrk.format(nil, "/v1/batch", nil, '{"batch":[' .. table.concat(parts, ",") .. ']}')
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    return sum(cpu_split(pid))


def cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICK, int(fields[12]) / TICK


# --- a small asyncio HTTP/1.1 client (keep-alive), for decide and when wrk is missing -------------
class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def post(self, path: str, body: bytes, headers: str | None = None) -> int:
        if headers is None:
            headers = f"Authorization: {AUTH}\r\nContent-Type: application/json\r\n"
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: bench\r\n{headers}"
                          f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await self.reader.readexactly(length)
        return status


async def _connect(port: int, n: int) -> list[Conn]:
    return [Conn(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(n)]


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


GZIP_HEADERS = f"Authorization: {AUTH}\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
PAGE_HEADERS = "Content-Type: text/plain;charset=UTF-8\r\nOrigin: https://shop.example\r\n"


async def _closed_loop(port: int, seconds: float, connections: int, per: int, gzip: bool = False) -> dict:
    conns = await _connect(port, connections)
    stop = time.perf_counter() + seconds
    lat: list[float] = []
    errors = 0
    counter = 0
    prefix = f"p{os.getpid()}-{time.time_ns()}-"
    sent = [0, 0]  # bytes before and after compression

    async def worker(conn: Conn) -> None:
        nonlocal errors, counter
        while time.perf_counter() < stop:
            if per:
                events = []
                for _ in range(per):
                    counter += 1
                    events.append(EVENT % (prefix + str(counter), counter % 5000))
                path, body = "/v1/batch", ('{"batch":[' + ",".join(events) + "]}").encode()
            else:
                counter += 1
                path, body = "/v1/track", (EVENT % (prefix + str(counter), counter % 5000)).encode()
            headers = None
            if gzip:  # as the SDKs do it (Python's gzip module, level 9 like GzipFile's default)
                sent[0] += len(body)
                body = gzip_module.compress(body)
                sent[1] += len(body)
                headers = GZIP_HEADERS
            t0 = time.perf_counter()
            status = await conn.post(path, body, headers)
            lat.append(time.perf_counter() - t0)
            errors += status != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - started
    return {"requests": len(lat), "rps": len(lat) / elapsed, "p50_ms": _percentile(lat, 0.5) * 1e3,
            "p99_ms": _percentile(lat, 0.99) * 1e3, "errors": errors,
            "compression": sent[0] / sent[1] if sent[1] else 1.0}


def _decide_request(i: int, people: int = 5000) -> tuple[str, bytes]:
    return "/v1/decide", json.dumps({"anonymousId": f"anon-{i % people}",
                                     "context": {"channel": "web", "placement": "home"}}).encode()


def _page_decide_request(i: int, people: int = 5000) -> tuple[str, bytes, str]:
    """What micromoments.js sends: text/plain, the write key in the body, page context, an Origin."""
    return "/v1/decide", json.dumps({"writeKey": KEY, "anonymousId": f"anon-{i % people}", "context": {
        "channel": "web", "placement": "hero", "page": {"url": "https://shop.example/", "path": "/"},
        "timezone": "Europe/London", "lat": 53.8, "lon": -1.55}}).encode(), PAGE_HEADERS


def _track_request(prefix: str):  # noqa: ANN202
    def request(i: int) -> tuple[str, bytes]:
        return "/v1/track", (EVENT % (prefix + str(i), i % 5000)).encode()
    return request


async def _open_loop(port: int, seconds: float, rate: float, request) -> dict:  # noqa: ANN001
    """`request(i)` -> (path, body) due every 1/rate s; latency from when each was due (no
    coordinated omission: a stall delays every request due during it, and they all count)."""
    free: asyncio.Queue[Conn] = asyncio.Queue()
    for c in await _connect(port, 32):
        free.put_nowait(c)
    lat: list[float] = []
    errors = 0
    tasks = []

    async def one(due: float, i: int) -> None:
        nonlocal errors
        conn = await free.get()
        path, body, *headers = request(i)
        status = await conn.post(path, body, headers[0] if headers else None)
        lat.append(time.perf_counter() - due)
        errors += status != 200
        free.put_nowait(conn)

    start = time.perf_counter() + 0.05
    n = int(seconds * rate)
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(due, i)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    return {"requests": len(lat), "rps": len(lat) / elapsed, "p50_ms": _percentile(lat, 0.5) * 1e3,
            "p99_ms": _percentile(lat, 0.99) * 1e3, "errors": errors}


def client_main(argv: list[str]) -> None:
    """`--client MODE PORT SECONDS ARG`: run in its own process, print JSON."""
    mode, port, seconds, arg = argv[0], int(argv[1]), float(argv[2]), int(argv[3])
    try:
        import uvloop

        uvloop.install()
    except ModuleNotFoundError:
        pass
    if mode == "decide":
        out = asyncio.run(_open_loop(port, seconds, float(arg), _decide_request))
    elif mode == "decide-page":
        out = asyncio.run(_open_loop(port, seconds, float(arg), _page_decide_request))
    elif mode in ("batch-plain", "batch-gzip"):
        out = asyncio.run(_closed_loop(port, seconds, connections=arg, per=500, gzip=mode == "batch-gzip"))
    elif mode == "paced":
        out = asyncio.run(_open_loop(port, seconds, float(arg), _track_request(f"q{os.getpid()}-{time.time_ns()}-")))
    else:
        out = asyncio.run(_closed_loop(port, seconds, connections=arg, per=500 if mode == "batch" else 0))
    print(json.dumps(out))


def run_client(mode: str, port: int, seconds: float, arg: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--client", mode, str(port), str(seconds), str(arg)],
                         capture_output=True, text=True, timeout=seconds + 120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    value, unit = float(m.group(1)), m.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(port: int, seconds: float, connections: int, per: int, tmp: Path) -> dict:
    script = tmp / f"load{per}.lua"
    script.write_text(WRK_SCRIPT % {"auth": AUTH, "event": EVENT.replace("%s", "%s").replace("%d", "%d"),
                                    "per": per})
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{int(seconds)}s", "--latency", "-s", str(script),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 60,
                         check=True).stdout
    lat = dict(re.findall(r"^\s+(50|99)%\s+(\S+)", out, re.M))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"requests": int(re.search(r"(\d+) requests in", out).group(1)),
            "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": _ms(lat["50"]), "p99_ms": _ms(lat["99"]),
            "errors": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(1) if errors else ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each phase")
    parser.add_argument("--warmup", type=float, default=3.0,
                        help="seconds of single-event load before the phases, not counted (0 = cold start)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--no-activator", action="store_true", help="collector only (no playbooks on the bus)")
    parser.add_argument("--python-client", action="store_true", help="use the asyncio client even if wrk exists")
    parser.add_argument("--split", action="store_true", help="collector and worker in two processes over Redis")
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="--split: run the worker at this nice level, standing in for a worker on another "
                             "machine (on one 2-core box it otherwise takes the collector's CPU while it catches up)")
    parser.add_argument("--pause-worker", action="store_true",
                        help="--split: stop the worker (SIGSTOP) during the single and batch phases, as if it ran "
                             "on another machine; it catches up after each (checked: every event in the store)")
    parser.add_argument("--store-dir", default=None,
                        help="put the DuckDB store and the worker's data folder in a new folder under this one "
                             "(e.g. /dev/shm: off the collector WAL's disk, as on separate machines)")
    parser.add_argument("--fsync-interval-ms", type=float, default=100.0,
                        help="[server] fsync_interval_ms: N = 200 once written (survives kill -9), fsync every "
                             "N ms (power loss can lose ~N ms; 100 is the default); 0 = fsync before each 200")
    parser.add_argument("--preallocate", action="store_true",
                        help="[server] wal_preallocate: zero-filled WAL segments made ahead (default: plain files)")
    parser.add_argument("--paced-rate", type=int, default=3000,
                        help="requests/s of the paced single-event phase (open loop)")
    parser.add_argument("--phases", default="single,paced,batch,decide,batch-plain,batch-gzip,decide-page",
                        help="which phases to run, comma-separated (e.g. `batch` to profile only that path)")
    args = parser.parse_args()
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]

    tmp = Path(tempfile.mkdtemp(prefix="mm-serve-bench-"))
    # --store-dir /dev/shm: the DuckDB store (the worker's heavy writes) off the WAL's disk, as when
    # the worker runs on another machine. The collector's WAL fsyncs wait behind other processes'
    # writeback on a shared disk (a 1.5 GB `dd` next to the load: single-event p99 6 -> 109-237 ms).
    store_dir = Path(tempfile.mkdtemp(prefix="mm-serve-store-", dir=args.store_dir)) if args.store_dir else tmp
    port = free_port()
    extra = ""
    redis_proc = worker = None
    exe = Path(sys.executable).parent / "micromoments"
    if args.split:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise SystemExit("--split needs redis-server (apt-get install redis-server)")
        rport = free_port()
        redis_proc = subprocess.Popen([redis_server, "--port", str(rport), "--save", "", "--appendonly", "no",
                                       "--dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        extra = f'bus = "redis://127.0.0.1:{rport}/0"\n'
    (tmp / "micromoments.toml").write_text(
        f'[store]\npath = "{store_dir / "store.duckdb"}"\n\n[server]\nwrite_keys = {{"{KEY}" = "bench"}}\n'
        f'admin_tokens = ["bench-admin"]\nrate_limit_per_second = 0.0\nwal_dir = "{tmp / "wal"}"\n'
        "flush_interval_ms = 1000\ndecide_rate_limit_per_second = 0\n" + f"wal_preallocate = {'true' if args.preallocate else 'false'}\n"
        f"fsync_interval_ms = {args.fsync_interval_ms}\n" + extra)
    cmd = [str(exe), "serve", "--config", str(tmp / "micromoments.toml"), "--port", str(port)]
    if args.no_activator:
        cmd.append("--no-activator")
    wport = free_port()
    if args.split:
        time.sleep(0.5)
        nice = ["nice", "-n", str(args.worker_nice)] if args.worker_nice else []
        worker = subprocess.Popen([*nice, *cmd[:-1], str(wport), "--role", "worker", "--data-dir", str(store_dir / "worker")],
                                  stdout=open(tmp / "worker.log", "wb"), stderr=subprocess.STDOUT,
                                  start_new_session=True)
        cmd += ["--role", "collector", "--data-dir", str(tmp / "collector")]
    server = subprocess.Popen(cmd, stdout=open(tmp / "serve.log", "wb"), stderr=subprocess.STDOUT,
                              start_new_session=True)
    use_wrk = shutil.which("wrk") is not None and not args.python_client
    results: dict[str, dict] = {}
    worker_doc: dict = {}
    try:
        for proc, p, log in ((server, port, "serve.log"), (worker, wport, "worker.log")):
            if proc is None:
                continue
            deadline = time.monotonic() + 90
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", p), timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit(f"server did not start: {(tmp / log).read_text()[-2000:]}")
                    time.sleep(0.2)
        time.sleep(0.5)
        # For a profiler: `py-spy record --pid <collector pid>` while a phase runs.
        print(f"collector pid {server.pid}" + (f", worker pid {worker.pid}" if worker is not None else ""),
              file=sys.stderr, flush=True)

        def admin_stats(p: int = port) -> dict:
            out = subprocess.run(["curl", "-s", f"http://127.0.0.1:{p}/admin/stats", "-H",
                                  "Authorization: Bearer bench-admin"], capture_output=True, text=True).stdout
            return json.loads(out)

        def settle(limit: float = 240.0) -> float:
            """Wait until the bus has fed every event to the activator and every event is in the store."""
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < limit:
                done = True
                for p in (port, wport) if worker is not None else (port,):
                    st = admin_stats(p)
                    done &= st["bus"]["queued"] == 0 and st["wal"]["pending_segments"] == 0
                    if p == wport:
                        # The stream's lag is 0 as soon as the worker has *read* the entries
                        # (up to thousands of events per read): wait until the activator has
                        # handled them and the loader has put them in the store.
                        accepted = admin_stats(port)["events_accepted"]
                        done &= st["store"]["events"] >= accepted and st["bus"]["delivered"] >= accepted
                if done:
                    break
                time.sleep(0.25)
            else:
                print(f"warning: the worker had not caught up after {limit:.0f} s", file=sys.stderr)
            return time.perf_counter() - t0

        def phase(name: str, fn) -> dict:
            settled = settle()
            # --pause-worker: the worker stands still (SIGSTOP) while events are posted, as if it ran
            # on another machine; the stream holds the backlog and `settle` waits for it after.
            pause = args.pause_worker and worker is not None and name != "decide"
            if pause:
                os.killpg(worker.pid, signal.SIGSTOP)
            slow0 = admin_stats()["wal"]["fsyncs_over_25ms"]
            (u0, k0), t0 = cpu_split(server.pid), time.perf_counter()
            w0 = cpu_seconds(worker.pid) if worker is not None else 0.0
            try:
                out = fn()
            finally:
                if pause:
                    os.killpg(worker.pid, signal.SIGCONT)
            out["slow_fsyncs"] = admin_stats()["wal"]["fsyncs_over_25ms"] - slow0
            u1, k1 = cpu_split(server.pid)
            out["server_cpu_s"] = (u1 - u0) + (k1 - k0)
            out["server_sys_s"] = k1 - k0
            out["worker_cpu_s"] = cpu_seconds(worker.pid) - w0 if worker is not None else 0.0
            out["wall_s"] = time.perf_counter() - t0
            out["settle_before_s"] = settled
            results[name] = out
            return out

        s = args.seconds
        if args.warmup > 0:
            # Steady state is what the targets are about: a just-started server still imports and
            # fills caches on its first requests (single-event p99 of 0.2-0.7 s in some cold runs).
            # These requests are not counted; their events go through the pipeline like the rest.
            settle()
            (run_wrk(port, args.warmup, args.connections, 0, tmp) if use_wrk
             else run_client("single", port, args.warmup, args.connections))
        if "single" in phases:
            phase("single", (lambda: run_wrk(port, s, args.connections, 0, tmp)) if use_wrk
                  else (lambda: run_client("single", port, s, args.connections)))
        if "paced" in phases:
            phase("paced", lambda: run_client("paced", port, s, args.paced_rate))
        if "batch" in phases:
            phase("batch", (lambda: run_wrk(port, s, 8, 500, tmp)) if use_wrk else (lambda: run_client("batch", port, s, 8)))
        if "decide" in phases:
            phase("decide", lambda: run_client("decide", port, s, 500))
        for name in ("batch-plain", "batch-gzip"):
            if name in phases:
                phase(name, lambda name=name: run_client(name, port, s, 8))
        if "decide-page" in phases:
            phase("decide-page", lambda: run_client("decide-page", port, s, 500))
        drain_s = settle()
        stats = json.dumps(admin_stats())
        worker_doc = admin_stats(wport) if worker is not None else {}
    finally:
        for proc in (server, worker, redis_proc):
            if proc is None:
                continue
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
    try:
        stats_doc = json.loads(stats)
    except (ValueError, UnboundLocalError):
        stats_doc = {}

    skipped = {"requests": 0, "rps": float("nan"), "p50_ms": float("nan"), "p99_ms": float("nan"), "errors": 0,
               "server_cpu_s": 0.0, "worker_cpu_s": 0.0, "settle_before_s": 0.0}
    single, paced, batch, decide = (results.get(name, skipped) for name in ("single", "paced", "batch", "decide"))
    plain, zipped, page = (results.get(name, skipped) for name in ("batch-plain", "batch-gzip", "decide-page"))
    events_per_s = batch["rps"] * 500
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.1f} / {load[1]:.1f} (shared with other jobs)")
    print(f"load generator: {'wrk' if use_wrk else 'asyncio client'} in its own process; activator "
          f"{'off' if args.no_activator else 'on'}; "
          f"{f'WAL fsync every {args.fsync_interval_ms:g} ms' if args.fsync_interval_ms else 'WAL fsync before each 200'}; "
          f"every event a new messageId; "
          f"{'split: collector process <- load, worker process + redis-server behind it' if args.split else 'one process (role all)'}"
          f"{f' (worker at nice {args.worker_nice})' if args.worker_nice else ''}"
          f"{' (worker paused during single and batch)' if args.pause_worker else ''}"
          f"{f'; store and worker data in {args.store_dir}' if args.store_dir else ''}")
    if worker is not None:
        print(f"worker process CPU during the phases: single {single['worker_cpu_s']:.1f} s, "
              f"paced {paced['worker_cpu_s']:.1f} s, "
              f"batch {batch['worker_cpu_s']:.1f} s, decide {decide['worker_cpu_s']:.1f} s")
    ran = set(results)  # phases left out by --phases print no line (not a row of 'nan')
    if "single" in ran:
        print(f"single events : {single['rps']:8,.0f} req/s   p50 {single['p50_ms']:6.1f} ms   p99 {single['p99_ms']:6.1f} ms"
              f"   (target ≥3,000 req/s, p99 ≤25 ms)  errors {single['errors']}"
              f"   server CPU {single['server_cpu_s'] / max(single['requests'], 1) * 1e6:,.0f} µs/request"
              f"   WAL fsyncs over 25 ms: {single.get('slow_fsyncs', 0)}")
    if "paced" in ran:
        print(f"single @{args.paced_rate:,}/s: {paced['rps']:8,.0f} req/s   p50 {paced['p50_ms']:6.1f} ms   "
              f"p99 {paced['p99_ms']:6.1f} ms   (target p99 ≤25 ms at ≥3,000 req/s; open loop)  errors {paced['errors']}"
              f"   WAL fsyncs over 25 ms: {paced.get('slow_fsyncs', 0)}")
    if "batch" in ran:
        print(f"batch (500/req): {events_per_s:8,.0f} events/s ({batch['rps']:.1f} req/s, p99 {batch['p99_ms']:.0f} ms)"
              f"   (target ≥50,000 events/s)  errors {batch['errors']}"
              f"   server CPU {batch['server_cpu_s'] / max(batch['requests'] * 500, 1) * 1e6:,.1f} µs/event"
              f" ({batch.get('server_sys_s', 0.0) / max(batch['requests'] * 500, 1) * 1e6:,.1f} in the kernel)")
    if "decide" in ran:
        print(f"decide @500/s : {decide['rps']:8,.0f} req/s   p50 {decide['p50_ms']:6.2f} ms   p99 {decide['p99_ms']:6.2f} ms"
              f"   (target p99 ≤10 ms)  errors {decide['errors']}")
    if "batch-gzip" in results or "batch-plain" in results:
        print(f"batch plain   : {plain['rps'] * 500:8,.0f} events/s (asyncio client, 500/req, p99 {plain['p99_ms']:.0f} ms)"
              f"   errors {plain['errors']}   server CPU "
              f"{plain['server_cpu_s'] / max(plain['requests'] * 500, 1) * 1e6:,.1f} µs/event")
        print(f"batch gzip    : {zipped['rps'] * 500:8,.0f} events/s (same batches gzipped, "
              f"{zipped.get('compression', 1.0):.1f}x smaller, p99 {zipped['p99_ms']:.0f} ms)   errors {zipped['errors']}"
              f"   server CPU {zipped['server_cpu_s'] / max(zipped['requests'] * 500, 1) * 1e6:,.1f} µs/event"
              f"   gzip/plain {zipped['rps'] / max(plain['rps'], 1e-9):.2f}x   (target ≥50,000 events/s each)")
    if "decide-page" in results:
        print(f"decide (page) @500/s: {page['rps']:8,.0f} req/s   p50 {page['p50_ms']:6.2f} ms   "
              f"p99 {page['p99_ms']:6.2f} ms   (target p99 ≤10 ms; text/plain + writeKey + Origin, content only)"
              f"  errors {page['errors']}")
    print(f"between phases the server digested its backlog (activator + store): "
          f"{batch['settle_before_s']:.1f} s after single, {decide['settle_before_s']:.1f} s after batch, "
          f"{drain_s:.1f} s at the end (the decide phase runs on a settled server)")
    ratios = {"single": f"single {single['rps'] / 3000:.2f}x, p99 {25 / max(single['p99_ms'], 1e-9):.2f}x headroom",
              "paced": f"paced p99 {25 / max(paced['p99_ms'], 1e-9):.2f}x headroom",
              "batch": f"batch {events_per_s / 50000:.2f}x",
              "decide": f"decide p99 {10 / max(decide['p99_ms'], 1e-9):.2f}x headroom"}
    if ran & set(ratios):
        print("ratios to target: " + "; ".join(v for k, v in ratios.items() if k in ran))
    if stats_doc:
        print(f"server: {stats_doc['events_accepted']:,} events accepted, {stats_doc['wal']['group_commits']:,} fsync "
              f"groups ({stats_doc['events_accepted'] / max(stats_doc['wal']['group_commits'], 1):.1f} events/fsync), "
              f"bus delivered {stats_doc['bus']['delivered']:,} dropped {stats_doc['bus']['dropped']:,}; "
              f"WAL: slowest fsync {stats_doc['wal']['fsync_max_ms']:.1f} ms, "
              f"{stats_doc['wal']['preallocated_segments']:,} of {stats_doc['wal']['segment']:,} segments preallocated"
              + (f", shipped to Redis {stats_doc['shipper']['shipped']:,}" if stats_doc.get("shipper") else ""))
    if worker_doc:
        print(f"worker: {worker_doc['store']['events']:,} events in the store, activator bus delivered "
              f"{worker_doc['bus']['delivered']:,}, dropped {worker_doc['bus']['dropped']:,}")
    shutil.rmtree(tmp, ignore_errors=True)
    if store_dir != tmp:
        shutil.rmtree(store_dir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        client_main(sys.argv[2:])
    else:
        main()
