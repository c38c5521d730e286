"""The Lua scripts of the timeline store: each keeps a list and its metadata consistent in one
atomic step (a list and its metadata share a hash tag, so they live in one cluster slot). Home
timelines are LISTs of integer ids (LIST_*), author lists ZSETs (MERGE_LUA, RANGE_LUA)."""

from __future__ import annotations

from .keys import TIMELINE_KEY_TEMPLATE, TIMELINE_META_KEY_TEMPLATE, lua_key_of_user

_ZADD_BATCH = 500  # members per ZADD inside Lua (keeps unpack() far below its stack limit)

# KEYS: list, meta. ARGV: max_len, min_horizon|'', require_meta '1'|'0', state|'', built_at, ids...
# Author lists (ZSETs): a new post, a rebuild commit. Trims exactly to max_len.
MERGE_LUA = """
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

# -- home timelines: LISTs of ids, newest first ---------------------------------------------
# Ids travel and are stored as plain decimals (Redis keeps them as integer listpack entries).
# Lua numbers are doubles (53 bits), so the scripts compare ids as strings: a shorter decimal is
# smaller, equal lengths compare bytewise. A list holds no duplicate and no id below its horizon.
_LIST_LIB = r"""
local function lt(a, b)
  if #a ~= #b then return #a < #b end
  return a < b
end
local function rewrite(list, ids, n)
  redis.call('DEL', list)
  local i = 1
  while i <= n do
    local j = math.min(n, i + BATCH - 1)
    redis.call('RPUSH', list, unpack(ids, i, j))
    i = j + 1
  end
end
-- Lazy trim back to maxlen; the horizon rises to the oldest kept id.
local function trim(list, meta, maxlen)
  redis.call('LTRIM', list, 0, maxlen - 1)
  local tail = redis.call('LINDEX', list, -1)
  local h = redis.call('HGET', meta, 'h') or ''
  if tail and (h == '' or lt(h, tail)) then redis.call('HSET', meta, 'h', tail) end
end
-- One id older than the head and not in the list: binary search of its place (LINDEX), then
-- LINSERT before the first smaller id (or RPUSH). Returns the new length.
local function insert_sorted(list, id)
  local n = redis.call('LLEN', list)
  local lo, hi = 0, n
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if lt(redis.call('LINDEX', list, mid), id) then hi = mid else lo = mid + 1 end
  end
  if lo == n then return redis.call('RPUSH', list, id) end
  return redis.call('LINSERT', list, 'BEFORE', redis.call('LINDEX', list, lo), id)
