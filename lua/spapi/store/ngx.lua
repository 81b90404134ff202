-- A store in a lua_shared_dict: every worker of one nginx shares the LWA and
-- restricted data tokens, the rates learned from x-amzn-RateLimit-Limit and one
-- token bucket per (selling partner, operation). The interface is the memory
-- store's (lua/spapi/store/memory.lua); chosen with `shared_dict = "<name>"` in
-- spapi.client{...}, the name of a `lua_shared_dict <name> 1m;` of nginx.conf.
--
-- Keys in the dict: "v:<key>" values (tokens, with the store TTL as the dict's
-- expiry), "r:<key>" rates ("<rate> <burst>"), "b:<key>" buckets
-- ("<tokens> <last>", dropped once the bucket would be full again: absent is
-- full), "l:<key>" locks (dict:add with an expiry, so a worker that dies holding
-- one does not hold it for ever).
--
-- A take is a read-modify-write of one bucket under a short lock ("t:<key>"):
-- a shared dict has no multi-key transaction. No code between the lock's add and
-- its delete yields, so the lock is held for microseconds and only another
-- worker (another process) can find it taken; such a worker spins a little, then
-- sleeps a millisecond (ngx.sleep) where the phase allows it.
-- Clock: `now` is the caller's clock.now(), which inside nginx is ngx.now()
-- after ngx.update_time() — the machine's wall clock (gettimeofday, ms), the
-- same for every worker. A bucket never goes back in time: a worker whose `now`
-- is a little behind the last take's (read a moment earlier) refills nothing.
local _M = {}
local mt = { __index = _M }

local ngx = rawget(_G, "ngx")
local fmt, tonumber, type, tostring = string.format, tonumber, type, tostring
local pcall = pcall

--- ngx.new(name) → store | nil, err (no such lua_shared_dict, or not in nginx)
function _M.new(name)
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
  return setmetatable({ name = name, dict = dict }, mt)
end

function mt.__tostring(self) return fmt("spapi.store.ngx(%s)", self.name) end

function _M:get(key)
  return (self.dict:get("v:" .. key))
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

--- The memory store's token bucket, shared by every worker: a token is reserved
--- (the bucket may go into debt) when the caller would wait at most max_wait.
--- → wait_seconds | nil, wait_needed
function _M:take(key, rate, burst, now, max_wait)
  local dict = self.dict
  local lk, bk = "t:" .. key, "b:" .. key
  local locked = acquire(dict, lk)
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
  local result, needed = wait, nil
  if max_wait and wait > max_wait then
    result, needed = nil, wait
  else
    tokens = tokens - 1
  end
  -- kept until it would be full again (then absent means full)
  dict:set(bk, fmt("%.6f %.6f", tokens, last), (burst - tokens) / rate + 1)
  if locked then dict:delete(lk) end
  return result, needed
end

function _M:set_rate(key, rate, burst)
  self.dict:set("r:" .. key, fmt("%.17g %.17g", rate, burst or 0))
end

function _M:get_rate(key)
  local s = self.dict:get("r:" .. key)
  if not s then return nil end
  local r, b = s:match("^(%S+) (%S+)$")
  b = tonumber(b)
  return tonumber(r), (b and b > 0) and b or nil
end

-- the lock's value names its holder (worker pid, a count), so that unlock leaves
-- alone a lock that expired and was taken by someone else
local count = 0

--- → true (taken) | false (someone holds it); it expires after ttl seconds (30).
function _M:lock(key, ttl)
  count = count + 1
  local me = fmt("%d:%d", ngx.worker.pid(), count)
  if not self.dict:add("l:" .. key, me, ttl or 30) then return false end
  local locks = self.locks
  if not locks then
    locks = {}
    self.locks = locks
  end
  locks[key] = me
  return true
end

function _M:unlock(key)
  local me = self.locks and self.locks[key]
  if not me then return end
  self.locks[key] = nil
  local dict = self.dict
  if dict:get("l:" .. key) == me then dict:delete("l:" .. key) end
end

return _M
