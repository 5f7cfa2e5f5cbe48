-- (circuit_lib.lua is prepended.) A call's outcome (the check before it is in dial_gate.lua).
-- KEYS[1]  the account's circuit
-- ARGV[1]  'fail' | 'ok'   ARGV[2] failures that open it   ARGV[3] cool-down (ms)
-- fail:  counts a certain failure; the Nth consecutive one (or a failed probe) opens it.
-- ok:    a call was placed: closed, count reset.
local op, threshold, cooldown = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
if op == 'ok' then
  redis.call('DEL', KEYS[1])
  return 1
end
-- fail
local now = clock_ms()
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if failures >= threshold then
  redis.call('HSET', KEYS[1], 'open_until', now + cooldown)
  redis.call('HDEL', KEYS[1], 'probe_at')
end
redis.call('PEXPIRE', KEYS[1], cooldown * 10 + 86400000)
return failures
