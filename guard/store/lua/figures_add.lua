-- Write one flush of a tenant's figures: every increment, in one script (one command on the wire).
-- KEYS[1] campaign index, KEYS[2] strategy index, KEYS[3] campaigns harmed, KEYS[4] strategies harmed,
-- KEYS[5..] the hour buckets and all-time totals the increments name.
-- ARGV[1] how long a bucket lives (s), then per increment: bucket (a KEYS index), totals (a KEYS index, 0: none),
-- scope (c, s or t), name, figure, n, the hour's start (ms).
local keep = ARGV[1]
local touched = {}
-- Only a harm can push a rate over a brake's threshold: those mark the campaign for the next look (the
-- evaluator also looks at every active campaign each minute, for rates that rise as touches age).
local harms = {spam_complaints = true, opt_outs = true, list_unsubscribes = true, negative_replies = true}
for i = 2, #ARGV, 7 do
  local bucket, totals, scope, name, field, n, hour = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), ARGV[i + 2],
    ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6]
  redis.call('HINCRBY', KEYS[bucket], field, n)
  if not touched[bucket] then
    redis.call('EXPIRE', KEYS[bucket], keep)
    touched[bucket] = true
    if scope ~= 't' then redis.call('ZADD', KEYS[scope == 'c' and 1 or 2], 'GT', hour, name) end
  end
  if scope ~= 't' and harms[field] then redis.call('SADD', KEYS[scope == 'c' and 3 or 4], name) end
  if totals > 0 then redis.call('HINCRBY', KEYS[totals], field, n) end
end
return #ARGV
