"""The Lua scripts of the timeline store: each keeps a list and its metadata consistent in one
atomic step (a list and its metadata share a hash tag, so they live in one cluster slot)."""

from __future__ import annotations

_ZADD_BATCH = 500  # members per ZADD inside Lua (keeps unpack() far below its stack limit)

# KEYS: list, meta. ARGV: max_len, min_horizon|'', require_meta '1'|'0', state|'', built_at, ids...
# Trims exactly to max_len (rebuilds and author lists; fan-out uses PUSH_MANY_LUA).
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

# Fan-out write into one or many timelines in one call (many: single Redis only, the keys of
# different users span slots; cluster mode calls it with one timeline's two keys).
# KEYS: list1, meta1, list2, meta2, ... ARGV: max_len, trim_at, min_horizon|'', ids...
# Per timeline, exactly MERGE_LUA with require_meta '1' and no state: skipped unless its
# metadata exists; ZADD; lazy trim back to max_len above trim_at, the horizon rising to the
# oldest kept entry; the horizon written only when it changes. Returns how many were written.
PUSH_MANY_LUA = """
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
RANGE_LUA = """
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
