-- A provider account's circuit breaker, shared by every instance, timed by Redis' clock.
-- KEYS[1]  the account's circuit (hash: failures, open_until, probe_at; Unix ms)
-- ARGV[1]  'check' | 'fail' | 'ok'   ARGV[2] failures that open it   ARGV[3] cool-down (ms)
-- check: 1 closed and clean (call; a success need not report), 3 closed with failures counted
--        (call; report a success so the count restarts), 2 half-open (this caller is the one
--        probe), 0 open (skip).
-- fail:  counts a certain failure; the Nth consecutive one (or a failed probe) opens it.
-- ok:    a call was placed: closed, count reset.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op, threshold, cooldown = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if op == 'ok' then
  redis.call('DEL', KEYS[1])
  return 1
end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if op == 'check' then
  if open_until == 0 then
    if redis.call('EXISTS', KEYS[1]) == 1 then return 3 end
    return 1
  end
  if now < open_until then return 0 end
  -- Cool-down over: one probe at a time (another after a further cool-down if it never reports).
  local probe_at = tonumber(redis.call('HGET', KEYS[1], 'probe_at') or '0')
  if probe_at > now then return 0 end
  redis.call('HSET', KEYS[1], 'probe_at', now + cooldown)
  return 2
end
-- fail
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'open_until', now + cooldown)
  redis.call('HDEL', KEYS[1], 'probe_at')
end
redis.call('PEXPIRE', KEYS[1], cooldown * 10 + 86400000)
return failures
