"""Fan-out writes on single Redis beside a Redis Cluster, in one run: the timeline store's push
(the Redis half of a fan-out job; the follower pages from PostgreSQL are left out) of one post
at a time into FOLLOWERS ready timelines, each filled to a length between the cap and the
lazy-trim threshold (the steady state). Cluster mode also with REDIS_WAIT_REPLICAS=1 (every
node's writes wait for its replica).

    .venv/bin/python -m bench.fanout_topology [--followers N] [--posts N]

Needs `TOPOLOGY=scaled make up` (the single Redis and the cluster). Uses Redis database 14 of
the single Redis (the full bench's) and the cluster's database 0: both are flushed.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path
from typing import Any

from feed_adapters.redis.client import make_redis
from feed_adapters.redis.timeline_store import RedisTimelineStore
from feed_wiring.settings import Settings
from infra import devstack

BASE = 10**17
MAX_LEN = 800
OUT = Path(__file__).resolve().parent / "results" / "fanout-topology-latest.json"


def measure(client: Any, followers: int, posts: int, wait_replicas: int = 0) -> dict[str, Any]:
    client.flushdb()
    store = RedisTimelineStore(
        client, max_len=MAX_LEN, post_ttl_seconds=60, wait_replicas=wait_replicas
    )
    rng = random.Random(3)
    users = list(range(1, followers + 1))
    lengths = list(range(store.trim_at, MAX_LEN - 1, -1))
    contents = [[BASE + i for i in range(n)] for n in lengths]
    store.seed_timelines(users, contents)
    rng.shuffle(users)
    seconds = []
    for n in range(posts):
        t0 = time.perf_counter()
        written = store.push(users, [BASE + 10_000 + n])
        seconds.append(time.perf_counter() - t0)
        assert written == followers
    per_post = statistics.median(seconds)
    return {
        "followers": followers,
        "posts": posts,
        "wait_replicas": wait_replicas,
        "seconds_per_post_p50": round(per_post, 4),
        "inserts_per_s_p50": round(followers / per_post),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--followers", type=int, default=9_999)
    parser.add_argument("--posts", type=int, default=20)
    args = parser.parse_args()
    settings = Settings.from_env({})
    single = make_redis(settings.redis_host, settings.redis_port, 14, timeout_ms=5000)
    first = devstack.cluster_ports_from_env()[0]
    cluster = make_redis("127.0.0.1", first, 0, timeout_ms=5000, cluster=True)
    result = {
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "single": measure(single, args.followers, args.posts),
        "cluster": measure(cluster, args.followers, args.posts),
        "cluster_wait_1_replica": measure(cluster, args.followers, args.posts, wait_replicas=1),
    }
    single.flushdb()
    cluster.flushdb()
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
