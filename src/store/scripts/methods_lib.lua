-- Shared by add_method.lua, delete_method.lua, set_default.lua and transition.lua (prepended to each; the
-- script's own header says what its KEYS and ARGV are).
--
-- The default sign-in method's rules as Redis applies them: `repair_default` below is the only
-- Lua code that chooses a default; every script that writes a user's methods calls it (the Rust
-- half of the rules, and how to change them: src/methods/default.rs).
--
-- The library is one function, `methods_lib()`, returning its functions: a script calls it where
-- it needs them (defining them costs Redis about 0.5 k instructions each, and transition.lua, run
-- on every keypress, needs them only when a registration call is approved).
--
-- `OPTIONS()` is prepended by Rust (`lua_options` in src/methods/default.rs): every default
-- sign-in option in preference order, {option = name, how = 'kind' | 'id', what = the method
-- kind or the phone method id that backs it}. That table is the one source of the order; nothing
-- here sorts. The options a tenant policy enables arrive as a mask over it ('1'/'0' per row).

local function methods_lib()
  local function load_methods(mkey)
    local flat = redis.call('HGETALL', mkey)
    local methods, default = {}, false
    for i = 1, #flat, 2 do
      local field, value = flat[i], flat[i + 1]
      if field == 'default' then
        default = value
      elseif string.sub(field, 1, 2) == 'm:' then
        methods[string.sub(field, 3)] = cjson.decode(value)
      end
    end
    return methods, default
  end

  -- The options `mask` enables, in preference order.
  local function enabled_options(mask)
    local options = {}
    for i, o in ipairs(OPTIONS()) do
      if string.sub(mask, i, i) == '1' then options[#options + 1] = o end
    end
    return options
  end

  local function backed(o, methods)
    if o.how == 'id' then return methods[o.what] ~= nil end
    for _, m in pairs(methods) do
      if m.kind == o.what then return true end
    end
    return false
  end

  local function find_option(options, option)
    for _, o in ipairs(options) do
      if o.option == option then return o end
    end
    return nil
  end

  -- The stored default stays valid: if it is not an enabled option backed by a method any more,
  -- it moves to the first enabled, backed option, or is removed. Returns (default or false, changed).
  local function repair_default(mkey, default, options, methods)
    local current = default and find_option(options, default)
    if current and backed(current, methods) then return default, false end
    local best = false
    for _, o in ipairs(options) do
      if backed(o, methods) then
        best = o.option
        break
      end
    end
    if best then
      redis.call('HSET', mkey, 'default', best)
    else
      redis.call('HDEL', mkey, 'default')
    end
    return best, best ~= default
  end

  -- Stores one method: `method` holds the fields of Rust's `MethodDetails` variant (the API's
  -- methods arrive as JSON serialised by that serde type, src/store/methods.rs); the library adds
  -- its id, kind and time. Every method — a phone registered by an approved call
  -- (transition.lua) or another kind added through the API (add_method.lua) — is written here and
  -- nowhere else.
  local function put_method(mkey, id, kind, method, now)
    method.id = id
    method.kind = kind
    method.created_at = now
    redis.call('HSET', mkey, 'm:' .. id, cjson.encode(method))
    return method
  end

  -- One entry in the user's capped audit stream; `fields` is a flat list of name, value.
  local function audit(akey, cap, fields)
    redis.call('XADD', akey, 'MAXLEN', '~', cap, '*', unpack(fields))
  end

  -- `verification`: the verification whose approval changed it ('' or nil: none).
  local function default_changed(akey, cap, new, previous, reason, verification)
    local fields = {'action', 'default_method.changed', 'outcome', 'changed',
      'method', new or '', 'previous', previous or '', 'reason', reason}
    if verification and verification ~= '' then
      fields[#fields + 1] = 'verification'
      fields[#fields + 1] = verification
    end
    audit(akey, cap, fields)
  end

  return load_methods, enabled_options, backed, find_option, repair_default, put_method, audit,
    default_changed
end
