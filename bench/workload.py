"""Seeded synthetic social graph and the bulk loaders that put it into the bench stores.

The graph (all of it decided by `seed`):
- `users` accounts with snowflake-sized ids. Roles by position: celebrities (follower count at
  or above the celebrity threshold, so `pull` mode), benchmark authors with an exact follower
  count per tier (100 / 1,000 / 9,999 in the full run), readers with an exact followee mix
  (0, 5 or 20 celebrities and 50 or 500 pushed authors), everyone else "generic".
- Generic follower counts follow a Pareto (power-law) distribution, capped below the celebrity
  threshold; followers are drawn uniformly from the generic users, so out-degrees are roughly
  Poisson. Readers and benchmark authors get only their exact edges.
- Active users (last seen now) and inactive ones (last seen 30 days ago; fan-out skips them).
- A posting mix: a pool of active authors with recent posts (pushed authors of the readers),
  celebrities with more posts; every active user has a home timeline capped at
  TIMELINE_MAX_LEN (the reading side); readers' timelines are built by their first read.

Loading uses each store's fast path: PostgreSQL COPY (foreign-key triggers off for the load,
the secondary index rebuilt after), Redis through the timeline store (its bulk load for the
home timelines), MongoDB insert_many. FerretDB, the local
MongoDB, stores about 10-30k documents a second at best, which is why the post volume is
sized to what the reads need rather than to the whole graph.
"""

from __future__ import annotations

import io
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from feed_adapters.mongo.documents import post_doc
from feed_adapters.redis.timeline_store import RedisTimelineStore
from newsfeed.ids import EPOCH_MS, TIME_SHIFT
from newsfeed.model import Post

USER_ID_BASE = 100_000_000_000_000_000  # 18 digits, like a 2025-era snowflake
INACTIVE_DAYS_AGO = 30


@dataclass(frozen=True)
class WorkloadSpec:
    users: int = 100_000
    seed: int = 42
    celebrities: int = 40
    # Follower counts of the celebrities: uniform in [threshold * lo, threshold * hi].
    celebrity_factor: tuple[float, float] = (1.3, 4.0)
    # Benchmark authors: follower-count tiers and authors per tier (followers all active).
    author_tiers: tuple[int, ...] = (100, 1_000, 9_999)
    authors_per_tier: int = 3
    # Readers: celebrities followed x pushed authors followed, `readers_per_group` each.
    reader_celebs: tuple[int, ...] = (0, 5, 20)
    reader_pushed: tuple[int, ...] = (50, 500)
    readers_per_group: int = 10
    # Generic in-degree: Pareto with this shape, scaled to `mean_followers`, capped below the
    # celebrity threshold.
    pareto_shape: float = 1.2
    mean_followers: float = 30.0
    active_fraction: float = 0.7
    # Posting: `poster_pool` active generic authors with `posts_per_poster` recent posts;
    # celebrities with `posts_per_celebrity`; over the last `post_days` days.
    poster_pool: int = 2_000
    posts_per_poster: int = 15
    posts_per_celebrity: int = 60
    post_days: int = 3
    # Home timelines of active users: this many entries each (capped lists are TIMELINE_MAX_LEN).
    timeline_fill: int = 800
    # Synthetic id pool the generic timelines draw their entries from.
    timeline_id_pool: int = 50_000


@dataclass
class Graph:
    spec: WorkloadSpec
    threshold: int
    user_ids: np.ndarray  # int64, index -> id
    active: np.ndarray  # bool
    follower: np.ndarray  # int64 indexes, one per edge
    followee: np.ndarray
    celebrities: list[int]  # indexes
    tier_authors: dict[int, list[int]]  # tier -> indexes
    readers: dict[tuple[int, int], list[int]]  # (celebs, pushed) -> indexes
    posters: list[int]  # indexes
    follower_count: np.ndarray = field(default=None)  # type: ignore[assignment]
    following_count: np.ndarray = field(default=None)  # type: ignore[assignment]

    def uid(self, index: int) -> int:
        return int(self.user_ids[index])

    @property
    def edges(self) -> int:
        return len(self.follower)


