-- (reconcile_lib.lua is prepended.) Schedules a verification's next reconciliation check, timed
-- by Redis' clock. One key only (the index lives under its own hash tag, apart from every user's
-- slot).
-- KEYS[1]  the reconciliation index (sorted set: verification id → due time, Unix ms)
-- ARGV[1]  verification id   ARGV[2]  ms from now   ARGV[3]  '1': only if earlier than scheduled
return schedule_check(KEYS[1], ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1')
