-- Records how a run ended (ScheduleStore#recordBatch, #recordError). Only a schedule that
-- still exists is written to: HSET on a deleted one would bring back a fragment of it.
-- KEYS: [1] the schedule.
-- ARGV: [1] run time (ms), [2] outcome (submitted | refused), [3] at (ISO), [4] batch id or '',
--   [5] error JSON or ''.
-- Returns: 1 recorded, 0 the schedule is gone.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_run_at', ARGV[3])
if ARGV[2] == 'submitted' then
  redis.call('HSET', KEYS[1], 'last_batch_id', ARGV[4])
  redis.call('HDEL', KEYS[1], 'last_error')
else
  redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
end
if redis.call('HGET', KEYS[1], 'run_time') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'run_state', ARGV[2], 'run_batch_id', ARGV[4])
end
return 1
