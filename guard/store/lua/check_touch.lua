-- Decide one touch and record it when allowed, atomically. guard/domain/decide.py is its specification:
-- every reason given here is given there, and the agreement property test holds the two together.
-- KEYS[1] prefs doc   KEYS[2] touch record   KEYS[3] hold   KEYS[4] touch index   KEYS[5] unscored replies
-- KEYS[6] the user's marketing touches by time   KEYS[7] engagement (last interaction, tier calibration)
-- KEYS[8..] one sorted set per cap rule in ARGV's rules, then one for user_rule when it is given
-- ARGV[1] the policy's part for this class, channel and category (JSON, the same for every such touch)
-- ARGV[2] this touch (JSON): its fields under their domain names, the rules that apply, the clock
-- Returns {'new'|'replay', result JSON}, {'late', ''} (started after the caller's deadline: nothing done)
-- or {'zone', name} (the user's own quiet hours are in a zone the caller did not send: nothing done).
local policy = cjson.decode(ARGV[1])
local touch = cjson.decode(ARGV[2])

-- A script that starts after its caller's deadline (Redis stalled, the caller timed out and
-- answered from its fail mode) records nothing: the answer the sender got stays the truth.
local clock = redis.call('TIME')
if tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000) > touch.deadline_ms then
  return {'late', ''}
end

local at = touch.at_ms
local promised = 0  -- the best hour this touch was told to wait for before (timing BEST_HOUR)
if touch.touch_id ~= '' then
  local prior = redis.call('HMGET', KEYS[2], 'state', 'result', 'best_at')
  if prior[1] == 'recorded' and prior[2] then return {'replay', prior[2]} end
  promised = tonumber(prior[3] or '0') or 0
end

local prefs = {}
local raw = redis.call('GET', KEYS[1])
if raw then prefs = cjson.decode(raw) end
local checks = policy.checks

-- quiet hours: the user's own (in their zone, whose offsets the caller sends), else the policy's
local quiet = policy.default_quiet
if checks.quiet_hours and type(prefs.quiet) == 'table' then
  local zone = touch.zone
  if type(zone) ~= 'table' or zone.time_zone ~= prefs.quiet.tz then return {'zone', prefs.quiet.tz} end
  quiet = {start_minute = prefs.quiet.start, end_minute = prefs.quiet['end'], segments = zone.segments}
end

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
local channel_open = choice(prefs.channels, touch.channel, policy.channel_default)
if channel_open == false then
  -- closed for marketing or for everything; a closure from before scopes reads as the policy's scope_before
  local scope = choice(prefs.scopes, touch.channel, policy.channel_scope_before)
  if checks.channel or (checks.stopped_channel and scope == 'all') then add('CHANNEL_OPTED_OUT') end
elseif checks.channel and choice(prefs.pending, touch.channel, false) == true then
  add('CONSENT_PENDING')  -- opted back in where the policy asks for a confirmation, not confirmed yet
