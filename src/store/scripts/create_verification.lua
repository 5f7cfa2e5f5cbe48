-- (reconcile_lib.lua is prepended.) Create a verification in state "calling", timed by Redis'
-- clock (one clock for all instances), unless the user is blocked by a fraud report or already
-- has a live verification; the new verification takes the user's live slot until it ends
-- (transition.lua) or expires (TTL).
-- On a single Redis node the same script also schedules the verification's first
-- reconciliation check (KEYS[4] given; reconcile_schedule.lua's write), only when it creates: a
-- refused start leaves nothing in the index. On Redis Cluster the index lives in another slot,
-- so the start schedules it before this script, in a round trip of its own
-- (src/store/verifications.rs, `create_scheduled`).
-- KEYS[1]  verification hash   KEYS[2]  the user's live slot   KEYS[3]  the user's fraud block
-- KEYS[4]  (optional) the reconciliation index
-- ARGV[1]  seconds until it expires      ARGV[2]  seconds it stays readable after expiry
-- ARGV[3]  ms from now to the first reconciliation check (with KEYS[4]; '' otherwise)
-- ARGV[4…] field, value pairs (tenant, user, purpose, phone, phone_type, locale, …)
-- Returns  {'created', created_at, expires_at} (Unix seconds)
--          {'blocked', seconds the block still lasts, ''}
--          {'live', id of the live verification, ''}
local blocked_ttl = redis.call('TTL', KEYS[3])
if blocked_ttl >= 0 or blocked_ttl == -1 then return {'blocked', tostring(blocked_ttl), ''} end
local live = redis.call('GET', KEYS[2])
if live then return {'live', live, ''} end
local clock = redis.call('TIME')
local now = tonumber(clock[1])
local now_ms = now * 1000 + math.floor(tonumber(clock[2]) / 1000)
local expires_at = now + tonumber(ARGV[1])
local id = string.sub(KEYS[1], -48)
-- Scheduled before anything is written: a script that fails midway keeps the writes made before
-- the error, so a failing schedule must leave nothing stored.
if KEYS[4] then schedule_check(KEYS[4], id, tonumber(ARGV[3]), false, now_ms) end
-- created_ms: the start's own deadline for marking it for dialling counts from here
-- (mark_dialling.lua, release_undialled.lua).
redis.call('HSET', KEYS[1], 'status', 'calling', 'prompts', 0,
  'created_at', now, 'created_ms', now_ms,
  'updated_at', now, 'expires_at', expires_at, unpack(ARGV, 4))
redis.call('EXPIREAT', KEYS[1], expires_at + tonumber(ARGV[2]))
redis.call('SET', KEYS[2], id, 'EXAT', expires_at)
return {'created', tostring(now), tostring(expires_at)}