end
-- Merge descending unique `ins` into the list (one LRANGE, one rewrite if anything changed),
-- dropping ids below the horizon (raised to minh first), trimming to maxlen above `limit`.
local function merge(list, meta, ins, maxlen, limit, minh)
  local h0 = redis.call('HGET', meta, 'h') or ''
  local h = h0
  if minh ~= '' and (h == '' or lt(h, minh)) then h = minh end
  local cur = redis.call('LRANGE', list, 0, -1)
  local out, i, j, added = {}, 1, 1, 0
  local nc, ni = #cur, #ins
  while i <= nc or j <= ni do
    local a, b = cur[i], ins[j]
    local x, new = a, false
    if a == nil then x, new = b, true; j = j + 1
    elseif b == nil then i = i + 1
    elseif a == b then i = i + 1; j = j + 1
    elseif lt(b, a) then i = i + 1
    else x, new = b, true; j = j + 1 end
    if h ~= '' and lt(x, h) then break end
    out[#out + 1] = x
    if new then added = added + 1 end
  end
  local n = #out
  if n > limit then
    n = maxlen
    if n > 0 and (h == '' or lt(h, out[n])) then h = out[n] end
  end
  if added > 0 or n ~= nc then rewrite(list, out, n) end
  if h ~= h0 then redis.call('HSET', meta, 'h', h) end
end
""".replace("BATCH", str(_ZADD_BATCH))

# Fan-out write into one timeline (list, meta). Skipped unless its metadata exists (a non-empty
# list implies it). One id and no horizon (a post's fan-out, the common case): newer than the
# head -> LPUSH, O(1); equal to the head -> nothing; older (a chunk job arriving late, a
# redelivery) -> below the horizon: skipped; present (LPOS): nothing; else inserted in place.
# Several ids or a horizon (backfill, follow): merge. Above trim_at the list is trimmed back to
# max_len, the horizon rising to the oldest kept id. Returns 1 if the timeline exists.
_PUSH_ONE_LIB = r"""
local function push_one(list, meta, ins, maxlen, trim_at, minh)
  local n = #ins
  local head = false
  if n == 1 and minh == '' then head = redis.call('LINDEX', list, 0) end
  -- A list that exists has its metadata (both are written together, dropped together, and
  -- never evicted): only an empty or a missing timeline needs the EXISTS.
  if not head and redis.call('EXISTS', meta) == 0 then return 0 end
  if n == 1 and minh == '' then
    local id = ins[1]
    if head and lt(head, id) then
      if redis.call('LPUSH', list, id) > trim_at then trim(list, meta, maxlen) end
    elseif head ~= id then
      local h = redis.call('HGET', meta, 'h') or ''
      if h == '' or not lt(id, h) then
        if not head then
          redis.call('RPUSH', list, id)
        elseif not redis.call('LPOS', list, id) then
          if insert_sorted(list, id) > trim_at then trim(list, meta, maxlen) end
        end
      end
    end
  elseif n > 0 or minh ~= '' then
    merge(list, meta, ins, maxlen, trim_at, minh)
  end
  return 1
end
"""

# Fan-out write into the timelines named by KEYS (cluster mode: one timeline per call, its two
# keys share a slot). KEYS: list1, meta1, list2, meta2, ... ARGV: max_len, trim_at,
# min_horizon|'', ids (descending, unique)... Returns how many timelines exist.
LIST_PUSH_LUA = (
    _LIST_LIB
    + _PUSH_ONE_LIB
    + """
local ins = {}
for j = 4, #ARGV do ins[#ins + 1] = ARGV[j] end
local maxlen, trim_at = tonumber(ARGV[1]), tonumber(ARGV[2])
local written = 0
for k = 1, #KEYS, 2 do
  written = written + push_one(KEYS[k], KEYS[k + 1], ins, maxlen, trim_at, ARGV[3])
end
return written
"""
)

# The same into many users' timelines in one call, the users given as ONE argument of
# comma-separated ids (single Redis only). Sending two keys per follower cost the worker more
# than the server's work (redis-py packs each argument: ~3.5 us per follower); one joined
# argument costs ~0.1 us. The keys are then built here, from the templates of keys.py, which
# Redis advises against because a cluster cannot route such a call: in cluster mode the store
# calls LIST_PUSH_LUA, with declared keys, instead.
# ARGV: max_len, trim_at, min_horizon|'', user ids "1,2,3", ids (descending, unique)...
LIST_PUSH_USERS_LUA = (
    _LIST_LIB
    + _PUSH_ONE_LIB
    + """
local ins = {}
for j = 5, #ARGV do ins[#ins + 1] = ARGV[j] end
local maxlen, trim_at = tonumber(ARGV[1]), tonumber(ARGV[2])
local written = 0
for u in string.gmatch(ARGV[4], '%d+') do
  written = written + push_one(TIMELINE_KEY_LUA, TIMELINE_META_KEY_LUA, ins, maxlen, trim_at,
    ARGV[3])
end
return written
""".replace("TIMELINE_KEY_LUA", lua_key_of_user(TIMELINE_KEY_TEMPLATE)).replace(
        "TIMELINE_META_KEY_LUA", lua_key_of_user(TIMELINE_META_KEY_TEMPLATE)
    )
)

# The same for cluster mode, sent to the node that serves every one of the users' timelines
# (the store groups them by the slot map): Redis checks each key the script touches is local
# and refuses the call otherwise (a slot moved meanwhile), and the store then writes those
# users' timelines one call each, with declared keys. The flag lets one call touch keys of many
# slots (Redis 7 and later; ElastiCache and Valkey 7 have it).
LIST_PUSH_NODE_USERS_LUA = "#!lua flags=allow-cross-slot-keys\n" + LIST_PUSH_USERS_LUA

# Rebuild commit. KEYS: list, meta, legacy list, legacy meta (the ZSET layout's, deleted).
# ARGV: max_len, min_horizon|'', state, built_at, ids (descending, unique)... The rebuilt ids are
# merged with what the list holds (fan-out wrote into it while it was `building`), entries below
# the horizon dropped, trimmed exactly to max_len, written back in order; then marked.
LIST_COMMIT_LUA = (
    _LIST_LIB
    + """
redis.call('DEL', KEYS[3], KEYS[4])
local ins = {}
for j = 5, #ARGV do ins[#ins + 1] = ARGV[j] end
local maxlen = tonumber(ARGV[1])
merge(KEYS[1], KEYS[2], ins, maxlen, maxlen, ARGV[2])
redis.call('HSET', KEYS[2], 'state', ARGV[3], 'built_at', ARGV[4])
return 1
"""
)

# Remove ids from timelines. KEYS: lists (one per call in cluster mode). ARGV: ids... A few ids
# (retract): LREM each, stopping at the first match (no duplicates). More (unmerge, block): one
# LRANGE, filter, rewrite. Missing lists are no-ops; the horizon does not move.
LIST_REMOVE_LUA = (
    _LIST_LIB
    + """
local few = #ARGV <= 4
local drop = {}
for _, id in ipairs(ARGV) do drop[id] = true end
for _, list in ipairs(KEYS) do
  if few then
    for _, id in ipairs(ARGV) do redis.call('LREM', list, 1, id) end
  else
    local cur = redis.call('LRANGE', list, 0, -1)
    local out = {}
    for _, m in ipairs(cur) do
      if not drop[m] then out[#out + 1] = m end
    end
    if #out < #cur then rewrite(list, out, #out) end
  end
end
return 1
"""
)

# KEYS: list, meta. ARGV: below|'' (exclusive), count. Returns {state, h, ids...}: up to `count`
# ids strictly below `below`, newest first, none below the horizon. The first id below the cursor
# is found by binary search (LINDEX), then one LRANGE.
LIST_RANGE_LUA = (
    _LIST_LIB
    + """
local meta = redis.call('HMGET', KEYS[2], 'state', 'h')
local h = meta[2] or ''
local out = {meta[1] or '', h}
local below = ARGV[1]
local want = tonumber(ARGV[2])
local start = 0
if below ~= '' then
  local head = redis.call('LINDEX', KEYS[1], 0)
  if head and not lt(head, below) then
    local lo, hi = 0, redis.call('LLEN', KEYS[1])
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if lt(redis.call('LINDEX', KEYS[1], mid), below) then hi = mid else lo = mid + 1 end
    end
    start = lo
  end
end
if want > 0 then
  for _, m in ipairs(redis.call('LRANGE', KEYS[1], start, start + want - 1)) do
    if h ~= '' and lt(m, h) then break end
    out[#out + 1] = m
  end
end
return out
"""
)


# -- author lists: ZSETs ----------------------------------------------------------------------

# KEYS: list, meta. ARGV: below|'' (exclusive), count. Returns {state, h, ids...}: up to `count`
# members strictly below `below`, newest first. Scores are rounded ids, so members in the same
# double as `below` are compared as fixed-width strings.
_RANGE_ONE_LIB = """
local function range_one(list, meta_key, below, want)
  local meta = redis.call('HMGET', meta_key, 'state', 'h')
  local out = {meta[1] or '', meta[2] or ''}
  local maxs = '+inf'
  if below ~= '' then maxs = below end
  local offset = 0
  local got = 0
  while got < want do
    local batch = redis.call('ZREVRANGEBYSCORE', list, maxs, '-inf', 'LIMIT', offset, want)
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
end
"""

RANGE_LUA = (
    _RANGE_ONE_LIB
    + """
return range_one(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]))
"""
)

# Many author lists in one call (single Redis: the keys of different authors span slots).
# KEYS: list1, meta1, list2, meta2, ... ARGV as RANGE_LUA. Returns one RANGE_LUA reply per list:
# a read with 20 pulled authors costs one call to pack and one reply to parse, not 20.
RANGE_MANY_LUA = (
    _RANGE_ONE_LIB
    + """
local out = {}
local want = tonumber(ARGV[2])
for k = 1, #KEYS, 2 do out[#out + 1] = range_one(KEYS[k], KEYS[k + 1], ARGV[1], want) end
return out
"""
)


# KEYS: list, meta, then any keys to drop with them (the ZSET layout's). ARGV: built_before (ms).
# Drops the timeline unless it was (re)built at or
# after `built_before` (its owner came back meanwhile and is reading it) or a rebuild started
# since then (`building` with `rebuild_at`: fan-out writes into it until the rebuild commits).
# A rebuild that started before `built_before` and never committed (its reader crashed) is
# dropped like any stale timeline.
DROP_LUA = """
local meta = redis.call('HMGET', KEYS[2], 'state', 'built_at', 'rebuild_at')
local since = tonumber(ARGV[1])
if meta[1] == 'building' and tonumber(meta[3] or '0') >= since then return 0 end
local built = tonumber(meta[2] or '0')
if built >= since then return 0 end
return redis.call('DEL', unpack(KEYS)) > 0 and 1 or 0
"""


# KEYS: ap, apm of one author. ARGV: silent_since (zero-padded post id), silent_since (ms),
# rebuilt_before (ms). Drops an author list (both keys) whose newest member is older than the
# first id of the silent bound and which was not (re)built since it either: the author has not
# posted for that long and no reader has brought the list back. The check and the DEL are one
# step, so a post that reaches the list first keeps it, and one that comes after finds it
# missing and leaves it so (MongoDB has the post; the next reader rebuilds the list with it).
# A list being rebuilt since `rebuilt_before` is kept: its rebuild has read MongoDB and will
# commit, and a post arriving meanwhile must find the list to be merged into it.
DROP_SILENT_AUTHOR_LUA = """
local meta = redis.call('HMGET', KEYS[2], 'state', 'built_at', 'rebuild_at')
if meta[1] == 'building' and tonumber(meta[3] or '0') >= tonumber(ARGV[3]) then return 0 end
if tonumber(meta[2] or '0') >= tonumber(ARGV[2]) then return 0 end
local newest = redis.call('ZRANGE', KEYS[1], -1, -1)[1]
if newest and newest >= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1], KEYS[2]) > 0 and 1 or 0
"""


# Move up to ARGV[1] events from the buffer to the draining list, atomically, and return them.
# What sits in the draining list was taken but maybe not stored yet; a later drain stores it
# again (the store ignores events it already has), so a crash between the two loses nothing.
TAKE_EVENTS_LUA = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
end
return items
"""


