-- Counts what an item holds as spent, on the batch and on every counter it was held against,
-- and releases it (SpendLedger#chargeHold).
-- KEYS: [1] batch meta, [2] batch reservations.
-- ARGV: [1] item id.
-- Returns: the micros charged (0 when the item held nothing).
--- @include "hold"

local hold = releaseHold(KEYS[1], KEYS[2], ARGV[1])
if not hold then return 0 end
redis.call('HINCRBY', KEYS[1], 'spent_micros', hold.m)
for _, cap in ipairs(hold.caps) do
  redis.call('HINCRBY', cap, 'spent', hold.m)
  redis.call('EXPIRE', cap, CAP_TTL_SECONDS)
end
return hold.m