def _sample_distinct(rng: np.random.Generator, pool: np.ndarray, k: int) -> np.ndarray:
    if k >= len(pool):
        raise ValueError(f"cannot pick {k} distinct users out of {len(pool)}")
    picked = np.unique(pool[rng.integers(0, len(pool), size=int(k * 1.3) + 16)])
    while len(picked) < k:
        more = pool[rng.integers(0, len(pool), size=k)]
        picked = np.unique(np.concatenate([picked, more]))
    return rng.permutation(picked)[:k]


def generate(spec: WorkloadSpec, threshold: int) -> Graph:
    """The whole graph as arrays; deterministic for a given spec and threshold."""
    rng = np.random.default_rng(spec.seed)
    n = spec.users
    n_celeb = spec.celebrities
    n_tier = len(spec.author_tiers) * spec.authors_per_tier
    groups = [(c, p) for c in spec.reader_celebs for p in spec.reader_pushed]
    n_readers = len(groups) * spec.readers_per_group
    first_generic = n_celeb + n_tier + n_readers
    generic = np.arange(first_generic, n, dtype=np.int64)
    if len(generic) < max(spec.author_tiers) * 2 or len(generic) < spec.poster_pool * 2:
        raise ValueError("too few users for these tiers and pools")
    user_ids = USER_ID_BASE + np.arange(n, dtype=np.int64) * 4096

    active = np.ones(n, dtype=bool)
    active[generic] = rng.random(len(generic)) < spec.active_fraction
    active_generic = generic[active[generic]]

    # Generic followees: power-law in-degree, followers uniform over generic users.
    raw = rng.pareto(spec.pareto_shape, size=len(generic)) + 1.0
    counts = raw * (spec.mean_followers / raw.mean())
    counts = np.minimum(counts, threshold * 0.9).astype(np.int64)
    counts = np.minimum(counts, len(generic) - 1)
    followee = np.repeat(generic, counts)
    follower = generic[rng.integers(0, len(generic), size=len(followee))]

    # Celebrities: above the threshold, followers uniform over generic users.
    lo, hi = spec.celebrity_factor
    celeb_counts = rng.integers(int(threshold * lo), int(threshold * hi) + 1, size=n_celeb)
    celeb_counts = np.minimum(celeb_counts, len(generic) - 1)
    celebs = np.arange(n_celeb, dtype=np.int64)
    c_followee = np.repeat(celebs, celeb_counts)
    c_follower = generic[rng.integers(0, len(generic), size=len(c_followee))]

    follower = np.concatenate([follower, c_follower])
    followee = np.concatenate([followee, c_followee])
    keep = follower != followee
    key = np.unique(follower[keep] * n + followee[keep])  # dedupe
    follower, followee = key // n, key % n

    # Benchmark authors: exact counts of ACTIVE generic followers (fan-out writes them all).
    tier_authors: dict[int, list[int]] = {}
    parts_f, parts_e = [follower], [followee]
    idx = n_celeb
    for tier in spec.author_tiers:
        tier_authors[tier] = []
        for _ in range(spec.authors_per_tier):
            chosen = _sample_distinct(rng, active_generic, tier)
            parts_f.append(chosen)
            parts_e.append(np.full(tier, idx, dtype=np.int64))
            tier_authors[tier].append(idx)
            idx += 1

    # Posters: active generic authors below the threshold (push mode), with recent posts.
    generic_in = np.bincount(followee, minlength=n)[active_generic]
    eligible = active_generic[generic_in < threshold]
    posters = sorted(rng.choice(eligible, size=spec.poster_pool, replace=False).tolist())

    # Readers: exactly c celebrities and p pushed posters, nothing else.
    readers: dict[tuple[int, int], list[int]] = {}
    poster_arr = np.array(posters, dtype=np.int64)
    for c, p in groups:
        readers[(c, p)] = []
        for _ in range(spec.readers_per_group):
            followees = np.concatenate(
                [
                    _sample_distinct(rng, celebs, c) if c else np.empty(0, np.int64),
                    _sample_distinct(rng, poster_arr, p),
                ]
            )
            parts_f.append(np.full(len(followees), idx, dtype=np.int64))
            parts_e.append(followees.astype(np.int64))
            readers[(c, p)].append(idx)
            idx += 1
    assert idx == first_generic

    follower = np.concatenate(parts_f)
    followee = np.concatenate(parts_e)
    order = np.lexsort((followee, follower))  # primary-key order for the COPY
    graph = Graph(
        spec=spec,
        threshold=threshold,
        user_ids=user_ids,
        active=active,
        follower=follower[order],
        followee=followee[order],
        celebrities=celebs.tolist(),
        tier_authors=tier_authors,
        readers=readers,
        posters=posters,
    )
    graph.follower_count = np.bincount(graph.followee, minlength=n)
    graph.following_count = np.bincount(graph.follower, minlength=n)
    if int(graph.follower_count[graph.celebrities].min()) < threshold:
        raise ValueError("a celebrity ended up below the threshold; raise celebrity_factor")
    return graph


