-- Record one engagement event once per (touch, event), and what it means for the user.
-- KEYS[1] the touch record, KEYS[2] the user's engagement hash, KEYS[3] the user's unmatched events.
-- ARGV[1] touch id, ARGV[2] event, ARGV[3] occurred at (ms), ARGV[4] the channel to use when the touch is
-- unknown, ARGV[5] detail, ARGV[6] how long the user's engagement records live (ms), ARGV[7] the half-life of the
-- interaction-hours profile (ms), ARGV[8] how many of its hours are kept.
-- Returns {fresh (1: first time), known (1: the touch is guard's), channel, campaign, action, strategy,
-- the touch's send time, first (1: this is the touch's first interaction)}.
local event, at = ARGV[2], tonumber(ARGV[3])
local known = redis.call('HEXISTS', KEYS[1], 'state') == 1  -- recorded (a touch only told its best hour is not)
local fresh, channel, campaign, strategy, sent, first = 0, ARGV[4], '', '', '0', 0
local interaction = event == 'OPENED' or event == 'CLICKED' or event == 'CONVERTED'
if known then
  fresh = redis.call('HSETNX', KEYS[1], 'ev:' .. event, ARGV[3])
  local r = redis.call('HMGET', KEYS[1], 'channel', 'campaign', 'strategy', 'at')
  channel, campaign, strategy, sent = r[1] or '', r[2] or '', r[3] or '', r[4] or '0'
  if fresh == 1 and interaction then first = redis.call('HSETNX', KEYS[1], 'interacted', ARGV[3]) end
else
  fresh = redis.call('HSETNX', KEYS[3], ARGV[1] .. ' ' .. event, ARGV[3])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end
local action = 'none'

-- The interaction-hours profile (guard/domain/timing.py's add): one more interaction in the hour of the week it
-- happened, everything faded to the newest interaction, each number kept to four decimals, the heaviest hours kept.
local function profile_add()
  local half, slots = tonumber(ARGV[7]), tonumber(ARGV[8])
  local ref, total, weights = at, 0, {}
  local ref_s, total_s, rest = string.match(redis.call('HGET', KEYS[2], 'hours') or '', '^(%d+)|([%d%.]+)|(.*)$')
  local one = 1
  if ref_s then
    ref, total = tonumber(ref_s), tonumber(total_s)
    for h, w in string.gmatch(rest, '(%d+):([%d%.]+)') do weights[tonumber(h)] = tonumber(w) end
    if at >= ref then
      local f = 2 ^ (-(at - ref) / half)
      for h, w in pairs(weights) do weights[h] = w * f end
      total, ref = total * f, at
    else
      one = 2 ^ (-(ref - at) / half)
    end
  end
  local hour = (math.floor(at / 3600000) + 72) % 168
  weights[hour] = (weights[hour] or 0) + one
  local kept = {}
  for h, w in pairs(weights) do
    local r = tonumber(string.format('%.4f', w))
    if r > 0 then table.insert(kept, {h, r}) end
  end
  table.sort(kept, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  while #kept > slots do table.remove(kept) end
  table.sort(kept, function(a, b) return a[1] < b[1] end)
  local parts = {}
  for i, hw in ipairs(kept) do parts[i] = string.format('%d:%.4f', hw[1], hw[2]) end
  redis.call('HSET', KEYS[2], 'hours', string.format('%.0f|%.4f|', ref, total + one) .. table.concat(parts, ','))
end
if fresh == 1 then
  if interaction then
    -- any interaction, however late its webhook, brings the user back to the first tier
    action = 'interaction'
    local last = tonumber(redis.call('HGET', KEYS[2], 'last_int') or '0') or 0
    if at > last then redis.call('HSET', KEYS[2], 'last_int', at) end
    -- a touch counts once in the profile, at its first interaction (an open and then a click are one)
    local counted = first == 1
    if not known then counted = redis.call('HSETNX', KEYS[3], ARGV[1] .. ' interacted', ARGV[3]) == 1 end
    if counted then profile_add() end
  elseif channel ~= '' and event == 'DELIVERED' then
    local delivered = tonumber(redis.call('HGET', KEYS[2], 'delivered:' .. channel) or '0') or 0
    if at > delivered then redis.call('HSET', KEYS[2], 'delivered:' .. channel, at) end
    local bounced = tonumber(redis.call('HGET', KEYS[2], 'undeliverable:' .. channel) or '0') or 0
    if bounced > 0 and at > bounced then
      redis.call('HDEL', KEYS[2], 'undeliverable:' .. channel)
      action = 'deliverable'
    end
  elseif channel ~= '' and event == 'BOUNCED' and ARGV[5] == 'hard' then
    -- a delivery after the bounce (its webhook came first) outranks it
    local delivered = tonumber(redis.call('HGET', KEYS[2], 'delivered:' .. channel) or '0') or 0
    if at > delivered then
      redis.call('HSET', KEYS[2], 'undeliverable:' .. channel, at)
      action = 'undeliverable'
    end
  end
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return {fresh, known and 1 or 0, channel, campaign, action, strategy, sent, first}
