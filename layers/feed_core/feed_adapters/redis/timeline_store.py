"""The timeline store on Redis (ElastiCache): home timelines, author lists, the post cache,
the engagement buffer and backfill bookkeeping. The key layout is in `keys.py`, the scripts in
`scripts.py`; docs/design.md explains both.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis import RedisCluster
from redis import exceptions as redis_errors

from newsfeed.errors import TimelineStoreUnavailable
from newsfeed.ids import lowest_id_at, to_member
from newsfeed.model import LIST_BUILDING, LIST_READY, ListRead, Post
from newsfeed.telemetry import NO_TELEMETRY, Telemetry

from ..translate import StoreBreaker, unavailable_on
from .keys import (
    AUTHOR_META_PATTERN,
    ENGAGEMENT_BUFFER_KEY,
    ENGAGEMENT_DRAINING_KEY,
    IMPRESSION_DRAIN_LOCK_KEY,
    LEGACY_TIMELINE_META_PATTERN,
    TIMELINE_META_PATTERN,
    author_meta_key,
    author_posts_key,
    backfill_key,
    impression_counts_key,
    impression_draining_key,
    impression_hour,
    impression_index_key,
    impression_tag,
    impression_tags,
    impressions_dropped_key,
    impressions_seen_key,
    legacy_timeline_keys,
    owner_of,
    post_cache_key,
    timeline_key,
    timeline_meta_key,
    user_slot,
)
from .node_pipelines import NodeCommand, ReplicasBehind, run_on_nodes
from .scripts import (
    CACHE_FILL_LUA,
    COUNT_IMPRESSIONS_LUA,
    DROP_LUA,
    DROP_SILENT_AUTHOR_LUA,
    LIST_COMMIT_LUA,
    LIST_PUSH_LUA,
    LIST_PUSH_NODE_USERS_LUA,
    LIST_PUSH_USERS_LUA,
    LIST_RANGE_LUA,
    LIST_REMOVE_LUA,
    MERGE_LUA,
    RANGE_LUA,
    RANGE_MANY_LUA,
    RELEASE_LOCK_LUA,
    TAKE_EVENTS_LUA,
    TAKE_IMPRESSION_COUNTS_LUA,
)

if TYPE_CHECKING:
    import redis

BACKFILL_TRACKING_TTL_SECONDS = 86_400
# Bound on a home timeline's length (cap + trim slack). The scripts walk a timeline in O(n) on
# the rare paths (a late insert's LPOS, a merge, a many-id removal); capping n keeps each call
# short. It is also Redis's zset-max-listpack-entries, which keeps the author lists (ZSETs,
# capped at TIMELINE_MAX_LEN) compact listpacks.
LISTPACK_MAX_ENTRIES = 1024
# Timelines per fan-out (and removal) script call (non-cluster mode): 2 keys each in KEYS.
PUSH_BATCH = 250
# Author lists read by one script call (single Redis): one call for a page's pulled authors;
# a read of every followee (no usable timeline) is cut so no call holds the server for long.
RANGE_BATCH = 100
DRAIN_BATCH = 1000
# A reader's impressions counted per hour at most (a deep pager's; the rest counted as dropped).
IMPRESSIONS_PER_READER_HOUR = 1_000
SEEN_TTL_SECONDS = 2 * 3600

# A Redis that is down, hung past the socket timeout, loading, read-only after a failover,
# out of memory, or a cluster without a master for the slot: the domain degrades or answers 503.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,
    redis_errors.OutOfMemoryError,
    redis_errors.ClusterError,
    redis_errors.TryAgainError,
    ReplicasBehind,
)


def _now_ms() -> str:
    return str(time.time_ns() // 1_000_000)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _ids_desc(post_ids: Iterable[int]) -> list[str]:
    """Ids as the timeline scripts take them: unique, newest first, plain decimals (stored by
    Redis as integers; a zero-padded member would be stored as a string)."""
    return [str(p) for p in sorted(set(post_ids), reverse=True)]


def _parse_read(raw: Sequence[str]) -> ListRead:
    return ListRead(raw[0], int(raw[1]) if raw[1] else 0, [int(m) for m in raw[2:]])


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot buffer {type(value).__name__}")


def _event_from_json(raw: str | bytes) -> dict:
    event = json.loads(raw)
    event["at"] = datetime.fromisoformat(event["at"])
    return event


def default_trim_slack(max_len: int) -> int:
    """Lazy-trim slack when none is configured: 10% of the cap for caps of 100 and more (cap 800:
    trim back to 800 once a timeline reaches 881), none for small caps, whose trim is cheap."""
    return max_len // 10 if max_len >= 100 else 0


@unavailable_on(UNAVAILABLE_ERRORS, TimelineStoreUnavailable)
class RedisTimelineStore:
    def __init__(
        self,
        client: redis.Redis | RedisCluster,
        *,
        max_len: int,
        post_ttl_seconds: int,
        trim_slack: int | None = None,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 200,
        telemetry: Telemetry = NO_TELEMETRY,
    ) -> None:
        """`wait_replicas` (REDIS_WAIT_REPLICAS): writes that nothing recomputes (fan-out, removals,
        tombstones, author lists) return only once that many replicas of each master have them
        (WAIT, within `wait_timeout_ms`); else the call fails and its job is retried. A master
        that dies cannot take an acknowledged fan-out with it."""
        self.breaker = StoreBreaker("redis", telemetry)
        self._r = client
        self.max_len = max_len
        self._post_ttl = post_ttl_seconds
        slack = default_trim_slack(max_len) if trim_slack is None else trim_slack
        # Keep cap + slack within the listpack limit (never below the cap itself).
        self.trim_slack = max(0, min(slack, LISTPACK_MAX_ENTRIES - max_len))
        # Fan-out trims a timeline back to max_len once it holds more than this many entries.
        self.trim_at = max_len + self.trim_slack
        self._wait = (wait_replicas, wait_timeout_ms) if wait_replicas > 0 else None
        # A cluster client (REDIS_CLUSTER): script calls routed per key, one round trip per node.
        self._cluster = isinstance(client, RedisCluster)
        self._merge = client.register_script(MERGE_LUA)
        self._range = client.register_script(RANGE_LUA)
        self._range_many = client.register_script(RANGE_MANY_LUA)
        self._push_many = client.register_script(LIST_PUSH_LUA)
        self._push_users = client.register_script(LIST_PUSH_USERS_LUA)
        self._push_node = client.register_script(LIST_PUSH_NODE_USERS_LUA)
        self._commit = client.register_script(LIST_COMMIT_LUA)
        self._remove = client.register_script(LIST_REMOVE_LUA)
        self._timeline_range = client.register_script(LIST_RANGE_LUA)
        self._drop = client.register_script(DROP_LUA)
        self._drop_silent = client.register_script(DROP_SILENT_AUTHOR_LUA)
        self._take_events = client.register_script(TAKE_EVENTS_LUA)
        self._cache_fill = client.register_script(CACHE_FILL_LUA)
        self._count_impressions = client.register_script(COUNT_IMPRESSIONS_LUA)
        self._take_impression_counts = client.register_script(TAKE_IMPRESSION_COUNTS_LUA)
        self._release_lock = client.register_script(RELEASE_LOCK_LUA)
        self._scripts = (
            self._merge,
            self._range,
            self._range_many,
            self._push_many,
            self._push_users,
            self._push_node,
            self._commit,
            self._remove,
            self._timeline_range,
            self._drop,
            self._drop_silent,
            self._take_events,
            self._cache_fill,
            self._count_impressions,
            self._take_impression_counts,
            self._release_lock,
        )

    # -- pipelines of script calls -------------------------------------------------------------

    def _queue(self, pipe: Any, script: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Queue a script call in `pipe` by EVALSHA of its digest (queued through redis-py's
        Script, a pipeline first asks SCRIPT EXISTS: a round trip more on every read and every
        fan-out batch). Cluster: `pipe` is a list of node_pipelines commands, routed by the
        call's first key (every call's keys share one slot)."""
        if self._cluster:
            command = ("EVALSHA", script.sha, len(keys), *keys, *args)
            pipe.append(NodeCommand(keys[0], command, script.script))
        else:
            pipe.evalsha(script.sha, len(keys), *keys, *args)

    def _run(self, queue: Callable[[Any], int], durable: bool = False) -> list[Any]:
        """Build a pipeline with `queue` (it returns how many commands it queued) and run it in
        one round trip (cluster: one per node, the nodes in parallel). A server that lost the
        scripts (restart, failover, SCRIPT FLUSH) gets them loaded and the pipeline once more:
        every scripted pipeline here is idempotent. `durable`: the writes must reach the
        replicas REDIS_WAIT_REPLICAS asks for (see __init__)."""
        wait = self._wait if durable else None
        if self._cluster:
            commands: list[NodeCommand] = []
            return run_on_nodes(self._r, commands, wait) if queue(commands) else []
        for attempt in range(2):
            pipe = self._r.pipeline(transaction=False)
            if not queue(pipe):
                return []
            if wait is not None:
                pipe.execute_command("WAIT", *wait)
            try:
                replies = pipe.execute()
                if wait is not None and int(replies.pop()) < wait[0]:
                    raise ReplicasBehind(f"fewer than {wait[0]} replicas acknowledged in time")
                return replies
            except redis_errors.NoScriptError:
                if attempt:
                    raise
                for script in self._scripts:
                    script.sha = self._r.script_load(script.script)
        raise AssertionError("unreachable")

    # -- shared list operations ------------------------------------------------------------

    def _merge_args(
        self, post_ids: Iterable[int], horizon: int, require_meta: bool, state: str
    ) -> list[str]:
        return [
            str(self.max_len),
            to_member(horizon) if horizon else "",
            "1" if require_meta else "0",
            state,
            _now_ms() if state else "",
            *(to_member(p) for p in post_ids),
        ]

    def _read_timeline(
        self, pipe: redis.client.Pipeline, user_id: int, below: int | None, count: int
    ) -> None:
        """A home timeline (LIST) below the cursor."""
        keys = (timeline_key(user_id), timeline_meta_key(user_id))
        self._queue(pipe, self._timeline_range, keys, [str(below) if below else "", count])

    def _batches(self, user_ids: Iterable[int], keys_of: Callable[[int], Sequence[str]]) -> list:
        """KEYS of one script call per PUSH_BATCH timelines (single Redis) or per timeline
        (cluster: the keys of different users live in different slots)."""
        per_call = 1 if self._cluster else PUSH_BATCH
        batches: list[list[str]] = []
        keys: list[str] = []
        n = 0
        for user_id in user_ids:
            keys += keys_of(user_id)
            n += 1
            if n == per_call:
                batches.append(keys)
                keys, n = [], 0
        if keys:
            batches.append(keys)
        return batches

    def _call_batches(self, script: Any, batches: list, args: Sequence[str]) -> list[Any]:
        def queue(pipe: Any) -> int:
            for batch in batches:
                self._queue(pipe, script, batch, args)
            return len(batches)

        return self._run(queue, durable=True)

    # -- home timelines ------------------------------------------------------------------------

    def timeline_state(self, user_id: int) -> ListRead:
        state, horizon = self._r.hmget(timeline_meta_key(user_id), ["state", "h"])
        return ListRead(state or "", int(horizon) if horizon else 0, [])

    def begin_timeline_rebuild(self, user_id: int) -> None:
        """Make fan-out write into this timeline from now on (it is not readable yet)."""
        self._r.hset(
            timeline_meta_key(user_id), mapping={"state": LIST_BUILDING, "rebuild_at": _now_ms()}
        )

    def commit_timeline(self, user_id: int, post_ids: Sequence[int], horizon: int) -> None:
        """Union the rebuilt ids into the timeline (keeping what fan-out added meanwhile), drop
        what lies below the horizon, trim, write it back in order and mark it ready. The keys of
        the ZSET layout, if left, go too."""
        keys = [timeline_key(user_id), timeline_meta_key(user_id), *legacy_timeline_keys(user_id)]
        args = [
            str(self.max_len),
            str(horizon) if horizon else "",
            LIST_READY,
            _now_ms(),
            *_ids_desc(post_ids),
        ]
        self._run(lambda pipe: self._queue(pipe, self._commit, keys, args) or 1)

    def push(self, follower_ids: Iterable[int], post_ids: Sequence[int], horizon: int = 0) -> int:
        """Fan-out write: add posts to each follower's timeline that exists; returns how many
        timelines exist among them. Idempotent (an id already there is not added again) and
        order-independent (a late id is inserted in place, one below the horizon skipped).

        Lazy trim: a timeline is trimmed back to `max_len` only once it holds more than
        `max_len + trim_slack` entries (the horizon rises to the oldest kept entry then). Single
        Redis: one script call per PUSH_BATCH timelines, the users as one joined argument.
        Cluster (keys of different users live in different slots): one call per timeline, with
        its keys, pipelined."""
        limits = (str(self.max_len), str(self.trim_at), str(horizon) if horizon else "")
        ids = _ids_desc(post_ids)
        if self._cluster:
            return self._push_by_node(follower_ids, limits, ids)
        users = [str(u) for u in follower_ids]

        def queue(pipe: Any) -> int:
            for i in range(0, len(users), PUSH_BATCH):
                joined = ",".join(users[i : i + PUSH_BATCH])
                self._queue(pipe, self._push_users, (), [*limits, joined, *ids])
            return -(-len(users) // PUSH_BATCH)

        return sum(int(x) for x in self._run(queue, durable=True))

    def _push_by_node(self, follower_ids: Iterable[int], limits: tuple, ids: list[str]) -> int:
        """Cluster fan-out: the followers grouped by the node the slot map says serves their
        timelines, PUSH_BATCH of them per call of the node script, every node's calls in one
        round trip. Users whose call a node refused (their slot moved: a failover, resharding)
        are written again one timeline per call, with declared keys, which follows MOVED/ASK."""
        slots = self._r.nodes_manager.slots_cache
        by_node: dict[str, list[str]] = {}
        for user in follower_ids:
            nodes = slots.get(user_slot(user))
            by_node.setdefault(nodes[0].name if nodes else "", []).append(str(user))
        unrouted = [int(u) for u in by_node.pop("", ())]  # a slot the map does not cover
        commands, parts = [], []
        for users in by_node.values():
            for i in range(0, len(users), PUSH_BATCH):
                part = users[i : i + PUSH_BATCH]
                call = ("EVALSHA", self._push_node.sha, 0, *limits, ",".join(part), *ids)
                key = timeline_key(int(part[0]))  # routes the call to that node
                commands.append(NodeCommand(key, call, self._push_node.script))
                parts.append(part)
        written = 0
        replies = run_on_nodes(self._r, commands, self._wait, raise_on_error=False)
        for part, reply in zip(parts, replies, strict=True):
            if isinstance(reply, redis_errors.ResponseError):
                unrouted += [int(u) for u in part]
            else:
                written += int(reply)
        if unrouted:
            keys = self._batches(unrouted, lambda u: (timeline_key(u), timeline_meta_key(u)))
            args = [*limits, *ids]
            written += sum(int(x) for x in self._call_batches(self._push_many, keys, args))
        return written

    def remove(self, follower_ids: Iterable[int], post_ids: Sequence[int]) -> None:
        """Remove posts from timelines (unfollow, block, retract). Missing keys are no-ops."""
        if not post_ids:
            return
        batches = self._batches(follower_ids, lambda u: (timeline_key(u),))
        self._call_batches(self._remove, batches, _ids_desc(post_ids))

    def read_candidates(
        self, reader_id: int | None, author_ids: Sequence[int], below: int | None, count: int
    ) -> tuple[ListRead | None, dict[int, ListRead]]:
        """One pipeline: the reader's timeline (if `reader_id`) and each author list, `count` ids
        below the cursor each."""

        args = [to_member(below) if below else "", count]

        def queue(pipe: Any) -> int:
            if reader_id is not None:
                self._read_timeline(pipe, reader_id, below, count)
            if self._cluster:
                for author_id in author_ids:
                    keys = (author_posts_key(author_id), author_meta_key(author_id))
                    self._queue(pipe, self._range, keys, args)
                return len(author_ids) + (reader_id is not None)
            calls = 0
            for i in range(0, len(author_ids), RANGE_BATCH):
                keys = [
                    key
                    for a in author_ids[i : i + RANGE_BATCH]
                    for key in (author_posts_key(a), author_meta_key(a))
                ]
                self._queue(pipe, self._range_many, keys, args)
                calls += 1
            return calls + (reader_id is not None)

        results = self._run(queue)
        timeline = _parse_read(results.pop(0)) if reader_id is not None else None
        if not self._cluster:
            results = [raw for batch in results for raw in batch]
        return timeline, {a: _parse_read(raw) for a, raw in zip(author_ids, results, strict=True)}

    def timeline_ids(self, user_id: int) -> list[int]:
        """Whole timeline, newest first (tests and tooling)."""
        return [int(m) for m in self._r.lrange(timeline_key(user_id), 0, -1)]

    def forget_cached_posts(self, post_ids: Iterable[int]) -> None:
        """Evict post bodies from the cache (benchmarks: reads with a cold post cache)."""
        keys = [post_cache_key(p) for p in post_ids]
        if keys:
            self._r.delete(*keys)

    def count_holding(self, user_ids: Iterable[int], post_id: int) -> int:
        """How many of these users' timelines hold the post (benchmarks and tooling)."""
        pipe = self._r.pipeline(transaction=False)
        n = 0
        for user_id in user_ids:
            pipe.lpos(timeline_key(user_id), str(post_id))
            n += 1
        return sum(1 for pos in pipe.execute() if pos is not None) if n else 0

    def timeline_lengths(self, user_ids: Sequence[int]) -> list[int]:
        """Entries in each user's timeline, 0 for none (benchmarks and tooling)."""
        pipe = self._r.pipeline(transaction=False)
        for user_id in user_ids:
            pipe.llen(timeline_key(user_id))
        return [int(n) for n in pipe.execute()] if user_ids else []

    def seed_timelines(
        self, owner_ids: Sequence[int], contents: Sequence[Sequence[int]], batch: int = 200
    ) -> None:
        """Bulk load (benchmarks, migrations): owner i gets timeline contents[i % len(contents)]
        (post ids, any order), ready, its horizon at its oldest entry; whatever an owner's
        timeline held before is replaced. Each distinct content is built once by RPUSH, then
        copied to the other owners by DUMP/RESTORE (a RESTORE is a memcpy)."""
        if not owner_ids or not contents:
            return
        built_at = _now_ms()
        pipe = self._r.pipeline(transaction=False)
        templates = owner_ids[: len(contents)]
        horizons = []
        for owner, ids in zip(templates, contents, strict=False):
            members = _ids_desc(ids)
            horizons.append(members[-1] if members else "")
            pipe.delete(timeline_key(owner))  # replace, not union with, what it held
            if members:
                pipe.rpush(timeline_key(owner), *members)
        pipe.execute()
        for owner in templates:
            pipe.dump(timeline_key(owner))
        dumps = pipe.execute()
        for n, owner in enumerate(owner_ids):
            t = n % len(templates)
            if n >= len(templates):
                pipe.restore(timeline_key(owner), 0, dumps[t], replace=True)
            pipe.hset(
                timeline_meta_key(owner),
                mapping={"state": LIST_READY, "built_at": built_at, "h": horizons[t]},
            )
            if (n + 1) % batch == 0:
                pipe.execute()
        pipe.execute()

    def timeline_footprint(self, user_id: int) -> dict[str, int | str]:
        """Memory of one timeline: its encoding and the bytes of the list and its metadata."""
        pipe = self._r.pipeline(transaction=False)
        pipe.object("encoding", timeline_key(user_id))
        pipe.memory_usage(timeline_key(user_id), samples=0)
        pipe.memory_usage(timeline_meta_key(user_id), samples=0)
        encoding, list_bytes, meta_bytes = pipe.execute()
        return {
            "encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
            "list_bytes": int(list_bytes or 0),
            "meta_bytes": int(meta_bytes or 0),
        }

    def encoding_footprints(self, user_id: int) -> dict[str, dict[str, int | str]]:
        """MEMORY USAGE (every element) of one timeline's ids in each encoding home timelines
        have had (the bench's memory section): `list`, the timeline as stored; `zset_listpack`
        and `zset_skiplist`, the same ids written as the ZSET timelines stored them (member and
        score both to_member(id)) on two scratch keys, deleted afterwards.

        The skiplist is forced per key, not by lowering zset-max-listpack-entries (a setting of
        the whole server, shared with every database while lowered): its ZADD carries one more
        member longer than zset-max-listpack-value, so the key is created as a skiplist, and
        ZREM then removes that member (Redis does not convert a shrinking sorted set back).
        Each reports the encoding OBJECT ENCODING gave: where zset-max-listpack-entries is below
        the entry count, `zset_listpack` is a skiplist too."""
        key = timeline_key(user_id)
        ids = [int(x) for x in self._r.lrange(key, 0, -1)]
        pairs = [x for m in sorted(map(to_member, ids), reverse=True) for x in (m, m)]
        limit = next(iter(self._r.config_get("zset-max-listpack-value").values()), 64)
        long_member = "x" * (int(limit) + 1)
        listpack, skiplist = (
            f"sample:zset-listpack:{{{user_id}}}",
            f"sample:zset-skiplist:{{{user_id}}}",
        )
        self._r.delete(listpack, skiplist)
        if pairs:
            self._r.execute_command("ZADD", listpack, *pairs)
            self._r.execute_command("ZADD", skiplist, *pairs, 0, long_member)
            self._r.zrem(skiplist, long_member)
        out: dict[str, dict[str, int | str]] = {}
        for name, k in (("list", key), ("zset_listpack", listpack), ("zset_skiplist", skiplist)):
            pipe = self._r.pipeline(transaction=False)
            pipe.object("encoding", k)
            pipe.memory_usage(k, samples=0)
            pipe.llen(k) if name == "list" else pipe.zcard(k)
            encoding, size, entries = pipe.execute()
            out[name] = {
                "encoding": encoding.decode() if isinstance(encoding, bytes) else str(encoding),
                "entries": int(entries),
                "memory_usage_bytes": int(size or 0),
            }
        self._r.delete(listpack, skiplist)
        return out

    def cold_first_pages(self, user_ids: Sequence[int], page_size: int) -> list[int]:
        """The users whose timeline is not ready, or whose newest `page_size` posts are not all
        in the post cache: a first read of theirs would go to the stores (prewarm's test)."""
        if not user_ids:
            return []

        def queue(pipe: Any) -> int:
            for user_id in user_ids:
                self._read_timeline(pipe, user_id, None, page_size)
            return len(user_ids)

        reads = [_parse_read(raw) for raw in self._run(queue)]
        cold = [u for u, read in zip(user_ids, reads, strict=True) if not read.ready]
        warm = [(u, read.ids) for u, read in zip(user_ids, reads, strict=True) if read.ready]
        pipe = self._r.pipeline(transaction=False)
        for _, ids in warm:
            for post_id in ids:
                pipe.exists(post_cache_key(post_id))
        hits = iter(pipe.execute() if any(ids for _, ids in warm) else [])
        for user_id, ids in warm:
            cached = [bool(next(hits)) for _ in ids]  # consume every answer of this user
            if not all(cached):
                cold.append(user_id)
        return cold

    def timeline_owners(self, batch: int = 500) -> Iterator[list[int]]:
        """Every user that has a home timeline in Redis, in batches (SCAN: no blocking, may
        repeat a user, which callers tolerate). Owners of a timeline of the ZSET layout left
        behind too, so the cleanup job drops those keys of inactive owners."""
        # A generator here (not a generator returned): the store wrapper translates errors
        # raised while it is iterated.
        yield from self._owners((TIMELINE_META_PATTERN, LEGACY_TIMELINE_META_PATTERN), batch)

    def _owners(self, patterns: Sequence[str], batch: int) -> Iterator[list[int]]:
        """The ids in the hash tags of the keys matching `patterns`, in batches. SCAN, on a
        cluster over every master (redis-py's RedisCluster.scan_iter)."""
        owners: list[int] = []
        for pattern in patterns:
            for key in self._r.scan_iter(match=pattern, count=batch):
                owners.append(owner_of(key.decode() if isinstance(key, bytes) else key))
                if len(owners) >= batch:
                    yield owners
                    owners = []
        if owners:
            yield owners

    def drop_timelines(self, user_ids: Iterable[int], built_before_ms: int) -> int:
        """Delete timelines (list and metadata) not rebuilt since `built_before_ms`; returns how
        many went. The owner's next read rebuilds it, as for any missing timeline."""
        owners = list(user_ids)

        def queue(pipe: Any) -> int:
            for user_id in owners:
                keys = [
                    timeline_key(user_id),
                    timeline_meta_key(user_id),
                    *legacy_timeline_keys(user_id),
                ]
                self._queue(pipe, self._drop, keys, [built_before_ms])
            return len(owners)

        return sum(int(x) for x in self._run(queue))

    # -- author lists --------------------------------------------------------------------------

    def add_author_post(self, author_id: int, post_id: int) -> bool:
        """Add a new post to `ap:` if the list exists; a missing list stays missing (it is rebuilt
        from MongoDB, which already has the post)."""
        keys = [author_posts_key(author_id), author_meta_key(author_id)]
        args = self._merge_args([post_id], 0, True, "")

        def queue(pipe: Any) -> int:
            self._queue(pipe, self._merge, keys, args)
            return 1

        return bool(self._run(queue, durable=True)[0])

    def remove_author_post(self, author_id: int, post_id: int) -> None:
        key = author_posts_key(author_id)

        def queue(pipe: Any) -> int:
            command = ("ZREM", key, to_member(post_id))
            if self._cluster:
                pipe.append(NodeCommand(key, command))
            else:
                pipe.execute_command(*command)
            return 1

        self._run(queue, durable=True)

    def begin_author_rebuild(self, author_id: int) -> None:
        """Mark the list `building` (a post from now on is merged in) and when, so the cleanup
        job does not drop it under the rebuild (one that never commits is dropped later)."""
        self._r.hset(
            author_meta_key(author_id), mapping={"state": LIST_BUILDING, "rebuild_at": _now_ms()}
        )

    def commit_author_posts(self, author_id: int, post_ids: Sequence[int], horizon: int) -> None:
        keys = [author_posts_key(author_id), author_meta_key(author_id)]
        self._merge(keys=keys, args=self._merge_args(post_ids, horizon, False, LIST_READY))

    def author_lists(
        self, author_ids: Sequence[int], below: int | None, count: int
    ) -> dict[int, ListRead]:
        return self.read_candidates(None, author_ids, below, count)[1]

    def author_list_owners(self, batch: int = 500) -> Iterator[list[int]]:
        """Every author that has a list in Redis, in batches (SCAN of the metadata keys, every
        master of a cluster; may repeat an author)."""
        yield from self._owners((AUTHOR_META_PATTERN,), batch)

    def drop_silent_author_lists(
        self, author_ids: Iterable[int], silent_since_ms: int, rebuilt_before_ms: int
    ) -> int:
        """Delete the lists of authors whose newest listed post and the list's last build are
        both older than `silent_since_ms` (scripts.DROP_SILENT_AUTHOR_LUA decides, per list,
        atomically), but for a list being rebuilt since `rebuilt_before_ms`; returns how many
        went. Not durable (no WAIT): a list that comes back after a failover is still valid."""
        authors = list(author_ids)
        args = [to_member(lowest_id_at(silent_since_ms)), silent_since_ms, rebuilt_before_ms]

        def queue(pipe: Any) -> int:
            for author_id in authors:
                keys = [author_posts_key(author_id), author_meta_key(author_id)]
                self._queue(pipe, self._drop_silent, keys, args)
            return len(authors)

        return sum(int(x) for x in self._run(queue))

    # -- post cache ----------------------------------------------------------------------------

    def cached_posts(self, post_ids: Sequence[int]) -> dict[int, Post]:
        """Cached bodies (tombstones of deleted posts included). One MGET on a single server
        (a pipeline of GETs costs the client a command each to pack and parse: about 0.4 ms of
        a 20-post page); on a cluster, where the keys span slots, GETs, one round trip per node."""
        if not post_ids:
            return {}
        keys = [post_cache_key(post_id) for post_id in post_ids]
        if self._cluster:
            bodies = run_on_nodes(self._r, [NodeCommand(key, ("GET", key)) for key in keys])
        else:
            bodies = self._r.mget(keys)
        found: dict[int, Post] = {}
        for post_id, raw in zip(post_ids, bodies, strict=True):
            if raw:
                found[post_id] = Post.from_dict(json.loads(raw))
        return found

    def cache_posts(self, posts: Iterable[Post]) -> None:
        """Cache bodies; a live body never replaces a cached tombstone (scripts.CACHE_FILL_LUA).
        One script call per key, pipelined: the keys span cluster slots."""
        fills = [
            (post_cache_key(post.id), json.dumps(post.to_dict(), separators=(",", ":")))
            for post in posts
        ]

        def queue(pipe: Any) -> int:
            for key, body in fills:
                self._queue(pipe, self._cache_fill, [key], [self._post_ttl, body])
            return len(fills)

        self._run(queue, durable=True)  # a tombstone lost in a failover would bring a post back

    # -- engagement event buffer of earlier releases (drained, no longer written) ----------

    def drain_events(self, store: Callable[[list[dict]], None], batch: int = DRAIN_BATCH) -> int:
        """Hand every buffered event to `store` (which must ignore events it already has), in
        batches; returns how many were handed over. Events left in the draining list by a
        crashed drain go first."""
        drained = 0
        while True:
            raw = self._r.lrange(ENGAGEMENT_DRAINING_KEY, 0, -1)
            if not raw:
                raw = self._take_events(
                    keys=[ENGAGEMENT_BUFFER_KEY, ENGAGEMENT_DRAINING_KEY], args=[batch]
                )
            if not raw:
                return drained
            store([_event_from_json(r) for r in raw])
            self._r.ltrim(ENGAGEMENT_DRAINING_KEY, len(raw), -1)
            drained += len(raw)

    def engagement_backlog(self) -> int:
        """Entries waiting for a drain: (post, hour) impression counts in the hashes the index
        names (taken or not), and raw events in the old buffer. A few dozen hashes at most: the
        impressions job drains every minute."""
        pipe = self._r.pipeline(transaction=False)
        for name in sorted(self._impression_hashes()):
            pipe.hlen(name)
        pipe.llen(ENGAGEMENT_BUFFER_KEY)
        pipe.llen(ENGAGEMENT_DRAINING_KEY)
        return sum(int(n) for n in pipe.execute())

    # -- impression counts ---------------------------------------------------------------------

    def count_impressions(
        self, reader_id: int, at: datetime, shown: Sequence[tuple[int, int]]
    ) -> int:
        """Count each (post, author) shown to the reader once per hour; returns how many were
        new. Bounded: a reader's hour holds at most IMPRESSIONS_PER_READER_HOUR posts."""
        if not shown:
            return 0
        hour = at.strftime("%Y%m%d%H")
        tag = impression_tag(reader_id)  # every key of the call: one slot, the reader's
        keys = [
            impressions_seen_key(reader_id, hour),
            impression_index_key(tag),
            impressions_dropped_key(tag, hour),
            *(impression_counts_key(tag, hour, post_id) for post_id, _ in shown),
        ]
        args = [
            IMPRESSIONS_PER_READER_HOUR,
            SEEN_TTL_SECONDS,
            *(f"{post_id}:{author_id}" for post_id, author_id in shown),
        ]
        return int(self._count_impressions(keys=keys, args=args))

    def drain_impression_counts(
        self,
        store: Callable[[str, datetime, list[tuple[int, int, int]]], None],
        lock_seconds: int = 900,  # beyond the longest Lambda timeout that drains (300 s)
    ) -> int | None:
        """Hand every impression count to `store(batch, hour, [(post, author, n)])`, which must
        store a batch at most once; returns how many impressions were handed over, or None when
        another drain holds the lock. Counts taken by a drain that died are handed over first,
        under the same batch name, so a retry never counts twice. Tag by tag (each tag's keys
        share a slot: its take is one atomic script)."""
        token = uuid.uuid4().hex
        if not self._r.set(IMPRESSION_DRAIN_LOCK_KEY, token, nx=True, ex=lock_seconds):
            return None
        try:
            drained = 0
            for tag in impression_tags():
                drained += self._drain_tag(tag, token, store)
            return drained
        finally:
            self._release_lock(keys=[IMPRESSION_DRAIN_LOCK_KEY], args=[token])

    def _drain_tag(
        self,
        tag: str,
        token: str,
        store: Callable[[str, datetime, list[tuple[int, int, int]]], None],
    ) -> int:
        index, draining = impression_index_key(tag), impression_draining_key(tag)
        left = [_text(n) for n in self._r.smembers(draining)]
        taken = self._take_impression_counts(keys=[index, draining], args=[token])
        drained = 0
        for name in sorted({*left, *(_text(n) for n in taken)}):
            hour = datetime.strptime(impression_hour(name), "%Y%m%d%H").replace(tzinfo=UTC)
            counts = []
            for field, n in self._r.hgetall(name).items():
                post_id, author_id = _text(field).split(":")
                counts.append((int(post_id), int(author_id), int(n)))
            if counts:
                store(name, hour, counts)
                drained += sum(n for _, _, n in counts)
            pipe = self._r.pipeline(transaction=True)  # same tag, same slot
            pipe.delete(name)
            pipe.srem(draining, name)
            pipe.execute()
        return drained

    def _impression_hashes(self) -> set[str]:
        """The count hashes every tag's index and draining index name (one pipeline)."""
        pipe = self._r.pipeline(transaction=False)
        for tag in impression_tags():
            pipe.smembers(impression_index_key(tag))
            pipe.smembers(impression_draining_key(tag))
        return {_text(name) for names in pipe.execute() for name in names}

    def impressions_dropped(self, at: datetime) -> int:
        hour = at.strftime("%Y%m%d%H")
        pipe = self._r.pipeline(transaction=False)
        for tag in impression_tags():
            pipe.get(impressions_dropped_key(tag, hour))
        return sum(int(n or 0) for n in pipe.execute())

    def pending_impression_count(self) -> int:
        """Impressions counted and not yet drained (tests and tooling)."""
        return sum(int(v) for name in self._impression_hashes() for v in self._r.hvals(name))

    # -- backfill tracking ---------------------------------------------------------------------

    def backfill_chunk_done(self, author_id: int, job_id: str, chunk: int, chunks: int) -> bool:
        """Record a finished chunk; True once every chunk of the job is done (redelivery-safe:
        a set, not a counter)."""
        key = backfill_key(author_id, job_id)
        pipe = self._r.pipeline(transaction=True)
        pipe.sadd(key, chunk)
        pipe.expire(key, BACKFILL_TRACKING_TTL_SECONDS)
        pipe.scard(key)
        return int(pipe.execute()[-1]) >= chunks
