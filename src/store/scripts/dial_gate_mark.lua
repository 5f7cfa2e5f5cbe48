-- (circuit_lib.lua, dial_gate_lib.lua and dialling_lib.lua are prepended.) On a single Redis node
-- only (its keys carry two hash tags: the account's and the user's): the provider account's gate
-- (dial_gate.lua) and, when it lets the call through at once, the verification's dialling mark
-- (mark_dialling.lua), in one round trip. The order stays the one the separate scripts keep: the
-- mark only after the gate let the call through, and never before a pacing wait (a wait is
-- reserved and returned; the start waits, then sends mark_dialling.lua).
-- KEYS[1]  the account's circuit   KEYS[2]  the account's next free call slot (Unix µs)
-- KEYS[3]  the verification hash
-- ARGV[1…3] as dial_gate.lua   ARGV[4] dial budget, ARGV[5] the start's deadline for this mark
-- (ms after creation, as mark_dialling.lua)
-- Returns {circuit, wait, marked}: circuit and wait as dial_gate.lua; marked 1 when marked (the
-- start may dial), 0 when the mark was refused (as mark_dialling.lua), -1 when it was not tried
-- (circuit open, queue full, or a wait to come).
local circuit, wait, now_ms = dial_gate(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]),
  tonumber(ARGV[3]))
if circuit == 0 or wait ~= 0 then return {circuit, wait, -1} end
return {circuit, 0, mark_dialling(KEYS[3], tonumber(ARGV[4]), tonumber(ARGV[5]), now_ms)}
