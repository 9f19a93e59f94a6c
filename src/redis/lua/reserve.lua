-- Holds an item's maximum price against the batch's budget and every counter's cap, atomically
-- (SpendLedger#reserve). What the item held before is released first: one hold per item.
-- KEYS: [1] batch meta, [2] batch reservations, [3] batch items, [4…] the spend counters to hold
--   against (their number varies per call).
-- ARGV: [1] item id, [2] micros, [3] 1 to hold only for an item that is running in a batch not
--   being cancelled (a reservation sent right after the item's start, before its answer), [4…]
--   each counter's limit in micros ('' for none), in KEYS order.
-- Returns: {code, which}. code 1 reserved; 0 a cap cannot hold it even once everything in
--   flight settles; 2 it does not fit now, but may once other in-flight calls settle; 3 not
--   held: the item is not running, or its batch is being cancelled (ARGV[3] = 1 only).
--   which: 0 the batch's budget, i the i-th counter.
--- @include "hold"

if redis.call('EXISTS', KEYS[1]) == 0 then return {0, 0} end
if ARGV[3] == '1' then
  local status = redis.call('HGET', KEYS[1], 'status')
  if status == 'cancelling' or status == 'cancelled' then return {3, 0} end
  local item = redis.call('HGET', KEYS[3], ARGV[1])
  if not item or cjson.decode(item).status ~= 'running' then return {3, 0} end
end
releaseHold(KEYS[1], KEYS[2], ARGV[1])
local amount = tonumber(ARGV[2])
local function verdict(limit, spent, held, othersRunning)
  if spent + amount > limit then return 0 end
  if spent + held + amount > limit then
    -- Waiting helps only while others' calls are in flight and may settle below what they
    -- hold; money held by workers that died stays held (never under-count spend).
    if held > 0 and othersRunning then return 2 end
    return 0
  end
  return 1
end
local budget = redis.call('HGET', KEYS[1], 'budget_micros')
if budget then
  local code = verdict(tonumber(budget),
    tonumber(redis.call('HGET', KEYS[1], 'spent_micros') or '0'),
    tonumber(redis.call('HGET', KEYS[1], 'reserved_micros') or '0'),
    tonumber(redis.call('HGET', KEYS[1], 'count:running') or '0') > 1)
  if code ~= 1 then return {code, 0} end
end
for i = 4, #KEYS do
  if ARGV[i] ~= '' then
    local code = verdict(tonumber(ARGV[i]),
      tonumber(redis.call('HGET', KEYS[i], 'spent') or '0'),
      tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0'),
      true)
    if code ~= 1 then return {code, i - 3} end
  end
end
local caps = {}
for i = 4, #KEYS do
  caps[#caps + 1] = KEYS[i]
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
  redis.call('EXPIRE', KEYS[i], CAP_TTL_SECONDS)
end
redis.call('HINCRBY', KEYS[1], 'reserved_micros', amount)
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({m = amount, caps = caps, calling = 0}))
return {1, 0}
