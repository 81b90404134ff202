-- A store in a lua_shared_dict: every worker of one nginx shares the LWA and
-- restricted data tokens, the rates learned from x-amzn-RateLimit-Limit and one
-- token bucket per (selling partner, operation). The contract is the store's of
-- docs/extending.md; chosen with `shared_dict = "<name>"` in spapi.client{...},
-- the name of a `lua_shared_dict <name> 1m;` of nginx.conf.
--
-- Keys in the dict: "v:<key>" values (tokens, learned rates; the store TTL is
-- the dict's expiry), "b:<key>" buckets ("<tokens> <last>", dropped once the
-- bucket would be full again: absent is full), "l:<key>" locks (dict:add with an
-- expiry, so a worker that dies holding one does not hold it for ever).
--
-- A take is a read-modify-write of one bucket under a short lock ("t:<key>"):
-- a shared dict has no multi-key transaction. No code between the lock's add and
-- its delete yields, so the lock is held for microseconds and only another
-- worker (another process) can find it taken; such a worker spins a little, then
-- sleeps a millisecond (ngx.sleep) where the phase allows it.
-- Clock: the store's, ngx.now() after ngx.update_time() — the host's wall clock
-- (gettimeofday, ms), the same for every worker. A bucket never goes back in
-- time: a worker whose clock reads a little behind the last take's refills nothing.
local _M = {}
local mt = { __index = _M }

local ngx = rawget(_G, "ngx")
local fmt, tonumber, type, tostring = string.format, tonumber, type, tostring
local pcall = pcall

-- the host's clock, read afresh (ngx.now alone is the event loop's cached time)
local ngx_clock = ngx and ngx.update_time and {
  now = function() ngx.update_time() return ngx.now() end,
}

--- new(name | { dict = name, clock = c }) → store | nil, err (no such
--- lua_shared_dict, or not inside nginx). c: { now = function() → seconds }, the
--- clock of the buckets (default the host's; tests inject one).
function _M.new(opts)
  local name, clock = opts, nil
  if type(opts) == "table" then name, clock = opts.dict, opts.clock end
  if type(name) ~= "string" or name == "" then
    return nil, "spapi.client: shared_dict must be the name of a lua_shared_dict (got " .. tostring(name) .. ")"
  end
  if not (ngx and ngx.shared) then
    return nil, fmt("spapi.client: shared_dict = %q needs OpenResty/nginx with lua-nginx-module "
      .. "(ngx.shared is not available here)", name)
  end
  local dict = ngx.shared[name]
  if not dict then
    return nil, fmt("spapi.client: shared_dict = %q: nginx has no lua_shared_dict named %q; "
      .. "add `lua_shared_dict %s 1m;` to the http {} block of nginx.conf", name, name, name)
  end
  return setmetatable({ name = name, dict = dict, now = (clock or ngx_clock).now }, mt)
end

function mt.__tostring(self) return fmt("spapi.store.ngx(%s)", self.name) end

function _M:get(key)
  local v, err = self.dict:get("v:" .. key)
  if v == nil and err then return nil, err end
  return v
end

--- ttl: seconds (nil: no expiry). → true | nil, err (e.g. "no memory")
function _M:set(key, value, ttl)
  local ok, err = self.dict:set("v:" .. key, value, ttl or 0)
  if not ok then return nil, err end
  return true
end

function _M:delete(key)
  self.dict:delete("v:" .. key)
  return true
end

-- Take the short lock around a bucket's read-modify-write; false when it could
-- not be had (it expires after 0.5 s, so only a stuck worker makes that happen).
local LOCK_TTL = 0.5
local function acquire(dict, lk)
  if dict:add(lk, true, LOCK_TTL) then return true end
  for _ = 1, 50 do
    if dict:add(lk, true, LOCK_TTL) then return true end
  end
  -- the holder is another worker, descheduled: give it the CPU
  local sleep = ngx.sleep
  for _ = 1, 600 do
    if not pcall(sleep, 0.001) then break end -- a phase without ngx.sleep
    if dict:add(lk, true, LOCK_TTL) then return true end
  end
  return false
end

--- take(key, rate, burst, max_wait) → true, wait | false, wait | nil, message:
--- one token from key's bucket (full when new), shared by every worker,
--- reserved when it accrues within max_wait (docs/extending.md).
function _M:take(key, rate, burst, max_wait)
  local dict = self.dict
  local lk, bk = "t:" .. key, "b:" .. key
  if not acquire(dict, lk) then
    return nil, "spapi.store.ngx: the bucket " .. key .. " stayed locked (a stuck worker?)"
  end
  local now = self.now()
  local tokens, last = burst, now
  local s = dict:get(bk)
  if s then
    local t, l = s:match("^(%S+) (%S+)$")
    t, l = tonumber(t), tonumber(l)
    if t and l then
      tokens, last = t, l
      if now > last then
        tokens = tokens + (now - last) * rate
        last = now
      end
    end
  end
  if tokens > burst then tokens = burst end
  local wait = tokens >= 1 and 0 or (1 - tokens) / rate
  local taken = wait <= max_wait
  if taken then tokens = tokens - 1 end
  -- kept until it would be full again (then absent means full)
  local ok, err = dict:set(bk, fmt("%.6f %.6f", tokens, last), (burst - tokens) / rate + 1)
  dict:delete(lk)
  if not ok then return nil, "spapi.store.ngx: " .. tostring(err) end
  return taken, wait
end

--- → true (taken) | false (someone holds it) | nil, message; it expires after
--- ttl seconds.
function _M:lock(key, ttl)
  local ok, err = self.dict:add("l:" .. key, true, ttl)
  if ok then return true end
  if err == "exists" then return false end
  return nil, "spapi.store.ngx: " .. tostring(err)
end

--- release the lock (whoever holds it)
function _M:unlock(key)
  self.dict:delete("l:" .. key)
  return true
end

return _M
