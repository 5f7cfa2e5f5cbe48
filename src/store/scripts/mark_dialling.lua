-- (dialling_lib.lua is prepended.) Marks a verification `dialling` just before a provider may
-- dial (see dialling_lib.lua for when it is refused). Sent on its own after a pacing wait, and on
-- Redis Cluster (on a single Redis node, without a wait, dial_gate_mark.lua sets the mark with
-- the provider account's gate).
-- KEYS[1] verification hash   ARGV[1] dial budget (ms after creation)
-- ARGV[2] the start's deadline for this mark (ms after creation)
-- Returns 1 when marked (the start may dial), 0 when not.
return mark_dialling(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]))
