"""The Lua scripts of the Redis store: each runs atomically on the server.

Numbers in Redis' Lua are doubles: record ids (µs since the epoch, about
1.8e15) are exact below 2**53, and are formatted with ``%.0f`` (``int``),
never ``tostring`` (which would print ``1.7952480026256e+15``).
"""

from __future__ import annotations

# A Lua helper shared by the scripts: format an integer-valued double exactly.
LUA_INT = "local function int(n) return string.format('%.0f', n) end\n"

LUA_NAMES = """
local function bump(key, name, sent, rid, ts)
  if name == '' or name == 'all' then return end
  local v = redis.call('HGET', key, name)
  local s, r = 0, 0
  if v then
    local a, b = string.match(v, '^(%d+) (%d+)')
    s, r = tonumber(a), tonumber(b)
  end
  if sent then s = s + 1 else r = r + 1 end
  redis.call('HSET', key, name, int(s) .. ' ' .. int(r) .. ' ' .. rid .. ' ' .. ts)
end
local function xadd(key, cand, field, value)
  -- the id derived from the record id when it is still free, else the server's
  local sid = redis.pcall('XADD', key, cand, field, value)
  if type(sid) == 'table' and sid.err then
    sid = redis.call('XADD', key, '*', field, value)
  end
  return sid
end
"""

# RFC 3339 UTC to the second, like records.ts_from_id (Howard Hinnant's civil_from_days)
LUA_TS = """
local function ts_of(secs)
  local days = math.floor(secs / 86400)
  local sod = secs - days * 86400
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524)
    - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02dZ', y, m, d,
    math.floor(sod / 3600), math.floor(sod % 3600 / 60), sod % 60)
end
"""

# KEYS: bus, meta, names, nonce[, replies].  ARGV: fields JSON ({"from":..}), from, to,
# nonce ttl, id limit (records.ID_LIMIT, 2**53 - 1 when left out)[, reply_to or ''].
# With the replies hash: ``reply_to:from`` -> the id of from's first reply to it
# (``show``/``status`` read it instead of every later entry, #19), and ``meta``
# ``replies_from``: the id from which on every record's replies are in it.
# The largest id so far is the larger of ``maxid`` and the id of the newest entry
# (another client may have XADDed a record by hand); either one above the limit is
# foreign and ignored. Past the limit the script fails with "KEI_IDS_EXHAUSTED"
# and writes nothing: ids never wrap and never repeat (#15).
APPEND = (
    LUA_INT
    + LUA_TS
    + LUA_NAMES
    + """
local again = redis.call('GET', KEYS[4])
if again then
  local rid, ts, sid = string.match(again, '^(%S+) (%S+) (%S+)$')
  return {rid, ts, sid}
end
local limit = tonumber(ARGV[5] or '') or 9007199254740991
local t = redis.call('TIME')
local rid = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('HGET', KEYS[2], 'maxid') or '0') or 0
if last > limit or last < 0 then last = 0 end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
if top then
  for i = 1, #top[2], 2 do
    if top[2][i] == 'r' then
      local d = string.match(top[2][i + 1], '"id"%s*:%s*"?(%d+)')
      if d and #d <= 16 and tonumber(d) <= limit and tonumber(d) > last then
        last = tonumber(d)
      end
    end
  end
end
if rid <= last then rid = last + 1 end
if rid > limit then
  return redis.error_reply('KEI_IDS_EXHAUSTED ' .. int(last))
end
local rids = int(rid)
-- ts is when it was sent, even when the id was pushed ahead of the clock
local ts = ts_of(tonumber(t[1]))
local rec = '{"id":' .. rids .. ',"ts":"' .. ts .. '",' .. string.sub(ARGV[1], 2)
local ms = math.floor(rid / 1000)
local sid = xadd(KEYS[1], int(ms) .. '-' .. int(rid - ms * 1000), 'r', rec)
redis.call('HSET', KEYS[2], 'maxid', rids, 'last', sid)
if KEYS[5] then
  redis.call('HSETNX', KEYS[2], 'replies_from', rids)
  if ARGV[6] and ARGV[6] ~= '' then
    redis.call('HSETNX', KEYS[5], ARGV[6] .. ':' .. ARGV[2], rids)
  end
end
bump(KEYS[3], ARGV[2], true, rids, ts)
bump(KEYS[3], ARGV[3], false, rids, ts)
redis.call('SET', KEYS[4], rids .. ' ' .. ts .. ' ' .. sid, 'EX', tonumber(ARGV[4]))
return {rids, ts, sid}
"""
)

