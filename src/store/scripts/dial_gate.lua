-- (circuit_lib.lua is prepended.) What a provider account says before one call, in one round
-- trip: its circuit breaker, then its outbound-call pacing (calls per second shared by every
-- instance). Both keys carry the account's hash tag {provider:NAME}: one slot on Redis Cluster.
-- KEYS[1]  the account's circuit   KEYS[2]  the account's next free call slot (Unix µs)
-- ARGV[1]  cool-down (ms), '' when the circuit breaker is off
-- ARGV[2]  µs between two calls, '' when pacing is off   ARGV[3]  longest wait allowed (µs)
-- Returns {circuit, wait}: circuit as circuit_check (1 when the breaker is off); when it is 0
-- (open) nothing else is done and wait is -1. wait: the µs to wait before dialling (0 without
-- pacing), or -1 when the queue is longer than allowed (no slot reserved).
local now_ms, t = clock_ms()
local circuit = 1
if ARGV[1] ~= '' then
  circuit = circuit_check(KEYS[1], tonumber(ARGV[1]), now_ms)
  if circuit == 0 then return {0, -1} end
end
if ARGV[2] == '' then return {circuit, 0} end
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, max_wait = tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = tonumber(redis.call('GET', KEYS[2]) or '0')
if slot < now then slot = now end
local wait = slot - now
if wait > max_wait then return {circuit, -1} end
local following = slot + interval
redis.call('SET', KEYS[2], string.format('%.0f', following), 'PX',
  math.floor((following - now) / 1000) + 1000)
return {circuit, wait}
