-- Drop a reply's words once its retention has passed; its score, label and action stay.
-- KEYS[1] the reply hash. ARGV[1] now (ms). Answers 1 when words were dropped.
if redis.call('HEXISTS', KEYS[1], 'text') == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'text')
redis.call('HSET', KEYS[1], 'text_dropped', ARGV[1])
return 1
