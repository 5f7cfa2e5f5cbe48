-- Releases a verification whose start failed before any provider could dial (a Redis stall or
-- error mid-start, possibly with writes that landed after the start gave up): still `calling`,
-- no call bound, never marked `dialling` (mark_dialling.lua), and older than the dial budget, so
-- no mark can come any more. The record goes and so does the user's live slot if it holds it.
-- KEYS[1] verification hash   KEYS[2] the user's live slot
-- ARGV[1] the verification id   ARGV[2] dial budget (ms after created_at)
-- Returns {'released', tenant, counted (the rate limits to refund, JSON)},
--         {'wait', ms until it can be released}, or {'dialled'} (not this script's business).
local v = redis.call('HMGET', KEYS[1], 'status', 'created_at', 'call_sid', 'dialling', 'tenant',
  'counted', 'created_ms')
if v[1] ~= 'calling' or (v[3] and v[3] ~= '') or v[4] then return {'dialled'} end
local t = redis.call('TIME')
local now_ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local created_ms = tonumber(v[7]) or tonumber(v[2]) * 1000
local release_at = created_ms + tonumber(ARGV[2]) + 1
if now_ms < release_at then return {'wait', tostring(release_at - now_ms)} end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return {'released', v[5] or '', v[6] or ''}
