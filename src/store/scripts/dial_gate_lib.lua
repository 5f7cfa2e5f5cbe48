-- (circuit_lib.lua comes first.) What a provider account says before one call: its circuit
-- breaker, then its outbound-call pacing (calls per second shared by every instance). Prepended
-- to dial_gate.lua and to dial_gate_mark.lua (the gate and the dialling mark in one script, on a
-- single Redis node).

-- circuit_key: the account's circuit; pacing_key: its next free call slot (Unix µs).
-- cooldown: ms, nil when the circuit breaker is off; interval: µs between two calls, nil when
-- pacing is off; max_wait: the longest wait allowed (µs).
-- Returns circuit, wait, now_ms: circuit as circuit_check (1 when the breaker is off); when it is
-- 0 (open) nothing else is done and wait is -1. wait: the µs to wait before dialling (0 without
-- pacing), or -1 when the queue is longer than allowed (no slot reserved). now_ms: Redis' clock.
local function dial_gate(circuit_key, pacing_key, cooldown, interval, max_wait)
  local now_ms, t = clock_ms()
  local circuit = 1
  if cooldown then
    circuit = circuit_check(circuit_key, cooldown, now_ms)
    if circuit == 0 then return 0, -1, now_ms end
  end
  if not interval then return circuit, 0, now_ms end
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local slot = tonumber(redis.call('GET', pacing_key) or '0')
  if slot < now then slot = now end
  local wait = slot - now
  if wait > max_wait then return circuit, -1, now_ms end
  local following = slot + interval
  redis.call('SET', pacing_key, string.format('%.0f', following), 'PX',
    math.floor((following - now) / 1000) + 1000)
  return circuit, wait, now_ms
end