# Post cache fill. KEYS: post keys. ARGV: ttl, then one body per key (JSON of Post.to_dict).
# A live body never overwrites a tombstone (a cached deleted post): a read that loaded the body
# before a delete must not bring the post back after it. Tombstones themselves always write.
CACHE_FILL_LUA = """
local ttl = ARGV[1]
local written = 0
for i, key in ipairs(KEYS) do
  local body = ARGV[i + 1]
  local live = string.find(body, '"deleted_at":null', 1, true) ~= nil
  local write = true
  if live then
    local current = redis.call('GET', key)
    if current and string.find(current, '"deleted_at":null', 1, true) == nil then
      write = false
    end
  end
  if write then
    redis.call('SET', key, body, 'EX', ttl)
    written = written + 1
  end
end
return written
"""


# Count impressions. KEYS: seen set, index, dropped counter, then one count hash per post.
# ARGV: cap, seen ttl (s), then "<post>:<author>" per post (same order as the count keys).
# A post already in the reader's seen set for this hour is not counted again; a full set counts
# the rest as dropped (bounded memory whatever one reader does). Returns how many were counted.
COUNT_IMPRESSIONS_LUA = """
local cap = tonumber(ARGV[1])
local counted = 0
local dropped = 0
for i = 3, #ARGV do
  local field = ARGV[i]
  local post = string.match(field, '^[^:]+')
  if redis.call('SISMEMBER', KEYS[1], post) == 0 then
    if redis.call('SCARD', KEYS[1]) >= cap then
      dropped = dropped + 1
    else
      redis.call('SADD', KEYS[1], post)
      local counts = KEYS[i + 1]
      redis.call('HINCRBY', counts, field, 1)
      redis.call('SADD', KEYS[2], counts)
      counted = counted + 1
    end
  end
end
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
if dropped > 0 then
  redis.call('INCRBY', KEYS[3], dropped)
  redis.call('EXPIRE', KEYS[3], 172800)
end
return counted
"""

# Take the count hashes to drain. KEYS: index, draining index. ARGV: batch id.
# Each indexed hash is renamed to "<name>:<batch>" (new counts start a fresh hash) and listed in
# the draining index until its counts are stored. Returns the draining names.
TAKE_IMPRESSION_COUNTS_LUA = """
local taken = {}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  redis.call('SREM', KEYS[1], name)
  if redis.call('EXISTS', name) == 1 then
    local draining = name .. ':' .. ARGV[1]
    redis.call('RENAME', name, draining)
    redis.call('SADD', KEYS[2], draining)
    taken[#taken + 1] = draining
  end
end
return taken
"""

# Release a lock only if this holder still owns it. KEYS: lock. ARGV: token.
RELEASE_LOCK_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
