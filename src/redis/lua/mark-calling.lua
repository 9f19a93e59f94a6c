-- Marks an item's hold as spent on a call under way (SpendLedger#markCalling).
-- KEYS: [1] batch meta, [2] batch reservations.
-- ARGV: [1] item id.
-- Returns: 1 marked, 0 no hold, 2 the batch is being cancelled (no call may leave for it any
--   more).

local status = redis.call('HGET', KEYS[1], 'status')
if status == 'cancelling' or status == 'cancelled' then return 2 end
local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw then return 0 end
local hold = cjson.decode(raw)
hold.calling = 1
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(hold))
return 1