def summary(graph: Graph) -> dict[str, Any]:
    fc = graph.follower_count
    return {
        "users": len(graph.user_ids),
        "follow_edges": int(graph.edges),
        "active_users": int(graph.active.sum()),
        "celebrities": len(graph.celebrities),
        "celebrity_threshold": graph.threshold,
        "max_followers": int(fc.max()),
        "followers_p50": float(np.percentile(fc, 50)),
        "followers_p99": float(np.percentile(fc, 99)),
        "followers_p999": float(np.percentile(fc, 99.9)),
        "users_with_0_followers": int((fc == 0).sum()),
        "mean_following": float(graph.following_count.mean()),
        "author_tiers": {str(t): len(a) for t, a in graph.tier_authors.items()},
        "readers": {f"{c}celeb_{p}pushed": len(r) for (c, p), r in graph.readers.items()},
        "poster_pool": len(graph.posters),
        "seed": graph.spec.seed,
    }


def subject_of(user_id: int) -> str:
    return f"bench|{user_id}"


# -- PostgreSQL ---------------------------------------------------------------------------------


def load_postgres(graph: Graph, conninfo: str) -> dict[str, float]:
    """TRUNCATE and COPY users and follows in one transaction. Counts and modes are computed
    from the edges, so they are consistent by construction; the secondary index is dropped for
    the COPY and rebuilt (same definition as the migration), foreign-key triggers are off for the
    load (session_replication_role; the edges reference generated users only)."""
    import psycopg

    t0 = time.perf_counter()
    n = len(graph.user_ids)
    now = datetime.now(UTC)
    inactive_at = (now - timedelta(days=INACTIVE_DAYS_AGO)).isoformat()
    now_s = now.isoformat()
    users = io.StringIO()
    for i in range(n):
        uid = graph.uid(i)
        fc = int(graph.follower_count[i])
        mode = "pull" if fc >= graph.threshold else "push"
        seen = now_s if graph.active[i] else inactive_at
        users.write(
            f"{uid}\t{subject_of(uid)}\tu{uid}\tUser {i}\t{fc}\t"
            f"{int(graph.following_count[i])}\t{mode}\t{seen}\n"
        )
    ids = graph.user_ids
    follower_ids = ids[graph.follower]
    followee_ids = ids[graph.followee]
    with psycopg.connect(conninfo, connect_timeout=5) as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("SET maintenance_work_mem = '256MB'")
        conn.execute("TRUNCATE follows, blocks, mutes, author_modes, users")
        conn.execute("DROP INDEX IF EXISTS follows_followee_follower_idx")
        with conn.cursor().copy(
            "COPY users (id, auth_subject, handle, display_name, follower_count,"
            " following_count, fanout_mode, last_active_at) FROM STDIN"
        ) as copy:
            copy.write(users.getvalue())
        # The modes' copy the graph read joins (migration 0007): the pull-mode authors.
        conn.execute(
            "INSERT INTO author_modes (author_id, fanout_mode)"
            " SELECT id, fanout_mode FROM users WHERE fanout_mode <> 'push'"
        )
        t_users = time.perf_counter()
        step = 500_000
        with conn.cursor().copy("COPY follows (follower_id, followee_id) FROM STDIN") as copy:
            for s in range(0, len(follower_ids), step):
                a, b = follower_ids[s : s + step], followee_ids[s : s + step]
                copy.write(
                    "".join(f"{x}\t{y}\n" for x, y in zip(a.tolist(), b.tolist(), strict=True))
                )
        t_follows = time.perf_counter()
        conn.execute(
            "CREATE INDEX follows_followee_follower_idx ON follows (followee_id, follower_id)"
        )
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE users")
        conn.execute("ANALYZE follows")
        conn.execute("ANALYZE author_modes")
    t_end = time.perf_counter()
    return {
        "users_s": round(t_users - t0, 2),
        "follows_copy_s": round(t_follows - t_users, 2),
        "index_and_analyze_s": round(t_end - t_follows, 2),
        "total_s": round(t_end - t0, 2),
    }


