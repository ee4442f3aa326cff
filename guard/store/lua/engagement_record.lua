-- Record one engagement event once per (touch, event), and what it means for the user.
-- KEYS[1] the touch record, KEYS[2] the user's engagement hash, KEYS[3] the user's unmatched events.
-- ARGV[1] touch id, ARGV[2] event, ARGV[3] occurred at (ms), ARGV[4] the channel to use when the touch is
-- unknown, ARGV[5] detail, ARGV[6] how long the user's engagement records live (ms).
-- Returns {fresh (1: first time), known (1: the touch is guard's), channel, campaign, action, strategy,
-- the touch's send time, first (1: this is the touch's first interaction)}.
local event, at = ARGV[2], tonumber(ARGV[3])
local known = redis.call('EXISTS', KEYS[1]) == 1
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
if fresh == 1 then
  if interaction then
    -- any interaction, however late its webhook, brings the user back to the first tier
    action = 'interaction'
    local last = tonumber(redis.call('HGET', KEYS[2], 'last_int') or '0') or 0
    if at > last then redis.call('HSET', KEYS[2], 'last_int', at) end
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
