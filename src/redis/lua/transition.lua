-- Moves an item to its next state and settles its money, atomically (BatchStore#transition).
-- KEYS: [1] batch meta, [2] batch items, [3] batch reservations, [4…] the spend counters that
--   unreserved spend counts against (their number varies per call).
-- ARGV: [1] item id, [2] record JSON, [3] new status, [4] spend delta (micros), [5] now (ISO),
--   [6] terminal statuses (comma-separated), [7] 1 to release the item's reservation,
--   [8] saved delta (micros), [9] now (ms), [10] checkpoint interval (ms), [11] the only status
--   the item may move from ('' for any), [12] for a move to queued or running, the record the
--   item gets instead if its batch is being cancelled ('' for other moves).
-- Returns: -1 unknown item, 0 ignored, 1 updated, 2 batch completed, 3 updated + checkpoint
--   due, 4 the item was cancelled instead (the batch may have ended with it).
-- Money moves even when the item is already final: a duplicate run (a stalled job re-run
-- while the first still worked) really paid, and its reservation must not leak.
--- @include "hold"

local old = redis.call('HGET', KEYS[2], ARGV[1])
if not old then return -1 end
if ARGV[11] ~= '' and cjson.decode(old).status ~= ARGV[11] then return 0 end
local newStatus = ARGV[3]
local record = ARGV[2]
local release = ARGV[7] == '1'
local cancelledInstead = false
local batchStatus = redis.call('HGET', KEYS[1], 'status')
-- A batch being cancelled takes no item (back) into work: it is cancelled instead, and
-- releases what it held.
if ARGV[12] ~= '' and (batchStatus == 'cancelling' or batchStatus == 'cancelled') then
  newStatus = 'cancelled'
  record = ARGV[12]
  release = true
  cancelledInstead = true
end
local spend = tonumber(ARGV[4])
local spendCaps = {}
for i = 4, #KEYS do spendCaps[#spendCaps + 1] = KEYS[i] end
if release then
  local hold = releaseHold(KEYS[1], KEYS[3], ARGV[1])
  -- a call's money counts where it was reserved, even if the month turned meanwhile
  if hold then spendCaps = hold.caps end
end
if spend ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'spent_micros', spend)
  for _, cap in ipairs(spendCaps) do
    redis.call('HINCRBY', cap, 'spent', spend)
    redis.call('EXPIRE', cap, CAP_TTL_SECONDS)
  end
end
local terminal = {}
for s in string.gmatch(ARGV[6], '[^,]+') do terminal[s] = true end
local oldStatus = cjson.decode(old).status
if terminal[oldStatus] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], record)
redis.call('HINCRBY', KEYS[1], 'count:' .. oldStatus, -1)
redis.call('HINCRBY', KEYS[1], 'count:' .. newStatus, 1)
if tonumber(ARGV[8]) ~= 0 then redis.call('HINCRBY', KEYS[1], 'saved_micros', ARGV[8]) end
if batchStatus == 'queued' then redis.call('HSET', KEYS[1], 'status', 'running') end
if terminal[newStatus] then
  local done = redis.call('HINCRBY', KEYS[1], 'done', 1)
  if done >= tonumber(redis.call('HGET', KEYS[1], 'total')) and batchStatus ~= 'completed' and batchStatus ~= 'cancelled' then
    local final = batchStatus == 'cancelling' and 'cancelled' or 'completed'
    redis.call('HSET', KEYS[1], 'status', final, 'completed_at', ARGV[5])
    if cancelledInstead then return 4 end
    return 2
  end
  if cancelledInstead then return 4 end
  local now = tonumber(ARGV[9])
  if now - tonumber(redis.call('HGET', KEYS[1], 'checkpoint_at') or '0') >= tonumber(ARGV[10]) then
    redis.call('HSET', KEYS[1], 'checkpoint_at', now)
    return 3
  end
end
return 1
