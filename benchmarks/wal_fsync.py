"""WAL acknowledgement latency: preallocated segments vs plain growing files, same run, same disk.

The collector answers an event once its WAL group is fsynced, so the fsync's tail is the
single-event p99's floor. This benchmark takes HTTP and CPU out: 16 threads each append one
event at a time (`write_sync`, as 16 connections would), the log rotates every second as the
server's loader or shipper makes it, and a second process writes big files to the same disk
(`--noise-mb`, like a store checkpoint or a backup), so the fsyncs meet other writeback.
Modes alternate, round after round, and it prints p50 / p99 / max and the ratio.

    .venv/bin/python benchmarks/wal_fsync.py --seconds 8 --rounds 3 --noise-mb 1500
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from micromoments.activation.wal import WriteAheadLog

EVENT = (b'{"type":"track","event":"Product Viewed","messageId":"%d","anonymousId":"a1",'
         b'"timestamp":"2026-09-01T10:00:00Z","properties":{"query":"garden shed near me","price":129.0}}\n')


def _noise(directory: Path, mb: int, pause: float) -> subprocess.Popen:
    # Another writer on the disk for the whole round: files of `mb` MB, synced, then `pause` s of rest.
    script = (f"while true; do dd if=/dev/zero of={directory}/noise bs=1M count={mb} conv=fdatasync "
              f"status=none; rm -f {directory}/noise; sleep {pause}; done")
    return subprocess.Popen(["bash", "-c", script], start_new_session=True)


def run_round(directory: Path, preallocate: bool, seconds: float, writers: int) -> list[float]:
    wal = WriteAheadLog(directory, preallocate=preallocate)
    latencies: list[float] = []
    lock = threading.Lock()
    stop = time.monotonic() + seconds
    counter = iter(range(10**12))

    def writer() -> None:
        mine = []
        while time.monotonic() < stop:
            t = time.perf_counter()
            wal.write_sync(EVENT % next(counter))
            mine.append(time.perf_counter() - t)
        with lock:
            latencies.extend(mine)

    def rotator() -> None:
        while time.monotonic() < stop:
            time.sleep(1.0)
            wal.rotate()
            for seg in wal.closed_segments():  # what the loader does once a segment is in the store
                seg.unlink()

    threads = [threading.Thread(target=writer) for _ in range(writers)] + [threading.Thread(target=rotator)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    used = wal.spares_used
    wal.close()
    shutil.rmtree(directory, ignore_errors=True)
    latencies.sort()
    print(f"  {'preallocated' if preallocate else 'plain       '}: {len(latencies):7,} acks  "
          f"p50 {_ms(latencies, 0.5):6.2f} ms  p99 {_ms(latencies, 0.99):7.2f} ms  "
          f"max {latencies[-1] * 1e3:7.1f} ms  (segments from spares: {used})", flush=True)
    return latencies


def _ms(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--noise-mb", type=int, default=1500, help="size of each noise file; 0 = no noise")
    parser.add_argument("--noise-pause", type=float, default=0.0,
                        help="seconds the noise writer rests between files (0: it saturates the disk)")
    parser.add_argument("--dir", default=None, help="where the WAL goes (default: a temp dir on /tmp's disk)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="mm-walbench-", dir=args.dir))
    results: dict[bool, list[float]] = {True: [], False: []}
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; WAL in {base}; "
          f"noise: {f'{args.noise_mb} MB files written and synced, {args.noise_pause} s apart' if args.noise_mb else 'none'}")
    try:
        for r in range(args.rounds):
            print(f"round {r + 1}")
            for prealloc in (False, True):
                noise = _noise(base, args.noise_mb, args.noise_pause) if args.noise_mb else None
                try:
                    time.sleep(1.0 if noise else 0.0)  # let the writeback build up
                    lat = run_round(base / f"wal-{r}-{int(prealloc)}", prealloc, args.seconds, args.writers)
                finally:
                    if noise is not None:
                        os.killpg(noise.pid, 15)
                        noise.wait()
                        (base / "noise").unlink(missing_ok=True)
                results[prealloc].extend(lat)
                time.sleep(2.0)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    plain, pre = sorted(results[False]), sorted(results[True])
    print(f"all rounds: plain p99 {_ms(plain, 0.99):.2f} ms, max {plain[-1] * 1e3:.1f} ms; "
          f"preallocated p99 {_ms(pre, 0.99):.2f} ms, max {pre[-1] * 1e3:.1f} ms; "
          f"p99 ratio plain/preallocated {_ms(plain, 0.99) / max(_ms(pre, 0.99), 1e-9):.1f}x; "
          f"acks/s {len(plain) / (args.rounds * args.seconds):,.0f} vs {len(pre) / (args.rounds * args.seconds):,.0f}")


if __name__ == "__main__":
    main()