# KEYS: bus, meta, names[, replies].  ARGV: raw line, from, to, id ('' when unknown), ts,
# id limit[, reply_to or '']. ``migrate`` fills an empty store: with the replies hash,
# ``replies_from`` is 0 (every record's replies are in it).
# Copies one existing record (migrate) keeping its bytes.
IMPORT = (
    LUA_INT
    + LUA_NAMES
    + """
local cand = '*'
local rid = tonumber(ARGV[4])
if rid and rid > 0 then
  local ms = math.floor(rid / 1000)
  cand = int(ms) .. '-' .. int(rid - ms * 1000)
end
local sid
if cand == '*' then sid = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
else sid = xadd(KEYS[1], cand, 'r', ARGV[1]) end
local upd = {'last', sid}
if rid and rid < tonumber(ARGV[6]) then
  local last = tonumber(redis.call('HGET', KEYS[2], 'maxid') or '0')
  if rid > last then upd = {'last', sid, 'maxid', ARGV[4]} end
end
redis.call('HSET', KEYS[2], unpack(upd))
if KEYS[4] then
  redis.call('HSETNX', KEYS[2], 'replies_from', '0')
  if rid and ARGV[7] and ARGV[7] ~= '' then
    redis.call('HSETNX', KEYS[4], ARGV[7] .. ':' .. ARGV[2], ARGV[4])
  end
end
if rid then
  bump(KEYS[3], ARGV[2], true, ARGV[4], ARGV[5])
  bump(KEYS[3], ARGV[3], false, ARGV[4], ARGV[5])
end
return sid
"""
)

# KEYS: cursor, readers.  ARGV: pos ('' = none), done keys (space-separated), reader
SAVE_CURSOR = """
local function parse(id)
  local a, b = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(a) or 0, tonumber(b) or 0
end
local function less(x, y)
  local a1, b1 = parse(x)
  local a2, b2 = parse(y)
  if a1 ~= a2 then return a1 < a2 end
  return b1 < b2
end
local pos = ARGV[1]
local done = {}
for k in string.gmatch(ARGV[2], '%S+') do done[k] = true end
local old = redis.call('GET', KEYS[1])
if old then
  local nl = string.find(old, '\\n', 1, true)
  if nl then
    local opos = string.sub(old, 1, nl - 1)
    if opos ~= '' and (pos == '' or less(pos, opos)) then pos = opos end
    for k in string.gmatch(string.sub(old, nl + 1), '%S+') do done[k] = true end
  end
end
local keep = {}
for k, _ in pairs(done) do
  if pos == '' or not less(k, pos) then table.insert(keep, k) end
end
table.sort(keep)
local value = pos .. '\\n' .. table.concat(keep, ' ') .. '\\n'
redis.call('SET', KEYS[1], value)
redis.call('SADD', KEYS[2], ARGV[3])
return value
"""

# KEYS: lock.  ARGV: token, ttl ms.  Extend only our own lock.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: bus, archive.  ARGV: before (exclusive), count.  Moves one page, atomically.
COMPACT = (
    LUA_INT
    + LUA_NAMES
    + """
local items = redis.call('XRANGE', KEYS[1], '-', '(' .. ARGV[1], 'COUNT', tonumber(ARGV[2]))
if #items == 0 then return 0 end
for _, item in ipairs(items) do
  local f = item[2]
  local sid = redis.pcall('XADD', KEYS[2], item[1], unpack(f))
  if type(sid) == 'table' and sid.err then redis.call('XADD', KEYS[2], '*', unpack(f)) end
end
local ms, seq = string.match(items[#items][1], '^(%d+)-(%d+)$')
redis.call('XTRIM', KEYS[1], 'MINID', ms .. '-' .. int(tonumber(seq) + 1))
return #items
"""
)
