"""1. Fan-out throughput of ONE worker: timeline inserts per second through FanoutService.handle
(head job, then its chunk jobs, in this process, on the real PostgreSQL and Redis), against
`redis-benchmark` ZADD and LPUSH (the command home timelines are written by) with pipelining on
the same Redis server, in the same run.

Every follower of a benchmark author is active. Before each measured post (outside the timing)
the followers' timelines are refilled, through the timeline store, to the lazy-trim threshold
(TIMELINE_MAX_LEN + trim slack, `RedisTimelineStore.trim_at`) with older posts, so every
measured insert pushes its timeline past it and runs the trim back to the cap: the worst case
of the write path (in steady state one insert in slack + 1 trims). Afterwards (untimed) the
timelines' lengths say how many inserts trimmed; the JSON records it per tier.
"""

from __future__ import annotations

import random
import time
from typing import Any

from bench.stats import redis_benchmark_lpush, redis_benchmark_zadd
from bench.stores import Stores
from bench.workload import Graph, post_id_at

FILL_TEMPLATES = 20  # distinct refill contents (the rest are copies: see seed_timelines)


def _evalsha_stats(client: Any) -> tuple[int, int]:
    """(calls, usec) of EVALSHA since the server started (server-wide: quiet servers only)."""
    stats = client.info("commandstats").get("cmdstat_evalsha", {})
    return int(stats.get("calls", 0)), int(stats.get("usec", 0))


def server_side(calls: int, usec: int, inserts: int) -> dict[str, Any]:
    """Redis CPU of the fan-out writes from the EVALSHA delta over the fan-out jobs. One call
    writes up to PUSH_BATCH timelines (the batch script), so per call and per insert differ by
    that factor: the bound on this write path is inserts per second of server time."""
    return {
        "evalsha_calls": calls,
        "evalsha_usec": usec,
        "usec_per_call": round(usec / calls, 2) if calls else None,
        "inserts": inserts,
        "inserts_per_call": round(inserts / calls, 1) if calls else None,
        "usec_per_insert": round(usec / inserts, 2) if inserts else None,
        # The most inserts/s one Redis core could take on this path (client cost excluded).
        "inserts_per_s_of_server_time": round(1e6 * inserts / usec) if usec else None,
    }


def _fills(kind: str, max_len: int, trim_at: int, pool: list[int], rng: random.Random) -> list:
    """Timeline contents to refill followers with before a measured post. `worst`: all at the
    trim threshold, so every insert trims. `steady`: one content per length from max_len to
    trim_at (followers cycle through them, the longest first: even a handful of followers
    has one that trims), the lengths lazily trimmed timelines have, so inserts trim at their
    natural rate, one in (slack + 1)."""
    if kind == "worst":
        return [rng.sample(pool, trim_at) for _ in range(FILL_TEMPLATES)]
    return [rng.sample(pool, n) for n in range(trim_at, max_len - 1, -1)]


def _measure(stores: Stores, graph: Graph, posts_per_author: int, fill: str) -> dict[str, Any]:
    posts_svc, fanout = stores.services.posts, stores.services.fanout
    timelines = stores.services.timelines
    rng = random.Random(graph.spec.seed + 3)
    old_ms = int(time.time() * 1000) - 3_600_000
    pool = [
        post_id_at(old_ms - rng.randrange(7 * 86_400_000), i) for i in range(5 * timelines.trim_at)
    ]
    server_calls = server_usec = 0
    per_post: list[dict[str, Any]] = []
    for tier, authors in graph.tier_authors.items():
        for author in authors:
            uid = graph.uid(author)
            followers = [graph.uid(f) for f in graph.follower[graph.followee == author].tolist()]
            for k in range(posts_per_author):
                # Untimed: every follower's timeline refilled (older posts only).
                contents = _fills(fill, timelines.max_len, timelines.trim_at, pool, rng)
                timelines.seed_timelines(followers, contents)
                post = posts_svc.create(uid, f"fan-out bench post {k} ({fill}) by {uid}")
                head = stores.queue.drain()
                assert len(head) == 1 and head[0]["kind"] == "fanout", head
                jobs = 0
                # EVALSHA over the jobs alone: create() above runs scripts of its own.
                before = _evalsha_stats(stores.redis)
                t0 = time.perf_counter()
                fanout.handle_message(head[0])
                jobs += 1
                head_s = time.perf_counter() - t0
                while stores.queue.jobs:  # chunk jobs, run by the same single worker
                    for job in stores.queue.drain():
                        fanout.handle_message(job)
                        jobs += 1
                elapsed = time.perf_counter() - t0
                after = _evalsha_stats(stores.redis)
                server_calls += after[0] - before[0]
                server_usec += after[1] - before[1]
                # Outside the timing: the timelines that got it, and those it trimmed (a
                # timeline that got one more post is back at max_len only if it trimmed).
                inserts = timelines.count_holding(followers, post.id)
                lengths = timelines.timeline_lengths(followers)
                trimmed = sum(1 for n in lengths if n == timelines.max_len)
                per_post.append(
                    {
                        "followers": tier,
                        "inserts": inserts,
                        "inserts_that_trimmed": trimmed,
                        "jobs": jobs,
                        "seconds": round(elapsed, 5),
                        "head_job_seconds": round(head_s, 5),
                        "inserts_per_s": round(inserts / elapsed),
                    }
                )
    by_tier: dict[str, Any] = {}
    for tier in graph.tier_authors:
        rows = [r for r in per_post if r["followers"] == tier]
        ins = sum(r["inserts"] for r in rows)
        secs = sum(r["seconds"] for r in rows)
        by_tier[str(tier)] = {
            "posts": len(rows),
            "inserts": ins,
            "seconds": round(secs, 4),
            "inserts_per_s": round(ins / secs),
            "all_followers_written": all(r["inserts"] == tier for r in rows),
            "inserts_that_trimmed": sum(r["inserts_that_trimmed"] for r in rows),
            "every_insert_trimmed": all(r["inserts_that_trimmed"] == tier for r in rows),
        }
        chunked = [r for r in rows if r["jobs"] > 1]
        if chunked:  # the chunk jobs alone: the per-follower write path without the head job
            ins = sum(r["inserts"] for r in chunked)
            secs = sum(r["seconds"] - r["head_job_seconds"] for r in chunked)
            by_tier[str(tier)]["chunk_jobs_only_inserts_per_s"] = round(ins / secs)
    top = by_tier[str(max(graph.tier_authors))]
    return {
        "fill": fill,
        "by_followers": by_tier,
        "headline_inserts_per_s": top["inserts_per_s"],
        "server_side": server_side(server_calls, server_usec, sum(r["inserts"] for r in per_post)),
        "per_post": per_post,
    }


