"""2. Home feed read latency, warm, in-process, real stores, first page of 20, per reader mix
(0/5/20 celebrities x 50/500 pushed authors), at two levels:

- domain: `HomeFeed.home_feed(reader, None, 20)` (services.feed);
- handler: the `feed` function's Lambda handler (functions/feed/app.py) with an API Gateway HTTP
  API event carrying a bearer JWT (auth check, profile lookup, FastAPI, Mangum, Powertools; tracing
  disabled, as there is no X-Ray daemon here).

Baselines, same run, same readers: pull-only reads that query every followed author's recent
posts on every read (no home timeline):
- `pull_redis`: the readers' graph from PostgreSQL, every followee's `ap:` list in ONE Redis
  pipeline, k-way merge, hydrate 20 from the post cache (the strongest pull-only design here);
- `pull_mongo`: the same with each followee's recent post ids from MongoDB (indexed per-author
  query), i.e. pulling from the database of record. FerretDB makes this slow; few reads.

Each reader is read once before timing (it builds the reader's timeline through the real
rebuild path and warms connections); readers are then read round-robin.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from bench.stats import dist, timed_calls
from bench.stores import Stores, load_function, settings_env
from bench.workload import Graph, subject_of
from infra import lambda_events, mint_token
from newsfeed.feed.merge import merge_newest_first, stream_from_fetch

LIMIT = 20


def _group_name(c: int, p: int) -> str:
    return f"{c}celeb_{p}pushed"


def pull_only_redis(stores: Stores, reader_uid: int) -> list[int]:
    graph = stores.graph.reader_graph(reader_uid, stores.settings.active_days)
    assert graph is not None
    timelines = stores.services.timelines
    authors = sorted(graph.visible_authors())
    fetch = LIMIT + 10
    _, lists = timelines.read_candidates(None, authors, None, fetch)
    merged = merge_newest_first(stream_from_fetch(r.ids, fetch, r.horizon) for r in lists.values())
    ids = merged.ids[:LIMIT]
    posts = timelines.cached_posts(ids)
    return [p for p in ids if p in posts]


def pull_only_mongo(stores: Stores, reader_uid: int) -> list[int]:
    graph = stores.graph.reader_graph(reader_uid, stores.settings.active_days)
    assert graph is not None
    posts_store = stores.posts
    fetch = LIMIT + 10
    streams = [
        stream_from_fetch(posts_store.author_post_ids(a, None, fetch), fetch, 0)
        for a in sorted(graph.visible_authors())
    ]
    ids = merge_newest_first(streams).ids[:LIMIT]
    posts = stores.services.timelines.cached_posts(ids)
    return [p for p in ids if p in posts]


def load_feed_handler(stores: Stores, key_dir: Path) -> tuple[Any, Any, Any]:
    """functions/feed/app.py as Lambda loads it, with the bench settings as its environment."""
    pair = mint_token.ensure_keypair(key_dir)
    env = {
        **settings_env(stores.settings),
        "JWT_PUBLIC_KEY_FILE": str(pair.public_pem),
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "FeedPlatformBench",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
    module = load_function("feed", env)
    token = lambda uid: mint_token.mint_token(  # noqa: E731
        subject_of(uid), settings=module.settings, pair=pair, ttl_seconds=7200
    )
    return module, lambda_events, token


def run(
    stores: Stores,
    graph: Graph,
    *,
    reads_per_group: int,
    baseline_reads: int,
    mongo_baseline_reads: int,
    max_seconds: float,
    key_dir: Path,
) -> dict[str, Any]:
    feed = stores.services.feed
    handler_mod, events, token_for = load_feed_handler(stores, key_dir)
    ctx = events.LambdaContext("feed")
    groups: dict[str, Any] = {}
    raw: dict[str, list[float]] = {}
    for (c, p), readers in graph.readers.items():
        uids = [graph.uid(r) for r in readers]
        tokens = {u: token_for(u) for u in uids}
        # Warm-up: builds each reader's timeline (the read path's rebuild), warms the handler.
        t_build = []
        for u in uids:
            t0 = time.perf_counter()
            first = feed.home_feed(u, None, LIMIT)
            t_build.append(time.perf_counter() - t0)
            assert len(first.items) == LIMIT and not first.partial, (u, len(first.items))
            resp = handler_mod.handler(
                events.http_event("GET", "/v1/feed", token=tokens[u], query={"limit": LIMIT}), ctx
            )
            assert resp["statusCode"] == 200, resp
            assert len(json.loads(resp["body"])["items"]) == LIMIT

        def domain(i: int, uids: list[int] = uids) -> None:
            feed.home_feed(uids[i % len(uids)], None, LIMIT)

        def handler(i: int, uids: list[int] = uids, tokens: dict = tokens) -> None:
            u = uids[i % len(uids)]
            ev = events.http_event("GET", "/v1/feed", token=tokens[u], query={"limit": LIMIT})
            resp = handler_mod.handler(ev, ctx)
            if resp["statusCode"] != 200:
                raise AssertionError(resp)

        def pull_redis(i: int, uids: list[int] = uids) -> None:
            pull_only_redis(stores, uids[i % len(uids)])

        def pull_mongo(i: int, uids: list[int] = uids) -> None:
            pull_only_mongo(stores, uids[i % len(uids)])

        name = _group_name(c, p)
        row: dict[str, Any] = {
            "celebrities": c,
            "pushed_authors": p,
            "readers": len(uids),
            "first_read_with_rebuild": dist(t_build),
        }
        for label, fn, count in (
            ("domain", domain, reads_per_group),
            ("handler", handler, reads_per_group),
            ("pull_redis", pull_redis, baseline_reads),
            # FerretDB scans for these queries (~0.1 s per author): 50-author readers only.
            ("pull_mongo", pull_mongo, mongo_baseline_reads if p <= 50 else 0),
        ):
            samples, cut = timed_calls(fn, count, max_seconds)
            row[label] = {**dist(samples), "cut_by_time_bound": cut}
            raw[f"{name}/{label}"] = samples
        row["speedup_p50_vs_pull_redis"] = round(
            row["pull_redis"]["p50_ms"] / row["domain"]["p50_ms"], 2
        )
        if row["pull_mongo"]["n"]:
            row["speedup_p50_vs_pull_mongo"] = round(
                row["pull_mongo"]["p50_ms"] / row["domain"]["p50_ms"], 2
            )
        groups[name] = row
    return {
        "what": "GET first page (limit 20), warm, in-process; domain = FeedService.home_feed, "
        "handler = functions/feed/app.handler with an HTTP API v2 event and a bearer JWT",
        "limit": LIMIT,
        "groups": groups,
        "targets": {
            "p99_ms_pushed_only": 5.0,
            "p99_ms_20_celebrities": 15.0,
            "speedup_vs_pull_for_500_authors": 10.0,
        },
        "_samples_s": raw,  # for the plots; dropped from the saved JSON
    }
