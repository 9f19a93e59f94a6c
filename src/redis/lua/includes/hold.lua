-- Included by the ledger's scripts (`--- @include "hold"`): not a script of its own.
-- A hold is what one item has reserved, kept as JSON in the batch's reservations hash:
-- {"m": micros, "caps": [spend counter keys it is held against], "calling": 0|1}.

-- Spend counters outlive their month or day by about a year (400 days), for reports.
local CAP_TTL_SECONDS = 34560000

-- Releases the item's hold: off the batch's reserved total and off every counter it was held
-- against. Returns the hold, or nil when the item held nothing.
local function releaseHold(meta, reservations, itemId)
  local raw = redis.call('HGET', reservations, itemId)
  if not raw then return nil end
  local hold = cjson.decode(raw)
  redis.call('HDEL', reservations, itemId)
  redis.call('HINCRBY', meta, 'reserved_micros', -hold.m)
  for _, cap in ipairs(hold.caps) do redis.call('HINCRBY', cap, 'reserved', -hold.m) end
  return hold
end
