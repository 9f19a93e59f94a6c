-- Starts cancelling a batch (BatchStore#markCancelling).
-- KEYS: [1] batch meta.
-- ARGV: [1] now (ISO).
-- Returns: 1 cancelling, 0 the batch had ended or does not exist.

local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'completed' or status == 'cancelled' then return 0 end
if status ~= 'cancelling' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling', 'cancelled_at', ARGV[1])
end
return 1
