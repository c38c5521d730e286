"""Every Redis key and every timeline operation. Nothing else in the code base names a key.

Keys (the braces are literal Redis Cluster hash tags, so a list and its metadata share a slot
and one Lua script can update both atomically):
  tl:{user}     home timeline ZSET: member = zero-padded 19-digit post id, score = the id as a
                double. Doubles round 64-bit ids, but ties sort by member and members are
                fixed-width, so ZSET order is exactly id order. Capped at TIMELINE_MAX_LEN,
                lazily on fan-out: trimmed back to the cap once it exceeds cap + trim slack.
  tlm:{user}    timeline metadata HASH: state (building|ready), built_at (ms), h (horizon).
  ap:{author}   the author's recent post ids, same encoding and cap.
  apm:{author}  the author list's metadata, same fields.
  post:{id}     cached post body (JSON of Post.to_dict), TTL POST_CACHE_TTL_SECONDS.
  bf:{author}:<job>  SET of finished chunks of one backfill_author job (TTL one day).

Validity: a list is usable when its metadata says `ready` (so an empty list is valid; a missing
or `building` one is rebuilt by the reader). Fan-out writes only into lists whose metadata
exists (`building` included: a rebuild in progress must not miss a concurrent post) and never
creates one (it would look complete while holding a single post).

Horizon `h`: the list holds every relevant post with id >= h. It rises when trimming drops the
oldest entries or when posts are merged from a source that is itself incomplete below some id.
Below the horizon the reader pulls from the per-author sources instead (lazy loading).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from .ids import to_member
from .models import Post

if TYPE_CHECKING:
    import redis

READY = "ready"
BUILDING = "building"
BACKFILL_TRACKING_TTL_SECONDS = 86_400
_ZADD_BATCH = 500  # members per ZADD inside Lua (keeps unpack() far below its stack limit)
# Redis's zset-max-listpack-entries (docs/design.md): a timeline stays a compact listpack only
# while it holds at most this many entries, so TIMELINE_MAX_LEN + trim slack must not exceed it.
LISTPACK_MAX_ENTRIES = 1024
# Timelines per fan-out script call (non-cluster mode): 2 keys each in KEYS.
PUSH_BATCH = 250


def timeline_key(user_id: int) -> str:
    return f"tl:{{{user_id}}}"


def timeline_meta_key(user_id: int) -> str:
    return f"tlm:{{{user_id}}}"


def author_posts_key(author_id: int) -> str:
    return f"ap:{{{author_id}}}"


def author_meta_key(author_id: int) -> str:
    return f"apm:{{{author_id}}}"


def post_cache_key(post_id: int) -> str:
    return f"post:{{{post_id}}}"


# Engagement events waiting for the roll-up (impressions: one per item of every feed page read,
# too many to write to MongoDB on the read path). Same hash tag: the move script is atomic.
ENGAGEMENT_BUFFER_KEY = "{engagement}:buffer"
ENGAGEMENT_DRAINING_KEY = "{engagement}:draining"
DRAIN_BATCH = 1000


def backfill_key(author_id: int, job_id: str) -> str:
    return f"bf:{{{author_id}}}:{job_id}"


# KEYS: list, meta. ARGV: max_len, min_horizon|'', require_meta '1'|'0', state|'', built_at, ids...
# Trims exactly to max_len (rebuilds and author lists; fan-out uses _PUSH_MANY_LUA).
_MERGE_LUA = """
if ARGV[3] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local n = #ARGV
local i = 6
while i <= n do
  local args = {}
  local j = i
  while j <= n and j < i + ZADD_BATCH do
    args[#args + 1] = ARGV[j]
    args[#args + 1] = ARGV[j]
    j = j + 1
  end
  redis.call('ZADD', KEYS[1], unpack(args))
  i = j
end
local maxlen = tonumber(ARGV[1])
local h = redis.call('HGET', KEYS[2], 'h') or ''
local h0 = h
if ARGV[2] ~= '' and ARGV[2] > h then h = ARGV[2] end
if redis.call('ZCARD', KEYS[1]) > maxlen then
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(maxlen + 1))
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if oldest and oldest > h then h = oldest end
end
if h ~= h0 then redis.call('HSET', KEYS[2], 'h', h) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[2], 'state', ARGV[4], 'built_at', ARGV[5]) end
return 1
""".replace("ZADD_BATCH", str(_ZADD_BATCH))

# Fan-out write into one or many timelines in one call (many: single Redis only, the keys of
# different users span slots; cluster mode calls it with one timeline's two keys).
# KEYS: list1, meta1, list2, meta2, ... ARGV: max_len, trim_at, min_horizon|'', ids...
# Per timeline, exactly _MERGE_LUA with require_meta '1' and no state: skipped unless its
# metadata exists; ZADD; lazy trim back to max_len above trim_at, the horizon rising to the
# oldest kept entry; the horizon written only when it changes. Returns how many were written.
_PUSH_MANY_LUA = """
local maxlen = tonumber(ARGV[1])
local trim_at = tonumber(ARGV[2])
local minh = ARGV[3]
local n = #ARGV
local args = {}
for j = 4, n do
  args[#args + 1] = ARGV[j]
  args[#args + 1] = ARGV[j]
end
local written = 0
for k = 1, #KEYS, 2 do
  local list, meta = KEYS[k], KEYS[k + 1]
  if redis.call('EXISTS', meta) == 1 then
    if #args > 0 then redis.call('ZADD', list, unpack(args)) end
    local trim = redis.call('ZCARD', list) > trim_at
    if trim or minh ~= '' then
      local h = redis.call('HGET', meta, 'h') or ''
      local h0 = h
      if minh ~= '' and minh > h then h = minh end
      if trim then
        redis.call('ZREMRANGEBYRANK', list, 0, -(maxlen + 1))
        local oldest = redis.call('ZRANGE', list, 0, 0)[1]
        if oldest and oldest > h then h = oldest end
      end
      if h ~= h0 then redis.call('HSET', meta, 'h', h) end
    end
    written = written + 1
  end
end
return written
"""

# KEYS: list, meta. ARGV: below|'' (exclusive), count. Returns {state, h, ids...}: up to `count`
# members strictly below `below`, newest first. Scores are rounded ids, so members in the same
# double as `below` are compared as fixed-width strings.
_RANGE_LUA = """
local meta = redis.call('HMGET', KEYS[2], 'state', 'h')
local out = {meta[1] or '', meta[2] or ''}
local below = ARGV[1]
local want = tonumber(ARGV[2])
local maxs = '+inf'
if below ~= '' then maxs = below end
local offset = 0
local got = 0
while got < want do
  local batch = redis.call('ZREVRANGEBYSCORE', KEYS[1], maxs, '-inf', 'LIMIT', offset, want)
  for _, m in ipairs(batch) do
    if below == '' or m < below then
      out[#out + 1] = m
      got = got + 1
      if got == want then break end
    end
  end
  if #batch < want then break end
  offset = offset + #batch
end
return out
"""


# KEYS: list, meta. ARGV: built_before (ms). Drops the timeline unless it was (re)built at or
# after `built_before`: its owner came back meanwhile and is reading it.
_DROP_LUA = """
local built = tonumber(redis.call('HGET', KEYS[2], 'built_at') or '0')
if built >= tonumber(ARGV[1]) then return 0 end
return redis.call('DEL', KEYS[1], KEYS[2]) > 0 and 1 or 0
"""

# Move up to ARGV[1] events from the buffer to the draining list, atomically, and return them.
# What sits in the draining list was taken but maybe not stored yet; a later drain stores it
# again (the store ignores events it already has), so a crash between the two loses nothing.
_TAKE_EVENTS_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
end
return items
"""

_TIMELINE_META_PATTERN = "tlm:{*}"


@dataclass(frozen=True, slots=True)
class ListRead:
    """One timeline or author list as read: metadata plus ids below the cursor, newest first."""

    state: str  # '' when missing
    horizon: int  # 0: complete to the bottom
    ids: list[int]

    @property
    def ready(self) -> bool:
        return self.state == READY


def _now_ms() -> str:
    return str(time.time_ns() // 1_000_000)


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


class Timelines:
    def __init__(
        self,
        client: redis.Redis,
        *,
        max_len: int,
        post_ttl_seconds: int,
        trim_slack: int | None = None,
        cluster: bool = False,
    ) -> None:
        self._r = client
        self.max_len = max_len
        self._post_ttl = post_ttl_seconds
        slack = default_trim_slack(max_len) if trim_slack is None else trim_slack
        # Keep cap + slack within the listpack limit (never below the cap itself).
        self.trim_slack = max(0, min(slack, LISTPACK_MAX_ENTRIES - max_len))
        self._cluster = cluster
        self._merge = client.register_script(_MERGE_LUA)
        self._push_many = client.register_script(_PUSH_MANY_LUA)
        self._range = client.register_script(_RANGE_LUA)
        self._drop = client.register_script(_DROP_LUA)
        self._take_events = client.register_script(_TAKE_EVENTS_LUA)

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

    def _read(
        self, pipe: redis.client.Pipeline, keys: tuple[str, str], below: int | None, count: int
    ) -> None:
        self._range(keys=list(keys), args=[to_member(below) if below else "", count], client=pipe)

    # -- home timelines ------------------------------------------------------------------------

    def timeline_state(self, user_id: int) -> ListRead:
        state, horizon = self._r.hmget(timeline_meta_key(user_id), ["state", "h"])
        return ListRead(state or "", int(horizon) if horizon else 0, [])

    def begin_timeline_rebuild(self, user_id: int) -> None:
        """Make fan-out write into this timeline from now on (it is not readable yet)."""
        self._r.hset(timeline_meta_key(user_id), "state", BUILDING)

    def commit_timeline(self, user_id: int, post_ids: Sequence[int], horizon: int) -> None:
        """Union the rebuilt ids into the timeline (keeping what fan-out added meanwhile), trim,
        and mark it ready."""
        keys = [timeline_key(user_id), timeline_meta_key(user_id)]
        self._merge(keys=keys, args=self._merge_args(post_ids, horizon, False, READY))

    def push(self, follower_ids: Iterable[int], post_ids: Sequence[int], horizon: int = 0) -> int:
        """Fan-out write: add posts to each follower's timeline that exists; returns how many
        timelines were written. Idempotent (ZADD of a present member is a no-op).

        Lazy trim: a timeline is trimmed back to `max_len` only once it holds more than
        `max_len + trim_slack` entries (the horizon rises to the oldest kept entry then). Single
        Redis: one script call per PUSH_BATCH timelines. Cluster (keys of different users live in
        different slots): one call per timeline, pipelined."""
        args = [
            str(self.max_len),
            str(self.max_len + self.trim_slack),
            to_member(horizon) if horizon else "",
            *(to_member(p) for p in post_ids),
        ]
        per_call = 1 if self._cluster else PUSH_BATCH
        pipe = self._r.pipeline(transaction=False)
        calls = 0
        keys: list[str] = []
        for follower_id in follower_ids:
            keys += (timeline_key(follower_id), timeline_meta_key(follower_id))
            if len(keys) >= 2 * per_call:
                self._push_many(keys=keys, args=args, client=pipe)
                calls += 1
                keys = []
        if keys:
            self._push_many(keys=keys, args=args, client=pipe)
            calls += 1
        return sum(int(x) for x in pipe.execute()) if calls else 0

    def remove(self, follower_ids: Iterable[int], post_ids: Sequence[int]) -> None:
        """Remove posts from timelines (unfollow, block, retract). Missing keys are no-ops."""
        if not post_ids:
            return
        members = [to_member(p) for p in post_ids]
        pipe = self._r.pipeline(transaction=False)
        for follower_id in follower_ids:
            pipe.zrem(timeline_key(follower_id), *members)
        pipe.execute()

    def read_candidates(
        self, reader_id: int | None, author_ids: Sequence[int], below: int | None, count: int
    ) -> tuple[ListRead | None, dict[int, ListRead]]:
        """One pipeline: the reader's timeline (if `reader_id`) and each author list, `count` ids
        below the cursor each."""
        pipe = self._r.pipeline(transaction=False)
        if reader_id is not None:
            self._read(pipe, (timeline_key(reader_id), timeline_meta_key(reader_id)), below, count)
        for author_id in author_ids:
            self._read(
                pipe, (author_posts_key(author_id), author_meta_key(author_id)), below, count
            )
        results = pipe.execute() if (reader_id is not None or author_ids) else []
        timeline = _parse_read(results.pop(0)) if reader_id is not None else None
        return timeline, {a: _parse_read(raw) for a, raw in zip(author_ids, results, strict=True)}

    def timeline_ids(self, user_id: int) -> list[int]:
        """Whole timeline, newest first (tests and tooling)."""
        return [int(m) for m in self._r.zrevrange(timeline_key(user_id), 0, -1)]

    def cold_first_pages(self, user_ids: Sequence[int], page_size: int) -> list[int]:
        """The users whose timeline is not ready, or whose newest `page_size` posts are not all
        in the post cache: a first read of theirs would go to the stores (prewarm's test)."""
        if not user_ids:
            return []
        pipe = self._r.pipeline(transaction=False)
        for user_id in user_ids:
            self._read(pipe, (timeline_key(user_id), timeline_meta_key(user_id)), None, page_size)
        reads = [_parse_read(raw) for raw in pipe.execute()]
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
        repeat a user, which callers tolerate)."""
        owners: list[int] = []
        for key in self._r.scan_iter(match=_TIMELINE_META_PATTERN, count=batch):
            raw = key.decode() if isinstance(key, bytes) else key
            owners.append(int(raw[raw.index("{") + 1 : raw.index("}")]))
            if len(owners) >= batch:
                yield owners
                owners = []
        if owners:
            yield owners

    def drop_timelines(self, user_ids: Iterable[int], built_before_ms: int) -> int:
        """Delete timelines (list and metadata) not rebuilt since `built_before_ms`; returns how
        many went. The owner's next read rebuilds it, as for any missing timeline."""
        pipe = self._r.pipeline(transaction=False)
        n = 0
        for user_id in user_ids:
            keys = [timeline_key(user_id), timeline_meta_key(user_id)]
            self._drop(keys=keys, args=[built_before_ms], client=pipe)
            n += 1
        return sum(int(x) for x in pipe.execute()) if n else 0

    # -- author lists --------------------------------------------------------------------------

    def add_author_post(self, author_id: int, post_id: int) -> bool:
        """Add a new post to `ap:` if the list exists; a missing list stays missing (it is rebuilt
        from MongoDB, which already has the post)."""
        keys = [author_posts_key(author_id), author_meta_key(author_id)]
        return bool(self._merge(keys=keys, args=self._merge_args([post_id], 0, True, "")))

    def remove_author_post(self, author_id: int, post_id: int) -> None:
        self._r.zrem(author_posts_key(author_id), to_member(post_id))

    def begin_author_rebuild(self, author_id: int) -> None:
        self._r.hset(author_meta_key(author_id), "state", BUILDING)

    def commit_author_posts(self, author_id: int, post_ids: Sequence[int], horizon: int) -> None:
        keys = [author_posts_key(author_id), author_meta_key(author_id)]
        self._merge(keys=keys, args=self._merge_args(post_ids, horizon, False, READY))

    def author_lists(
        self, author_ids: Sequence[int], below: int | None, count: int
    ) -> dict[int, ListRead]:
        return self.read_candidates(None, author_ids, below, count)[1]

    # -- post cache ----------------------------------------------------------------------------

    def cached_posts(self, post_ids: Sequence[int]) -> dict[int, Post]:
        """Cached bodies (tombstones of deleted posts included). GETs in a pipeline rather than
        MGET so the same code works on a cluster, where the keys span slots."""
        if not post_ids:
            return {}
        pipe = self._r.pipeline(transaction=False)
        for post_id in post_ids:
            pipe.get(post_cache_key(post_id))
        found: dict[int, Post] = {}
        for post_id, raw in zip(post_ids, pipe.execute(), strict=True):
            if raw:
                found[post_id] = Post.from_dict(json.loads(raw))
        return found

    def cache_posts(self, posts: Iterable[Post]) -> None:
        pipe = self._r.pipeline(transaction=False)
        n = 0
        for post in posts:
            pipe.set(
                post_cache_key(post.id),
                json.dumps(post.to_dict(), separators=(",", ":")),
                ex=self._post_ttl,
            )
            n += 1
        if n:
            pipe.execute()

    # -- engagement event buffer ------------------------------------------------------------

    def buffer_events(self, events: Sequence[dict]) -> None:
        """Append events (each with a unique `event_id`) for the roll-up to store later."""
        if events:
            self._r.rpush(
                ENGAGEMENT_BUFFER_KEY,
                *(json.dumps(e, separators=(",", ":"), default=_iso) for e in events),
            )

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

    def buffered_event_count(self) -> int:
        return int(self._r.llen(ENGAGEMENT_BUFFER_KEY)) + int(
            self._r.llen(ENGAGEMENT_DRAINING_KEY)
        )

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
