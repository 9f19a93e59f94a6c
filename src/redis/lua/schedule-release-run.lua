-- Gives a claimed run back, if the claim is still this token's (ScheduleStore#releaseRun).
-- KEYS: [1] the schedule.
-- ARGV: [1] run time (ms), [2] token.
-- Returns: 1.

if redis.call('HGET', KEYS[1], 'run_time') == ARGV[1]
  and redis.call('HGET', KEYS[1], 'run_token') == ARGV[2] then
  redis.call('HSET', KEYS[1], 'run_state', 'released')
end
return 1