def run(stores: Stores, graph: Graph, posts_per_author: int, ref_requests: int) -> dict[str, Any]:
    s = stores.settings
    refs = {
        "zadd_P32_c50": redis_benchmark_zadd(
            s.redis_host, s.redis_port, s.redis_db, requests=ref_requests, pipeline=32, clients=50
        ),
        "zadd_P32_c1": redis_benchmark_zadd(
            s.redis_host, s.redis_port, s.redis_db, requests=ref_requests, pipeline=32, clients=1
        ),
        # Home timelines are LISTs of ids written by LPUSH: the reference of the command used.
        "lpush_P32_c50": redis_benchmark_lpush(
            s.redis_host, s.redis_port, s.redis_db, requests=ref_requests, pipeline=32, clients=50
        ),
    }
    stores.redis.delete("myzset", "mylist")  # redis-benchmark's keys
    steady = _measure(stores, graph, posts_per_author, "steady")
    worst = _measure(stores, graph, posts_per_author, "worst")
    by_tier, per_post = steady["by_followers"], steady.pop("per_post")
    top = by_tier[str(max(graph.tier_authors))]
    timelines = stores.services.timelines
    lpush = refs["lpush_P32_c50"].get("ops_per_s")
    ref = refs["zadd_P32_c50"].get("ops_per_s")

    def ratio(rate: float | None, to: float | None) -> float | None:
        return round(rate / to, 3) if rate and to else None

    worst_top = worst["by_followers"][str(max(graph.tier_authors))]
    server_what = (
        "INFO commandstats delta of EVALSHA over the fan-out jobs of every measured post (the "
        "batch push script, one call per up to 250 timelines: LPUSH, lazy trim, horizon), "
        "server CPU time only; per insert = over the measured posts' inserts"
    )
    return {
        "what": "timeline inserts/s, one worker, FanoutService.handle in-process (head + chunk "
        "jobs), followers all active. Headline (steady): before each post the followers' "
        "timelines are refilled to the lengths lazily trimmed timelines have (every length from "
        "max_len to trim_at, in turn), so inserts trim at their natural rate; worst_case: all at "
        "the trim threshold, so every insert trims (see inserts_that_trimmed)",
        "chunk_size": stores.settings.fanout_chunk_size,
        "timeline_max_len": timelines.max_len,
        "timeline_trim_at": timelines.trim_at,
        "timelines_filled_to": f"{timelines.max_len}..{timelines.trim_at}",
        "by_followers": by_tier,
        "headline_inserts_per_s": top["inserts_per_s"],
        "reference": refs,
        "ratio_vs_lpush_P32_c50": ratio(top["inserts_per_s"], lpush),
        "ratio_vs_zadd_P32_c50": ratio(top["inserts_per_s"], ref),
        "ratio_chunk_jobs_only_vs_lpush_P32_c50": ratio(
            top.get("chunk_jobs_only_inserts_per_s"), lpush
        ),
        "ratio_vs_zadd_P32_c1": ratio(top["inserts_per_s"], refs["zadd_P32_c1"].get("ops_per_s")),
        "target_ratio": 0.5,
        "server_side": {"what": server_what, **steady["server_side"]},
        "worst_case": {
            "timelines_filled_to": timelines.trim_at,
            "by_followers": worst["by_followers"],
            "headline_inserts_per_s": worst["headline_inserts_per_s"],
            "ratio_vs_lpush_P32_c50": ratio(worst["headline_inserts_per_s"], lpush),
            "ratio_vs_zadd_P32_c50": ratio(worst["headline_inserts_per_s"], ref),
            "chunk_jobs_only_inserts_per_s": worst_top.get("chunk_jobs_only_inserts_per_s"),
            "server_side": {"what": server_what, **worst["server_side"]},
        },
        "per_post": per_post,
    }
