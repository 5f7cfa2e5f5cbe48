-- A provider account's circuit breaker, shared by every instance, timed by Redis' clock (ms).
-- Prepended to dial_gate.lua and dial_gate_mark.lua (the check before a call, with
-- dial_gate_lib.lua) and to circuit.lua (a call's outcome).
-- The circuit is a hash: failures, open_until, probe_at (Unix ms).

-- check: 1 closed and clean (call; a success need not report), 3 closed with failures counted
-- (call; report a success so the count restarts), 2 half-open (this caller is the one probe),
-- 0 open (skip).
local function circuit_check(key, cooldown, now)
  local open_until = tonumber(redis.call('HGET', key, 'open_until') or '0')
  if open_until == 0 then
    if redis.call('EXISTS', key) == 1 then return 3 end
    return 1
  end
  if now < open_until then return 0 end
  -- Cool-down over: one probe at a time (another after a further cool-down if it never reports).
  local probe_at = tonumber(redis.call('HGET', key, 'probe_at') or '0')
  if probe_at > now then return 0 end
  redis.call('HSET', key, 'probe_at', now + cooldown)
  return 2
end

local function clock_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000), t
end
