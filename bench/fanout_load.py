"""Fan-out at full speed in a process of its own, for the read variant "reads while fan-out
writes": one worker posting as the given authors in turn and running every fan-out job at once,
as fast as it can, until told to stop. It reports the posts it fanned out, the timelines it
wrote and for how long, so the read numbers can be given beside the write load they met.

A separate process (spawned, with its own connections), as the fan-out Lambda is: in-process it
would share the reader's interpreter lock, and measure that instead.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from feed_wiring.settings import Settings
from newsfeed.telemetry import FANOUT_TIMELINES_WRITTEN, Metric


class _WrittenCounter:
    """Telemetry that keeps one figure: timelines written by push jobs."""

    def __init__(self) -> None:
        self.written = 0.0

    def count(self, metric: Metric, value: float = 1, **labels: str) -> None:
        pass

    def set(self, metric: Metric, value: float, **labels: str) -> None:
        pass

    def observe(self, metric: Metric, value: float, **labels: str) -> None:
        if metric is FANOUT_TIMELINES_WRITTEN and labels.get("kind") == "push":
            self.written += value


def _work(env: dict[str, str], author_ids: Sequence[int], stop: Any, report: Any) -> None:
    from bench.stores import connect

    counter = _WrittenCounter()
    stores = connect(Settings.from_env(env), counter)
    posts, fanout = stores.services.posts, stores.services.fanout

    def fan_out_one(n: int) -> None:
        posts.create(author_ids[n % len(author_ids)], f"fan-out load post {n}")
        jobs = stores.queue.drain()
        while jobs:
            for job in jobs:
                fanout.handle_message(job)
            jobs = stores.queue.drain()

    fan_out_one(0)  # imports, connections and scripts warm before the clock starts
    counter.written = 0
    report.put(("ready", None))
    n, t0 = 1, time.perf_counter()
    while not stop.is_set():
        fan_out_one(n)
        n += 1
    seconds = time.perf_counter() - t0
    report.put(
        (
            "done",
            {
                "posts": n - 1,
                "seconds": round(seconds, 3),
                "timelines_written": int(counter.written),
                "inserts_per_s": round(counter.written / seconds) if seconds else None,
            },
        )
    )
    stores.close()


@contextmanager
def fanout_running(settings_env: dict[str, str], author_ids: Sequence[int]) -> Iterator[dict]:
    """Run fan-out load while the block runs; the dict it yields gets the load's figures when
    the block ends (posts fanned out, timelines written, seconds, inserts/s)."""
    ctx = multiprocessing.get_context("spawn")
    stop, report = ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=_work, args=(settings_env, list(author_ids), stop, report))
    proc.start()
    figures: dict[str, Any] = {}
    try:
        kind, _ = report.get(timeout=120)
        assert kind == "ready"
        yield figures
    finally:
        stop.set()
        try:
            kind, done = report.get(timeout=120)
            figures.update(done)
        finally:
            proc.join(timeout=60)
            if proc.is_alive():
                proc.kill()