# -- posts (MongoDB + Redis author lists and post cache) --------------------------------------


def post_id_at(ms: int, seq: int) -> int:
    """A snowflake id of a post made at `ms` (epoch milliseconds)."""
    return ((ms - EPOCH_MS) << TIME_SHIFT) | (seq & 0x3FFFFF)


def make_posts(graph: Graph) -> dict[int, list[Post]]:
    """Recent posts of the poster pool and the celebrities, per author index, newest first."""
    spec = graph.spec
    rng = random.Random(spec.seed + 1)
    now_ms = int(time.time() * 1000) - 60_000
    span = spec.post_days * 86_400_000
    out: dict[int, list[Post]] = {}
    seq = 0
    authors = [(a, spec.posts_per_poster) for a in graph.posters]
    authors += [(c, spec.posts_per_celebrity) for c in graph.celebrities]
    for author, count in authors:
        uid = graph.uid(author)
        posts = []
        for ms in sorted((now_ms - rng.randrange(span) for _ in range(count)), reverse=True):
            seq += 1
            pid = post_id_at(ms, seq)
            text = f"post {seq} by {uid}: " + "lorem ipsum " * rng.randrange(1, 12)
            posts.append(Post(pid, uid, text, (), datetime.fromtimestamp(ms / 1000, tz=UTC)))
        out[author] = posts
    return out


def load_mongo(posts: dict[int, list[Post]], db: Any, batch: int = 2_000) -> dict[str, float]:
    t0 = time.perf_counter()
    docs = [post_doc(p) for ps in posts.values() for p in ps]
    for s in range(0, len(docs), batch):
        db.posts.insert_many(docs[s : s + batch], ordered=False)
    elapsed = time.perf_counter() - t0
    return {"posts": len(docs), "s": round(elapsed, 2), "docs_per_s": round(len(docs) / elapsed)}


def load_author_lists(
    graph: Graph, posts: dict[int, list[Post]], timelines: RedisTimelineStore
) -> dict[str, float]:
    """`ap:`/`apm:` lists (ready, complete) and the post cache, through the timeline store."""
    t0 = time.perf_counter()
    for author, ps in posts.items():
        timelines.commit_author_posts(graph.uid(author), [p.id for p in ps], 0)
    all_posts = [p for ps in posts.values() for p in ps]
    for s in range(0, len(all_posts), 2_000):
        timelines.cache_posts(all_posts[s : s + 2_000])
    return {"authors": len(posts), "s": round(time.perf_counter() - t0, 2)}


