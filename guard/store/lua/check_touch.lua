-- Decide one touch and record it when allowed, atomically. Mirrors guard/domain/decide.py.
-- KEYS[1] prefs doc   KEYS[2] touch record   KEYS[3] hold   KEYS[4] touch index
-- KEYS[5] unscored replies   KEYS[6..] one sorted set per applicable cap rule (same order as p.rules)
-- ARGV[1] JSON plan (see guard/store/redis_store.py: _plan)
local p = cjson.decode(ARGV[1])
local t = p.t

-- A script that starts after its caller's deadline (Redis stalled, the caller timed out and
-- answered from its fail mode) records nothing: the answer the sender got stays the truth.
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > p.deadline then
  return {'late', ''}
end

if p.touch_id ~= '' then
  local prior = redis.call('HGET', KEYS[2], 'result')
  if prior and redis.call('HGET', KEYS[2], 'state') == 'recorded' then
    return {'replay', prior}
  end
end

local prefs = {}
local raw = redis.call('GET', KEYS[1])
if raw then prefs = cjson.decode(raw) end
local checks = p.checks

local function choice(map, key, default)
  if type(map) == 'table' then
    local v = map[key]
    if v ~= nil then return v end
  end
  return default
end

local reasons = {}
local function has(r) for _, x in ipairs(reasons) do if x == r then return true end end return false end
local function add(r) if not has(r) then table.insert(reasons, r) end end

if checks.unsubscribed and prefs.unsubscribed_all == true then add('UNSUBSCRIBED') end
local channel_open = choice(prefs.channels, p.channel, p.channel_default)
if channel_open == false and (checks.channel or (checks.legal_channel and p.channel_legal)) then
  add('CHANNEL_OPTED_OUT')
end
if checks.category and choice(prefs.categories, p.category, p.category_default) == false then
  add('CATEGORY_OPTED_OUT')
end
local hold_until = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if checks.hold and hold_until > t then add('NEGATIVE_SENTIMENT') end

-- time zones: a table of {from_ms, offset_minutes}
local quiet = p.quiet
if type(prefs.quiet) == 'table' and prefs.quiet.segs then quiet = prefs.quiet end
local function offset_at(segs, at)
  local cur = segs[1][2]
  for _, s in ipairs(segs) do
    if s[1] > at then break end
    cur = s[2]
  end
  return cur
end
local MIN, DAY = 60000, 86400000
local function in_quiet(at)
  if quiet.start == quiet['end'] then return false end
  local l = at + offset_at(quiet.segs, at) * MIN
  local m = math.floor(l / MIN) % 1440
  if quiet.start < quiet['end'] then return m >= quiet.start and m < quiet['end'] end
  return m >= quiet.start or m < quiet['end']
end
local function quiet_end(at)
  local off = offset_at(quiet.segs, at) * MIN
  local l = at + off
  local c = (l - (l % DAY)) + quiet['end'] * MIN
  if c <= l then c = c + DAY end
  return c - off
end

-- cap rules: events per rule, sorted ascending
local rules = p.rules
local events = {}
for i, rule in ipairs(rules) do
  if rule.limit < 0 then rule.limit = tonumber(prefs.max_week or 0) or 0 end
  local ev = {}
  local rows = redis.call('ZRANGEBYSCORE', KEYS[5 + i], '(' .. (t - rule.window), '+inf', 'WITHSCORES')
  for j = 2, #rows, 2 do table.insert(ev, tonumber(rows[j])) end
  table.sort(ev)
  events[i] = ev
end
local function active(rule) return not (rule.user and rule.limit <= 0) end
local function lower(ev, x) -- first index with ev[i] >= x
  local lo, hi = 1, #ev + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if ev[mid] < x then lo = mid + 1 else hi = mid end
  end
  return lo
end
local function usage(ev, at, w)
  local best = 0
  local function try(s)
    local n = lower(ev, s + w) - lower(ev, s)
    if n > best then best = n end
  end
  for _, e in ipairs(ev) do
    if e > at - w and e <= at then try(e) end
  end
  try(at)
  return best
