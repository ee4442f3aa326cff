-- Store a reply durably before anything else looks at it; a known reply_id changes nothing.
-- KEYS[1] reply hash, KEYS[2] the user's reply index, KEYS[3] the user's unscored replies,
-- KEYS[4] the user's engagement hash (a reply is an interaction: it brings the user back to the first tier),
-- KEYS[5] the record of the touch it replies to, if any (marked interacted, once: the campaign's ignore rate).
-- ARGV[1] reply id, ARGV[2] received at (ms), ARGV[3] retention (ms), ARGV[4] '1' when the reply is an
-- interaction (a spam complaint, filed as a reply, is not), ARGV[5..] field/value pairs.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {'exists', cjson.encode(redis.call('HGETALL', KEYS[1]))}
end
local fields = {}
for i = 5, #ARGV do table.insert(fields, ARGV[i]) end
redis.call('HSET', KEYS[1], 'state', 'unscored', unpack(fields))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
local first, sent, strategy = 0, '0', ''
if ARGV[4] == '1' then
  local last = tonumber(redis.call('HGET', KEYS[4], 'last_int') or '0') or 0
  if tonumber(ARGV[2]) > last then redis.call('HSET', KEYS[4], 'last_int', ARGV[2]) end
  redis.call('PEXPIRE', KEYS[4], ARGV[3])
  if redis.call('HEXISTS', KEYS[5], 'state') == 1 then  -- a touch guard recorded
    first = redis.call('HSETNX', KEYS[5], 'interacted', ARGV[2])
    local r = redis.call('HMGET', KEYS[5], 'at', 'strategy')
    sent, strategy = r[1] or '0', r[2] or ''
  end
end
return {'new', cjson.encode({first, sent, strategy})}
