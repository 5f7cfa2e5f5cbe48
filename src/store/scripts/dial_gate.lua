-- (circuit_lib.lua and dial_gate_lib.lua are prepended.) What a provider account says before one
-- call, in one round trip: its circuit breaker, then its outbound-call pacing. Both keys carry
-- the account's hash tag {provider:NAME}: one slot on Redis Cluster. (On a single Redis node the
-- start sends dial_gate_mark.lua instead: the same gate and the dialling mark in one script.)
-- KEYS[1]  the account's circuit   KEYS[2]  the account's next free call slot (Unix µs)
-- ARGV[1]  cool-down (ms), '' when the circuit breaker is off
-- ARGV[2]  µs between two calls, '' when pacing is off   ARGV[3]  longest wait allowed (µs)
-- Returns {circuit, wait}: circuit as circuit_check (1 when the breaker is off); when it is 0
-- (open) nothing else is done and wait is -1. wait: the µs to wait before dialling (0 without
-- pacing), or -1 when the queue is longer than allowed (no slot reserved).
local circuit, wait = dial_gate(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]))
return {circuit, wait}