end
local function cap_retry(ev, at, w, limit)
  local cands = {}
  for _, e in ipairs(ev) do if e + w > at then table.insert(cands, e + w) end end
  table.sort(cands)
  for _, c in ipairs(cands) do
    if usage(ev, c, w) < limit then return c end
  end
  return at
end

local function timed(at)
  local out = {}
  if checks.pause and (tonumber(prefs.paused_until or 0) or 0) > at then
    table.insert(out, {'PAUSED', tonumber(prefs.paused_until)})
  end
  if checks.quiet_hours and in_quiet(at) then table.insert(out, {'QUIET_HOURS', quiet_end(at)}) end
  if checks.caps then
    for i, rule in ipairs(rules) do
      if active(rule) and not rule.shadow then
        if usage(events[i], at, rule.window) + 1 > rule.limit then
          table.insert(out, {'FREQUENCY_CAP', cap_retry(events[i], at, rule.window, rule.limit)})
        end
      end
    end
  end
  return out
end

local first = timed(t)
for _, r in ipairs(first) do add(r[1]) end
local pending = checks.hold and redis.call('ZCOUNT', KEYS[5], p.now - p.lookback, '+inf') > 0
if pending then add('SENTIMENT_PENDING') end

local caps = {}
if checks.caps then
  for i, rule in ipairs(rules) do
    if active(rule) then
      local used = usage(events[i], t, rule.window)
      table.insert(caps, {rule.id, rule.limit, used, rule.window, rule.shadow and 1 or 0, (used + 1 > rule.limit) and 1 or 0})
    end
  end
end

local retry = -1
if #first > 0 then
  local at = t
  for _ = 1, 8 do
    local standing = timed(at)
    if #standing == 0 then break end
    local m = standing[1][2]
    for _, s in ipairs(standing) do if s[2] > m then m = s[2] end end
    at = m
  end
  retry = at
end
if pending then retry = math.max(retry, t + p.pending_retry) end

local blocking, only_hold = 0, true
for _, r in ipairs(reasons) do
  if r == 'UNSUBSCRIBED' or r == 'CHANNEL_OPTED_OUT' or r == 'CATEGORY_OPTED_OUT' or r == 'NEGATIVE_SENTIMENT' then
    blocking = blocking + 1
    if r ~= 'NEGATIVE_SENTIMENT' then only_hold = false end
  end
end
local verdict = 'ALLOW'
if blocking > 0 then
  verdict = 'BLOCK'
  if only_hold then
    local r = hold_until
    if pending and t + p.pending_retry > r then r = t + p.pending_retry end
    for _, s in ipairs(first) do if s[2] > r then r = s[2] end end
    retry = r
  else
    retry = -1
  end
elseif #reasons > 0 then
  verdict = 'DEFER'
else
  retry = -1
end

local recorded = false
if verdict == 'ALLOW' and not p.dry and p.touch_id ~= '' then
  recorded = true
  local keys = {}
  for i, rule in ipairs(rules) do
    local k = KEYS[5 + i]
    redis.call('ZADD', k, t, p.touch_id)
    redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. (p.now - rule.window - p.past_ms))
    redis.call('PEXPIRE', k, math.max(t - p.now, 0) + rule.window + p.past_ms)
    table.insert(keys, k)
  end
  redis.call('ZADD', KEYS[4], t, p.touch_id)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(p.index_size + 1))
  redis.call('PEXPIRE', KEYS[4], p.record_ttl)
  local result = cjson.encode({v = verdict, r = reasons, ra = retry, caps = caps, rec = true})
  redis.call('HSET', KEYS[2], 'state', 'recorded', 'result', result, 'keys', cjson.encode(keys),
    'at', t, 'channel', p.channel, 'category', p.category, 'campaign', p.campaign, 'class', p.class, 'hv', p.hv)
  redis.call('PEXPIRE', KEYS[2], math.max(t - p.now, 0) + p.record_ttl)
  return {'new', result}
end
return {'new', cjson.encode({v = verdict, r = reasons, ra = retry, caps = caps, rec = recorded})}