end
-- the topic on this channel (the grid's cell), else the topic's own setting, else the policy's default
local topic_open = choice(prefs.grid, touch.channel .. '.' .. touch.category, nil)
if topic_open == nil then topic_open = choice(prefs.categories, touch.category, policy.category_default) end
if checks.category and topic_open == false then
  add('CATEGORY_OPTED_OUT')
end
-- The engagement hash in one read: the channel's deliverability, and (for a class with tiers) what picks the tier.
local eng = policy.engagement
if type(eng) ~= 'table' then eng = nil end
local e = redis.call('HMGET', KEYS[7], 'undeliverable:' .. touch.channel, 'last_int', 'tier', 'tier_until')
if e[1] then add('UNDELIVERABLE') end
if touch.braked == true then add('CAMPAIGN_FATIGUED') end  -- its campaign or strategy is braked (the caller knows)
local hold_until = 0  -- read only where holds apply (a hold's retry is needed only when it is a reason)
if checks.hold then hold_until = tonumber(redis.call('GET', KEYS[3]) or '0') or 0 end
if hold_until > at then add('NEGATIVE_SENTIMENT') end

local function offset_at(segs, t)
  local cur = segs[1][2]
  for _, s in ipairs(segs) do
    if s[1] > t then break end
    cur = s[2]
  end
  return cur
end
local MIN, DAY = 60000, 86400000
local function in_quiet(t)
  if quiet.start_minute == quiet.end_minute then return false end
  local m = math.floor((t + offset_at(quiet.segments, t) * MIN) / MIN) % 1440
  if quiet.start_minute < quiet.end_minute then return m >= quiet.start_minute and m < quiet.end_minute end
  return m >= quiet.start_minute or m < quiet.end_minute
end
local function quiet_end(t)
  local off = offset_at(quiet.segments, t) * MIN
  local l = t + off
  local c = (l - (l % DAY)) + quiet.end_minute * MIN
  if c <= l then c = c + DAY end
  return c - off
end

-- cap rules: the policy's that apply, then the user's own weekly maximum (its limit is in the prefs)
local rules = {}
for i, rule in ipairs(touch.rules) do rules[i] = rule end
if type(touch.user_rule) == 'table' then
  local limit = tonumber(prefs.max_week or 0) or 0
  if limit > 0 then
    table.insert(rules, {rule_id = touch.user_rule.rule_id, limit = limit, window_ms = touch.user_rule.window_ms,
                         shadow = false})
  end
end
-- A cap set holds at most a window and a day of touches (older ones are trimmed when a write finds them), so it
-- is read whole: the window is cut here, and a write trims only when something older was seen.
local events, stale, keep_from = {}, {}, {}
for i, rule in ipairs(rules) do
  local ev = {}
  local rows = redis.call('ZRANGE', KEYS[7 + i], 0, -1, 'WITHSCORES')
  local from = at - rule.window_ms
  keep_from[i] = touch.now_ms - rule.window_ms - policy.past_ms
  for j = 2, #rows, 2 do
    local score = tonumber(rows[j])
    if score > from then table.insert(ev, score) end
    if score < keep_from[i] then stale[i] = true end
  end
  table.sort(ev)
  events[i] = ev
end
local function lower(ev, x) -- first index with ev[i] >= x
  local lo, hi = 1, #ev + 1
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if ev[mid] < x then lo = mid + 1 else hi = mid end
  end
  return lo
end
local function usage(ev, t, w)
  local best = 0
  local function try(s)
    local n = lower(ev, s + w) - lower(ev, s)
    if n > best then best = n end
  end
  for _, e in ipairs(ev) do
    if e > t - w and e <= t then try(e) end
  end
  try(t)
  return best
end
local function cap_retry(ev, t, w, limit)
  local cands = {}
  for _, e in ipairs(ev) do if e + w > t then table.insert(cands, e + w) end end
  table.sort(cands)
  for _, c in ipairs(cands) do
    if usage(ev, c, w) < limit then return c end
  end
  return t
end

-- engagement tiers (guard/domain/engagement.py): the run of ignored marketing touches since the last
-- interaction picks the tier, unless a manual calibration holds; a tier's caps count every marketing touch
local marketing, last_int, override, override_until = {}, 0, '', 0
if eng then
  local rows = redis.call('ZRANGE', KEYS[6], 0, -1, 'WITHSCORES')
  for j = 2, #rows, 2 do table.insert(marketing, tonumber(rows[j])) end
  table.sort(marketing)
  last_int = tonumber(e[2] or '0') or 0
  override, override_until = e[3] or '', tonumber(e[4] or '0') or 0
end
local function tier_at(t)
  if override ~= '' and override_until > t then
    for _, tier in ipairs(eng.tiers) do if tier.name == override then return tier end end
  end
  local run = 0
  for _, m in ipairs(marketing) do
    if m > last_int and m <= t - eng.ignore_after_ms then run = run + 1 end
  end
  local found = eng.tiers[1]
  for _, tier in ipairs(eng.tiers) do
    if tier.after_ignored <= run then found = tier end
  end
  return found
end

local function timed(t)
  local out = {}
  if checks.pause and (tonumber(prefs.paused_until or 0) or 0) > t then
    table.insert(out, {'PAUSED', tonumber(prefs.paused_until)})
  end
  if checks.quiet_hours and in_quiet(t) then table.insert(out, {'QUIET_HOURS', quiet_end(t)}) end
  if checks.caps then
    for i, rule in ipairs(rules) do
      if not rule.shadow and usage(events[i], t, rule.window_ms) + 1 > rule.limit then
        table.insert(out, {'FREQUENCY_CAP', cap_retry(events[i], t, rule.window_ms, rule.limit)})
      end
    end
  end
  if eng then
    local tier = tier_at(t)
    if not tier.shadow then
      for _, rule in ipairs(tier.rules) do
        if usage(marketing, t, rule.window_ms) + 1 > rule.limit then
          table.insert(out, {'LOW_ENGAGEMENT', cap_retry(marketing, t, rule.window_ms, rule.limit)})
        end
      end
    end
  end
  return out
end

local first = timed(at)
for _, r in ipairs(first) do add(r[1]) end

-- the user's best hour (guard/domain/timing.py), when the sender asked for it and this touch was not told
-- an hour before that has come: the heaviest hour of their week in the next 24 h, outside their quiet hours
local best = 0
if policy.timing and touch.timing == 'best_hour' and not (promised > 0 and at >= promised) then
  local raw_profile = redis.call('HGET', KEYS[7], 'hours')
  local ref, total, rest = string.match(raw_profile or '', '^(%d+)|([%d%.]+)|(.*)$')
  if ref and tonumber(total) * 2 ^ (-(at - tonumber(ref)) / policy.timing.half_life_ms) >= policy.timing.min_interactions then
    local HOUR = 3600000
    local weights = {}
    for h, w in string.gmatch(rest, '(%d+):([%d%.]+)') do weights[tonumber(h)] = tonumber(w) end
    local first_hour, best_weight = at - at % HOUR, -1
    for k = 0, 23 do
      local hour = first_hour + k * HOUR
      local start = math.max(hour, at)
      if checks.quiet_hours and in_quiet(start) then start = quiet_end(start) end
      if start < hour + HOUR then
        local w = weights[(math.floor(hour / HOUR) + 72) % 168] or 0
        if w > best_weight then best, best_weight = start, w end
      end
    end
    if best <= at then best = 0 end
  end
end
if best > 0 then add('BEST_TIME') end
local pending = checks.hold and redis.call('ZCOUNT', KEYS[5], touch.now_ms - policy.lookback_ms, '+inf') > 0
if pending then add('SENTIMENT_PENDING') end

local caps = {}
if checks.caps then
  for i, rule in ipairs(rules) do
    local used = usage(events[i], at, rule.window_ms)
    table.insert(caps, {rule.rule_id, rule.limit, used, rule.window_ms, rule.shadow and 1 or 0,
                        (used + 1 > rule.limit) and 1 or 0})
  end
end

local tier_now = nil
if eng then
  tier_now = tier_at(at)
  for _, rule in ipairs(tier_now.rules) do
    local used = usage(marketing, at, rule.window_ms)
    table.insert(caps, {'tier.' .. tier_now.name .. '.' .. rule.rule_id, rule.limit, used, rule.window_ms,
                        tier_now.shadow and 1 or 0, (used + 1 > rule.limit) and 1 or 0})
  end
end

local retry = -1
if #first > 0 or best > 0 then
  local t = math.max(at, best)  -- the best hour, or the first moment after it the timed reasons allow
  for _ = 1, 8 do
    local standing = timed(t)
    if #standing == 0 then break end
    local m = standing[1][2]
    for _, s in ipairs(standing) do if s[2] > m then m = s[2] end end
    t = m
  end
  retry = t
end
if pending then retry = math.max(retry, at + policy.pending_retry_ms) end

local blocks = {}  -- the reasons that BLOCK (the rest DEFER), as guard.domain.types.BLOCKING sends them
for _, r in ipairs(policy.blocking) do blocks[r] = true end
local blocking, only_hold = 0, true
for _, r in ipairs(reasons) do
  if blocks[r] then
    blocking = blocking + 1
    if r ~= 'NEGATIVE_SENTIMENT' then only_hold = false end
  end
end
local verdict = 'ALLOW'
if blocking > 0 then
  verdict = 'BLOCK'
  if only_hold then
    local r = hold_until
    if pending and at + policy.pending_retry_ms > r then r = at + policy.pending_retry_ms end
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

local result = {verdict = verdict, reasons = reasons, retry_at_ms = retry, caps = caps, recorded = false,
                tier = tier_now and tier_now.name or ''}
if verdict == 'ALLOW' and not touch.dry_run and touch.touch_id ~= '' then
  result.recorded = true
  local keys = {}
  for i, rule in ipairs(rules) do
    local k = KEYS[7 + i]
    redis.call('ZADD', k, at, touch.touch_id)
    if stale[i] then redis.call('ZREMRANGEBYSCORE', k, '-inf', '(' .. keep_from[i]) end
    redis.call('PEXPIRE', k, math.max(at - touch.now_ms, 0) + rule.window_ms + policy.past_ms)
    table.insert(keys, k)
  end
  if touch.touch_class == 'marketing' then
    redis.call('ZADD', KEYS[6], at, touch.touch_id)
    if not eng or #marketing >= policy.marketing_size then
      redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -(policy.marketing_size + 1))
    end
    redis.call('PEXPIRE', KEYS[6], policy.record_ttl_ms)
    table.insert(keys, KEYS[6])
  end
  redis.call('ZADD', KEYS[4], at, touch.touch_id)
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(policy.index_size + 1))
  redis.call('PEXPIRE', KEYS[4], policy.record_ttl_ms)
  local encoded = cjson.encode(result)
  redis.call('HSET', KEYS[2], 'state', 'recorded', 'result', encoded, 'keys', cjson.encode(keys), 'at', at,
    'channel', touch.channel, 'category', touch.category, 'campaign', touch.campaign_id,
    'class', touch.touch_class, 'hv', touch.high_value and '1' or '0', 'strategy', touch.strategy_id)
  redis.call('PEXPIRE', KEYS[2], math.max(at - touch.now_ms, 0) + policy.record_ttl_ms)
  return {'new', encoded}
end
if best > 0 and verdict == 'DEFER' and not touch.dry_run and touch.touch_id ~= '' then
  -- the hour named is kept with the touch: coming back at it, the touch goes (no chase after a later hour)
  redis.call('HSET', KEYS[2], 'best_at', best)
  if redis.call('PTTL', KEYS[2]) < 0 then redis.call('PEXPIRE', KEYS[2], math.max(best - touch.now_ms, 0) + 86400000) end
end
return {'new', cjson.encode(result)}
