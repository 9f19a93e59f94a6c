-- Releases what an item holds, spending nothing (SpendLedger#releaseHold): a reservation made
-- for a call that will not be made by this run.
-- KEYS: [1] batch meta, [2] batch reservations.
-- ARGV: [1] item id.
-- Returns: the micros released (0 when the item held nothing).
--- @include "hold"

local hold = releaseHold(KEYS[1], KEYS[2], ARGV[1])
if not hold then return 0 end
return hold.m
