"""Every Redis key. Nothing else in the code base names one: the scripts get them as KEYS, but
for the fan-out script of single Redis, which builds timeline keys from the templates here.

Keys (the braces are literal Redis Cluster hash tags, so a list and its metadata share a slot
and one Lua script can update both atomically):
  htl:{user}    home timeline LIST of post ids, newest first (strictly descending, no duplicate).
                Each id is pushed as its plain decimal, so Redis stores it as an integer listpack
                entry (about 10 bytes). Capped at TIMELINE_MAX_LEN, lazily on fan-out: trimmed
                back to the cap once it exceeds cap + trim slack. Ids are compared in the scripts
                as decimal strings (length, then bytes): Lua numbers are doubles.
  htm:{user}    timeline metadata HASH: state (building|ready), built_at (ms), h (horizon, plain
                decimal), rebuild_at (ms, when the last rebuild started).
  tl:{user}, tlm:{user}  the ZSET layout of earlier releases: never read. The owner's timeline is
                missing under the new names, so the next read rebuilds it, and the rebuild deletes
                the old pair (same hash tag, same slot); the cleanup job drops those of owners who
                do not come back.
  ap:{author}   the author's recent post ids: ZSET, member = zero-padded 19-digit post id, score =
                the id as a double (ties sort by member, members are fixed-width, so ZSET order is
                exactly id order). Capped at TIMELINE_MAX_LEN, trimmed exactly.
  apm:{author}  the author list's metadata, same fields (h zero-padded, as its members). The
                cleanup job drops both keys once the author has been silent for
                AUTHOR_LIST_SILENT_DAYS (newest member and built_at older); a reader rebuilds.
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

from binascii import crc_hqx

CLUSTER_SLOTS = 16384

# `{}` is the user id (str.format); the literal braces around it are the hash tag.
TIMELINE_KEY_TEMPLATE = "htl:{{{}}}"
TIMELINE_META_KEY_TEMPLATE = "htm:{{{}}}"


def timeline_key(user_id: int) -> str:
    return f"htl:{{{user_id}}}"


def timeline_meta_key(user_id: int) -> str:
    return f"htm:{{{user_id}}}"


def user_slot(user_id: int) -> int:
    """The cluster slot of every key of this user's hash tag ({user}): CRC16 (XMODEM, what
    binascii.crc_hqx computes) of the tag mod 16384, as Redis Cluster hashes it; about 0.35 us,
    a third of redis-py's pure-Python key_slot, for the fan-out's thousands of followers."""
    return crc_hqx(str(user_id).encode(), 0) % CLUSTER_SLOTS


def lua_key_of_user(template: str) -> str:
    """A Lua expression for `template`'s key of the user id in the Lua variable `u` (the one
    script that names keys itself, scripts.LIST_PUSH_USERS_LUA, builds them from these)."""
    before, after = template.format("\0").split("\0")
    return f"{_lua_string(before)} .. u .. {_lua_string(after)}"


def _lua_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def legacy_timeline_keys(user_id: int) -> tuple[str, str]:
    """The ZSET timeline and its metadata of the earlier layout (deleted, never read)."""
    return f"tl:{{{user_id}}}", f"tlm:{{{user_id}}}"


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


# Impressions, counted once per (reader, post, hour) and aggregated per (hour, post) instead of
# kept as raw events (a reader refreshing at hundreds of requests a second used to add one event
# per item per read). Every read's counting script touches only its reader's tag, one of
# IMPRESSION_TAGS ({imp:0} .. {imp:31}): readers spread over as many cluster slots, so no shard
# takes every read's impressions (one tag, {imp}, did; the drain still empties its keys).
IMPRESSION_TAGS = 32
LEGACY_IMPRESSION_TAG = "imp"
IMPRESSION_DRAIN_LOCK_KEY = "{imp}:lock"  # one drain at a time, over every tag
IMPRESSION_SHARDS = 16  # count hashes per tag and hour: each stays a small listpack hash


def impression_tag(reader_id: int) -> str:
    # A hash, not the id mod 32: snowflake ids made in different milliseconds mostly end in
    # the same low bits (the per-millisecond sequence starts at 0).
    return f"imp:{_spread(reader_id) % IMPRESSION_TAGS}"


def _spread(id_: int) -> int:
    return crc_hqx(str(id_).encode(), 0)


def impression_tags() -> list[str]:
    """Every tag the drain empties: the readers' tags, then the single tag of earlier releases."""
    return [f"imp:{n}" for n in range(IMPRESSION_TAGS)] + [LEGACY_IMPRESSION_TAG]


def impression_index_key(tag: str) -> str:
    """SET of the tag's count hashes that hold something to drain."""
    return f"{{{tag}}}:index"


def impression_draining_key(tag: str) -> str:
    """SET of the tag's count hashes taken by a drain and not stored yet."""
    return f"{{{tag}}}:draining"


def impressions_seen_key(reader_id: int, hour: str) -> str:
    """SET of the posts `reader` was shown in `hour` (YYYYMMDDHH), expiring after two hours."""
    return f"{{{impression_tag(reader_id)}}}:seen:{hour}:{reader_id}"


def impression_counts_key(tag: str, hour: str, post_id: int) -> str:
    """HASH "<post>:<author>" -> impressions in `hour` by the tag's readers."""
    return f"{{{tag}}}:count:{hour}:{_spread(post_id) % IMPRESSION_SHARDS}"


def impression_hour(name: str) -> str:
    """The hour (YYYYMMDDHH) of a count hash, taken for a drain or not."""
    return name.split(":count:", 1)[1].split(":", 1)[0]


def impressions_dropped_key(tag: str, hour: str) -> str:
    """How many impressions of `hour` were not counted because a reader's set was full."""
    return f"{{{tag}}}:dropped:{hour}"


def write_pin_key(user_id: int) -> str:
    """The user wrote to the graph within the replica's lag bound (write_pins.py)."""
    return f"pin:{{{user_id}}}"


def backfill_key(author_id: int, job_id: str) -> str:
    return f"bf:{{{author_id}}}:{job_id}"


# SCAN patterns of every home timeline's metadata (cleanup walks the timelines through them):
# the LIST layout's, and the ZSET layout's left behind; and of every author list's.
TIMELINE_META_PATTERN = "htm:{*}"
LEGACY_TIMELINE_META_PATTERN = "tlm:{*}"
AUTHOR_META_PATTERN = "apm:{*}"


def owner_of(key: str) -> int:
    """The user or author id inside a key's hash tag."""
    return int(key[key.index("{") + 1 : key.index("}")])
