-- Claims a schedule's run for one attempt of its job (ScheduleStore#claimRun).
-- KEYS: [1] the schedule.
-- ARGV: [1] run time (ms), [2] now (ms), [3] lease (ms), [4] token.
-- Returns: {outcome, batch id}: outcome claimed | done | superseded | busy | gone.

if redis.call('EXISTS', KEYS[1]) == 0 then return {'gone', ''} end
local runTime = tonumber(ARGV[1])
local claimed = tonumber(redis.call('HGET', KEYS[1], 'run_time') or '-1')
if runTime < claimed then return {'superseded', ''} end
if runTime == claimed then
  local state = redis.call('HGET', KEYS[1], 'run_state')
  if state == 'submitted' or state == 'refused' then
    return {'done', redis.call('HGET', KEYS[1], 'run_batch_id') or ''}
  end
  if state == 'pending' then
    local claimedAt = tonumber(redis.call('HGET', KEYS[1], 'run_claimed_at') or '0')
    if tonumber(ARGV[2]) - claimedAt < tonumber(ARGV[3]) then return {'busy', ''} end
  end
end
redis.call('HSET', KEYS[1], 'run_time', ARGV[1], 'run_state', 'pending',
  'run_claimed_at', ARGV[2], 'run_token', ARGV[4])
redis.call('HDEL', KEYS[1], 'run_batch_id')
return {'claimed', ''}
