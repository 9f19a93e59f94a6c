-- Releases what an item holds, spending nothing (SpendLedger#releaseHold): a reservation made
-- for a call this run will not make now. A hold marked calling stays: a call is under way on it
-- (a stalled run of the same item, still alive, marked it).
-- KEYS: [1] batch meta, [2] batch reservations.
-- ARGV: [1] item id.
-- Returns: the micros released (0 when the item held nothing, or a call is under way on it).
--- @include "hold"

local raw = redis.call('HGET', KEYS[2], ARGV[1])
if not raw or cjson.decode(raw).calling == 1 then return 0 end
return releaseHold(KEYS[1], KEYS[2], ARGV[1]).m
