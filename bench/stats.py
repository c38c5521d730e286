"""Small helpers shared by the measurements: percentiles, bounded loops, redis-benchmark."""

from __future__ import annotations

import csv
import io
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def dist(samples_s: Sequence[float]) -> dict[str, Any]:
    """Milliseconds: n, p50, p90, p99, max, mean."""
    if not samples_s:
        return {"n": 0}
    ms = np.asarray(samples_s) * 1000.0
    return {
        "n": len(ms),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
        "mean_ms": round(float(ms.mean()), 3),
    }


def timed_calls(
    call: Callable[[int], Any], count: int, max_seconds: float
) -> tuple[list[float], bool]:
    """Run call(i) up to `count` times or until `max_seconds` pass; returns per-call seconds and
    whether the time bound cut the loop short."""
    return timed_after_setup(lambda i: None, call, count, max_seconds)


def timed_after_setup(
    setup: Callable[[int], Any], call: Callable[[int], Any], count: int, max_seconds: float
) -> tuple[list[float], bool]:
    """As timed_calls, with an untimed setup(i) before each timed call(i)."""
    out: list[float] = []
    deadline = time.monotonic() + max_seconds
    for i in range(count):
        setup(i)
        t0 = time.perf_counter()
        call(i)
        out.append(time.perf_counter() - t0)
        if time.monotonic() > deadline:
            return out, len(out) < count
    return out, False


def redis_benchmark(
    test: str, host: str, port: int, db: int, *, requests: int, pipeline: int, clients: int
) -> dict[str, Any]:
    """`redis-benchmark -t <test>` against the same server (its own key, in the bench database:
    `myzset` for zadd, `mylist` for lpush; the caller deletes it)."""
    exe = shutil.which("redis-benchmark")
    if exe is None:
        return {"error": "redis-benchmark not installed"}
    cmd = [
        exe,
        "-h",
        host,
        "-p",
        str(port),
        "--dbnum",
        str(db),
        "-t",
        test,
        "-n",
        str(requests),
        "-P",
        str(pipeline),
        "-c",
        str(clients),
        "-r",
        "100000",
        "-q",
        "--csv",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    row = next(r for r in rows if r["test"].upper().startswith(test.upper()))
    return {
        "command": " ".join(cmd[1:]),
        "ops_per_s": float(row["rps"]),
        "p50_latency_ms": float(row["p50_latency_ms"]),
    }


def redis_benchmark_zadd(
    host: str, port: int, db: int, *, requests: int, pipeline: int, clients: int
) -> dict[str, Any]:
    """ZADD of random members into one growing sorted set (`myzset`)."""
    return redis_benchmark(
        "zadd", host, port, db, requests=requests, pipeline=pipeline, clients=clients
    )


def redis_benchmark_lpush(
    host: str, port: int, db: int, *, requests: int, pipeline: int, clients: int
) -> dict[str, Any]:
    """LPUSH into one list (`mylist`): the command home timelines (LISTs of ids) are written by."""
    return redis_benchmark(
        "lpush", host, port, db, requests=requests, pipeline=pipeline, clients=clients
    )
