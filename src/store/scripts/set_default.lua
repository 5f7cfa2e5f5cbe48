-- Make an enabled option the default sign-in method, if a method backs it right now.
-- KEYS[1] the user's methods hash   KEYS[2] the user's audit stream
-- ARGV[1] option   ARGV[2] audit stream cap   ARGV[3] enabled default options (a mask, methods_lib.lua)
-- Returns {'ok', default, previous default or '', changed 0/1} | {'disabled'} | {'unbacked'}
local load_methods, enabled_options, backed, find_option, repair_default, put_method, audit,
  default_changed = methods_lib()
local mkey, akey = KEYS[1], KEYS[2]
local option, cap = ARGV[1], tonumber(ARGV[2])
local options = enabled_options(ARGV[3])
local methods, default = load_methods(mkey)

local o = find_option(options, option)
if not o then return {'disabled'} end
if not backed(o, methods) then return {'unbacked'} end
if default == option then return {'ok', option, default, 0} end
redis.call('HSET', mkey, 'default', option)
default_changed(akey, cap, option, default, 'requested')
return {'ok', option, default or '', 1}
