-- Create a verification in state "calling", timed by Redis' clock (one clock for all instances).
-- KEYS[1]  verification hash
-- ARGV[1]  seconds until it expires      ARGV[2]  seconds it stays readable after expiry
-- ARGV[3…] field, value pairs (tenant, user, purpose, phone, phone_type, locale, …)
-- Returns  {created_at, expires_at} (Unix seconds)
local now = tonumber(redis.call('TIME')[1])
local expires_at = now + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'status', 'calling', 'prompts', 0,
  'created_at', now, 'updated_at', now, 'expires_at', expires_at, unpack(ARGV, 3))
redis.call('EXPIREAT', KEYS[1], expires_at + tonumber(ARGV[2]))
return {now, expires_at}
