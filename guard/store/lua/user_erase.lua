-- Erase a user: delete every key found for them, then leave only the suppression record (the opt-outs
-- consent law needs, without content) and a ledger holding one erasure event.
-- KEYS[1] prefs doc, KEYS[2] consent ledger, KEYS[3..] every other key of the user.
-- ARGV[1] the suppression record (a preferences document), ARGV[2] the erasure event (JSON flat field list).
local removed = 0
for i = 1, #KEYS do
  removed = removed + redis.call('DEL', KEYS[i])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', unpack(cjson.decode(ARGV[2])))
return removed