def load_timelines(
    graph: Graph, redis_client: Any, max_len: int, owners_max: int
) -> dict[str, Any]:
    """Home timelines of `timeline_fill` entries with metadata marked ready, horizon at the
    oldest entry (a capped list is complete only down to there), through the timeline store's
    bulk load. Owners: every follower of a benchmark author, then other active non-readers up
    to `owners_max`. Readers get none: their first read builds it through the read path.

    The bulk load builds up to 200 distinct timelines and copies them to the other owners
    (same sizes and encodings as unique ones). Returns the entry count and INFO memory before
    and after (the memory benchmark)."""
    import redis

    spec = graph.spec
    fill = min(spec.timeline_fill, max_len)
    rng = random.Random(spec.seed + 2)
    now_ms = int(time.time() * 1000) - 3_600_000
    span = 7 * 86_400_000
    pool = [post_id_at(now_ms - rng.randrange(span), i) for i in range(spec.timeline_id_pool)]
    readers = {r for rs in graph.readers.values() for r in rs}
    must = {
        int(f)
        for a in graph.tier_authors.values()
        for x in a
        for f in graph.follower[graph.followee == x]
    }
    others = [
        i
        for i in range(len(graph.user_ids))
        if graph.active[i] and i not in readers and i not in must
    ]
    owners = sorted(must) + others[: max(0, owners_max - len(must))]
    kw = redis_client.connection_pool.connection_kwargs
    # A client of its own with a long timeout: one bulk pipeline keeps the server busy for
    # seconds, beyond the application client's fail-fast timeout.
    raw = redis.Redis(host=kw["host"], port=kw["port"], db=kw["db"], socket_timeout=30)
    store = RedisTimelineStore(raw, max_len=max_len, post_ttl_seconds=60)
    raw.execute_command("MEMORY", "PURGE")
    before = int(raw.info("memory")["used_memory"])
    t0 = time.perf_counter()
    contents = [rng.sample(pool, fill) for _ in range(min(200, len(owners)))]
    store.seed_timelines([graph.uid(o) for o in owners], contents)
    elapsed = time.perf_counter() - t0
    after = int(raw.info("memory")["used_memory"])
    sample = store.timeline_footprint(graph.uid(owners[-1]))
    out = {
        "timelines": len(owners),
        "entries_per_timeline": fill,
        "entries": len(owners) * fill,
        "used_memory_before": before,
        "used_memory_after": after,
        "load_s": round(elapsed, 2),
        "entries_per_s": round(len(owners) * fill / elapsed),
        "sample_encoding": sample["encoding"],
        "sample_memory_usage_bytes": sample["list_bytes"],
        "sample_meta_memory_usage_bytes": sample["meta_bytes"],
        "zset_max_listpack_entries": str(
            next(iter(raw.config_get("zset-max-listpack-entries").values()), "?")
        ),
        "list_max_listpack_size": str(
            next(iter(raw.config_get("list-max-listpack-size").values()), "?")
        ),
        "by_encoding": timeline_encodings(store, graph.uid(owners[-1])),
    }
    raw.close()
    return out


def timeline_encodings(store: RedisTimelineStore, user_id: int) -> dict[str, Any]:
    """Bytes per entry of one loaded timeline in each encoding home timelines have had: the
    LIST as loaded, a ZSET listpack and a ZSET skiplist of the same ids (the store's
    encoding_footprints says how each is built and measured)."""
    samples = store.encoding_footprints(user_id)
    entries = samples["list"]["entries"]
    out: dict[str, Any] = {"entries": entries}
    for name, row in samples.items():
        size = int(row["memory_usage_bytes"])
        out[name] = {**row, "bytes_per_entry": round(size / entries, 2) if entries else None}
    out["how"] = (
        "MEMORY USAGE key SAMPLES 0 of one timeline (no metadata hash); the ZSETs as the ZSET "
        "timelines stored them; zset_skiplist created with one extra member longer than "
        "zset-max-listpack-value, then ZREM of it (zset-max-listpack-entries left alone)"
    )
    return out
