"""4b. End-to-end lag with the fan-out queue consumed in parallel, as Lambda's event source
mapping does: `consumers` processes (each its own cold-started `functions/fanout/app.py`, as
separate Lambda instances are), each polling batches of up to `batch` messages; with a
`window`, a consumer keeps polling until its batch is full or `window` seconds passed since its
first message (the template's MaximumBatchingWindowInSeconds, FanoutBatchingWindowSeconds).

Per post: lag = create() called -> the last of its jobs (head and chunks) finished, from the
consumers' own wall-clock reports (one machine, one clock).
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import queue as queue_mod
import sys
import time
from typing import Any

from bench.stats import dist

MAX_WAIT_PER_POST_S = 60.0


def consume(
    env: dict[str, str],
    url: str,
    arn: str,
    batch: int,
    window: float,
    reports: Any,
    stop: Any,
) -> None:
    """One consumer process: receive, run the handler, delete, report (post id, finished at)."""
    os.environ.update(env)
    # The handler's EMF documents: not into the bench's log.
    sys.stdout = open(os.devnull, "w")  # noqa: SIM115
    from feed_wiring.settings import Settings
    from functions import load_app
    from infra import fanout_worker, local_queues

    handler = load_app("fanout").handler
    sqs = local_queues.sqs_client(Settings.from_env(os.environ))
    reports.put(("ready", os.getpid(), time.time()))
    while not stop.is_set():
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch, WaitTimeSeconds=1)
        messages = got.get("Messages", [])
        started = time.monotonic()
        while messages and len(messages) < batch and time.monotonic() - started < window:
            more = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=batch - len(messages),
                WaitTimeSeconds=max(0, min(1, int(window))),
            )
            messages += more.get("Messages", [])
        if not messages:
            continue
        result = handler(
            fanout_worker.to_sqs_event(messages, arn, "us-east-1"), fanout_worker.LocalContext()
        )
        failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)
                ],
            )
        finished = time.time()
        for m in done:
            reports.put(("job", int(json.loads(m["Body"])["post_id"]), finished))
        if failed:
            reports.put(("failed", len(failed), finished))


def run(
    services: Any,
    sqs: Any,
    url: str,
    arn: str,
    env: dict[str, str],
    tier_posts: list[tuple[int, int, int]],
    *,
    chunk_size: int,
    consumers: int,
    batch: int,
    window: float,
    max_seconds: float,
) -> dict[str, Any]:
    """`tier_posts`: (followers, author uid, posts). Returns the lag distribution per tier."""
    ctx = mp.get_context("spawn")  # a fresh interpreter per consumer: no inherited sockets
    reports, stop = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(target=consume, args=(env, url, arn, batch, window, reports, stop))
        for _ in range(consumers)
    ]
    for p in procs:
        p.start()
    try:
        ready = 0
        while ready < consumers:
            kind, *_ = reports.get(timeout=120)
            ready += kind == "ready"
        deadline = time.monotonic() + max_seconds
        lags: dict[int, list[float]] = {}
        cut = False
        for followers, author, posts in tier_posts:
            jobs = 1 + (math.ceil(followers / chunk_size) if followers > chunk_size else 0)
            for k in range(posts):
                if time.monotonic() > deadline:
                    cut = True
                    break
                t0 = time.time()
                post = services.posts.create(author, f"parallel lag post {k} by {author}")
                seen, last = 0, t0
                wait_until = time.monotonic() + MAX_WAIT_PER_POST_S
                while seen < jobs:
                    try:
                        kind, value, at = reports.get(
                            timeout=max(0.1, wait_until - time.monotonic())
                        )
                    except queue_mod.Empty:
                        raise AssertionError(f"post {post.id}: {seen} of {jobs} jobs") from None
                    if kind == "failed":
                        raise AssertionError(f"{value} fan-out jobs failed")
                    if kind == "job" and value == post.id:
                        seen += 1
                        last = max(last, at)
                lags.setdefault(followers, []).append(last - t0)
    finally:
        stop.set()
        for p in procs:
            p.join(timeout=15)
            if p.is_alive():
                p.terminate()
    return {
        "consumers": consumers,
        "batch": batch,
        "batching_window_s": window,
        "by_followers": {str(f): {"posts": len(v), "lag_all": dist(v)} for f, v in lags.items()},
        "cut_by_time_bound": cut,
    }
