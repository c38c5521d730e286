"""4. End-to-end lag: post created (PostService.create, which sends the fan-out job to SQS) to
visible in the follower timelines, through the AWS emulator's SQS queue and the fan-out
function's real handler (functions/fanout/app.py), delivered by infra/fanout_worker.py's loop
(one consumer, batches of 10, as the event source mapping would with concurrency 1).

Per post: `lag_all` = create() called -> the last follower's timeline written; `lag_first` ->
the first chunk written. `poll` = time spent inside ReceiveMessage on that post's path (the
emulator's own queue delay, reported separately); `lag_all_excl_poll` = lag_all - poll.
Separately: the emulator's send->receive delay for a single small message on an idle queue.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

from bench import e2e_parallel
from bench.stats import dist
from bench.stores import Stores, load_function, settings_env
from bench.workload import Graph
from feed_adapters.mongo.post_store import MongoPostStore
from feed_adapters.postgres.graph_store import PostgresGraphStore
from feed_wiring.root import build_services


def run(
    stores: Stores,
    graph: Graph,
    *,
    posts_per_tier: dict[int, int],
    queue_name: str,
    max_seconds: float,
    parallel_consumers: int = 4,
) -> dict[str, Any]:
    settings = stores.settings
    if not settings.aws_endpoint_url:
        return {"skipped": "AWS_ENDPOINT_URL is empty: no emulator"}
    from infra import fanout_worker, local_queues

    url, _dlq = local_queues.ensure_fanout_queues(settings, name=queue_name)
    sqs = local_queues.sqs_client(settings)
    sqs.purge_queue(QueueUrl=url)
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    env = {
        **settings_env(dataclasses.replace(settings, fanout_queue_url=url)),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformBench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    handler = load_function("fanout", env).handler
    services = build_services(
        dataclasses.replace(settings, fanout_queue_url=url),
        graph=PostgresGraphStore(stores.pool),
        posts=MongoPostStore(stores.db),
        redis_client=stores.redis,
    )

    # The emulator's own delay: one small message, send -> receive, idle queue.
    poll_alone = []
    for _ in range(20):
        t0 = time.perf_counter()
        sqs.send_message(QueueUrl=url, MessageBody='{"probe": 1}')
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
        poll_alone.append(time.perf_counter() - t0)
        for m in got.get("Messages", []):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

    deadline = time.monotonic() + max_seconds
    rows: list[dict[str, Any]] = []
    cut = False
    for tier, authors in graph.tier_authors.items():
        expected_jobs = 1 + (
            math.ceil(tier / settings.fanout_chunk_size) if tier > settings.fanout_chunk_size else 0
        )
        for k in range(posts_per_tier.get(tier, 0)):
            if time.monotonic() > deadline:
                cut = True
                break
            author = authors[k % len(authors)]
            uid = graph.uid(author)
            t0 = time.perf_counter()
            post = services.posts.create(uid, f"lag bench post {k} by {uid}")
            t_created = time.perf_counter() - t0
            handled, polls, t_first = 0, 0.0, None
            rounds = 0
            while handled < expected_jobs and rounds < 10 * expected_jobs + 20:
                rounds += 1
                tp = time.perf_counter()
                got = sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, AttributeNames=["All"]
                )
                polls += time.perf_counter() - tp
                messages = got.get("Messages", [])
                if not messages:
                    continue
                result = handler(
                    fanout_worker.to_sqs_event(messages, arn, "us-east-1"),
                    fanout_worker.LocalContext(),
                )
                failed = {f["itemIdentifier"] for f in (result or {}).get("batchItemFailures", [])}
                if failed:
                    raise AssertionError(f"fan-out jobs failed: {failed}")
                handled += len(messages)
                if t_first is None and (handled > 1 or expected_jobs == 1):
                    t_first = time.perf_counter() - t0
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(messages)
                    ],
                )
            lag = time.perf_counter() - t0
            # Outside the timing: every follower has it.
            followers = graph.follower[graph.followee == author].tolist()
            visible = stores.services.timelines.count_holding(
                [graph.uid(f) for f in followers], post.id
            )
            rows.append(
                {
                    "followers": tier,
                    "jobs": handled,
                    "create_s": t_created,
                    "lag_first_s": t_first,
                    "lag_all_s": lag,
                    "poll_s": polls,
                    "lag_all_excl_poll_s": lag - polls,
                    "visible_to": visible,
                }
            )
    by_tier: dict[str, Any] = {}
    for tier in graph.tier_authors:
        rs = [r for r in rows if r["followers"] == tier]
        if not rs:
            continue
        by_tier[str(tier)] = {
            "posts": len(rs),
            "all_followers_saw_every_post": all(r["visible_to"] == tier for r in rs),
            "jobs_per_post": rs[0]["jobs"],
            "lag_all": dist([r["lag_all_s"] for r in rs]),
            "lag_first": dist([r["lag_first_s"] for r in rs if r["lag_first_s"] is not None]),
            "poll": dist([r["poll_s"] for r in rs]),
            "lag_all_excl_poll": dist([r["lag_all_excl_poll_s"] for r in rs]),
            "create": dist([r["create_s"] for r in rs]),
        }
    sqs.purge_queue(QueueUrl=url)
    # As Lambda consumes: chunk jobs in parallel (e2e_parallel), without and with the template's
    # batching window (FanoutBatchingWindowSeconds, 1 s).
    tier_posts = [
        (tier, graph.uid(authors[0]), posts_per_tier.get(tier, 0))
        for tier, authors in graph.tier_authors.items()
    ]
    parallel = {}
    for label, window in (("no_window", 0.0), ("window_1s", 1.0)):
        parallel[label] = e2e_parallel.run(
            services,
            sqs,
            url,
            arn,
            env,
            tier_posts,
            chunk_size=settings.fanout_chunk_size,
            consumers=parallel_consumers,
            batch=10,
            window=window,
            max_seconds=max_seconds / 2,
        )
        sqs.purge_queue(QueueUrl=url)
    return {
        "what": "post create -> visible in every follower's timeline via SQS (emulator) and "
        "the fan-out handler; one consumer, batch 10 (parallel: several consumer processes)",
        "parallel_consumers": parallel,
        "queue": queue_name,
        "emulator_send_to_receive_idle": dist(poll_alone),
        "by_followers": by_tier,
        "cut_by_time_bound": cut,
        "target_p99_ms_9999_excl_poll": 150.0,  # issue 11
    }
