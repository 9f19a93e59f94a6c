-- Removes a batch that could not be fully queued, releasing every hold of its items on the
-- tenant's and the day's counters (BatchStore#delete).
-- KEYS: [1] batch meta, [2] batch items, [3] batch reservations, [4] the tenant's batch list.
-- ARGV: [1] batch id.
-- Returns: 1.
--- @include "hold"

for _, itemId in ipairs(redis.call('HKEYS', KEYS[3])) do releaseHold(KEYS[1], KEYS[3], itemId) end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], ARGV[1])
return 1
