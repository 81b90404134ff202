-- Access tokens: Login-with-Amazon (refresh_token and client_credentials grants)
-- and restricted data tokens, cached in the client's store until shortly before
-- they expire, refreshed one at a time (the store's lock), never logged.
local _M = {}
local mt = { __index = _M }

local core = require "spapi.core"
local errors = require "spapi.errors"
local default_clock = require "spapi.clock"
local json = require "spapi.json"
local retry = require "spapi.retry"

local fmt, tonumber, tostring, type = string.format, tonumber, tostring, type

-- A stable, non-reversible id for a secret (cache keys, rate-limit keys).
local function fingerprint(...)
  return core.hex(core.sha256(table.concat({ ... }, "\0"))):sub(1, 24)
end
_M.fingerprint = fingerprint

--- margin before expiry at which a cached token is refreshed
function _M.margin(expires_in)
  local m = expires_in * 0.1
  if m > 60 then m = 60 end
  return m
end

-- The secrets and the memo's tokens live outside the auth table (which a client
-- holds), so that dumping a client shows none.
local secrets_of = setmetatable({}, { __mode = "k" })
local memo_tok_of = setmetatable({}, { __mode = "k" })

-- secrets: { client_id, client_secret, refresh_token }; send(req) → resp | nil,
-- message, kind; cfg.clock: the client's clock (default spapi.clock)
function _M.new(cfg, secrets, store, send)
  local self = setmetatable({ cfg = cfg, store = store, send = send, keys = {}, memo_ref = {},
    clock = cfg.clock or default_clock }, mt)
  secrets_of[self], memo_tok_of[self] = secrets, {}
  return self
end

-- Tokens read or fetched are also kept here until their refresh time (memo_tok,
-- memo_ref by store key), so a call reads no store (a shared one may be across
-- the network). The store stays the truth for everything else: a fleet refreshes
-- a token once, and a token invalidated here (after a 401) is dropped here and
-- from the store.
local function memo(self, key, tok, ref)
  memo_tok_of[self][key], self.memo_ref[key] = tok, ref
  return tok
end

local function memo_get(self, key)
  local ref = self.memo_ref[key]
  if ref and self.clock.now() < ref then return memo_tok_of[self][key] end
  return nil
end

-- A token's lifetime as the answer gave it, if it is a finite positive number
-- of seconds (NaN would poison the cache, 0 refresh on every call, inf never).
local function lifetime(v)
  if type(v) == "number" and v > 0 and v < math.huge then return v end
  return nil
end

-- A cached token is stored as "<refresh_at> <token>" with the token's lifetime as
-- the store TTL; it is used until refresh_at (a margin before it expires).
local function remember(self, key, token, expires_in)
  local refresh_at = self.clock.now() + expires_in - _M.margin(expires_in)
  self.store:set(key, fmt("%.3f %s", refresh_at, token), expires_in)
  memo(self, key, token, refresh_at)
end

-- the last entry read, parsed: a token is read from the store far more often than it changes
local last_raw, last_tok, last_ref
--- the token in a stored entry while it is fresh (by now), else nil
local function fresh(raw, now)
  if raw == nil then return nil end
  if raw ~= last_raw then
    local ref, tok = raw:match("^(%S+) (.+)$")
    last_raw, last_tok, last_ref = raw, tok, tonumber(ref)
  end
  if last_tok and now < last_ref then return last_tok end
  return nil
end

function _M:lwa_key(scope)
  local keys = self.keys
  local k = keys[scope or true]
  if k then return k end
  local s = secrets_of[self]
  if scope then
    k = "lwa:cc:" .. fingerprint(s.client_id or "", scope)
  else
    k = "lwa:rt:" .. fingerprint(s.client_id or "", s.refresh_token or "")
  end
  keys[scope or true] = k
  return k
end

-- deadline: the calling operation's (monotonic seconds); each attempt's timeout
-- and the retries stay within it
local function lwa_exchange(self, scope, deadline)
  local s = secrets_of[self]
  if not s.client_id or not s.client_secret then
    return nil, errors.new{ kind = "config", code = "MissingCredentials",
      message = "client_id and client_secret are required (LWA_CLIENT_ID, LWA_CLIENT_SECRET)" }
  end
  if not scope and not s.refresh_token then
    return nil, errors.new{ kind = "config", code = "MissingCredentials",
      message = "refresh_token is required (LWA_REFRESH_TOKEN) for selling-partner operations" }
  end
  local body = core.lwa_form{
    grant_type = scope and "client_credentials" or "refresh_token",
    refresh_token = not scope and s.refresh_token or nil, scope = scope,
    client_id = s.client_id, client_secret = s.client_secret,
  }
  -- the token request may be sent twice (it changes nothing): the one retry policy
  local resp, msg, kind, attempts = retry.exchange(self.cfg, self.clock, self.send, {
    method = "POST", url = self.cfg.lwa_endpoint, body = body,
    headers = { ["Content-Type"] = "application/x-www-form-urlencoded;charset=UTF-8",
                Accept = "application/json" },
    phase = "lwa",
  }, deadline, true)
  if not resp then
    return nil, errors.new{ kind = kind, code = "LWAUnreachable", operation = "lwa.token",
      message = "token request failed: " .. tostring(msg), retryable = true, attempts = attempts }
  end
  local t, e = core.lwa_parse(resp.status, resp.body)
  if not t then
    return nil, errors.new{ kind = "lwa", status = e.status, code = e.code, operation = "lwa.token",
      message = e.message or "token request refused", retryable = resp.status >= 500 or resp.status == 429,
      attempts = resp.attempts }
  end
  if not lifetime(t.expires_in) then
    return nil, errors.new{ kind = "lwa", status = resp.status, code = "InvalidExpiry", operation = "lwa.token",
      message = "the token answer's expires_in is not a finite positive number (got "
        .. tostring(t.expires_in) .. ")" }
  end
  return t
end

-- seconds a refresh lock lasts unless its holder frees it sooner (a holder that
-- dies frees it by this expiry); cfg.token_lock_ttl changes it
local LOCK_TTL = 30

-- Single flight for a restricted data token: one fetch at a time under the
-- same kind of lock as the LWA refresh (token_lock_ttl); the others wait for its
-- token or for the lock (bounded by the deadline). A store that fails to answer
-- (nil) lets each caller fetch on its own. fetch() stores the token before the
-- lock goes. → token | nil, err
local function single_flight(self, key, deadline, fetch)
  local store, clock = self.store, self.clock
  local lock, ttl = key .. ":lock", self.cfg.token_lock_ttl or LOCK_TTL
  local locked = store:lock(lock, ttl)
  if locked == false then
    local give_up = clock.monotonic() + ttl + 1
    repeat
      if deadline and clock.monotonic() + 0.05 >= deadline then
        return nil, errors.new{ kind = "timeout", code = "DeadlineExceeded", retryable = true,
          operation = "tokens.createRestrictedDataToken",
          message = "the call's deadline passed while another caller fetched the restricted data token" }
      end
      clock.sleep(0.05)
      local tok = fresh(store:get(key), clock.now())
      if tok then return memo(self, key, tok, last_ref) end
      locked = store:lock(lock, ttl)
    until locked ~= false or clock.monotonic() >= give_up
  end
  local tok, err = fetch()
  if locked then store:unlock(lock) end
  return tok, err
end

--- An LWA access token (cached). scope: for grantless operations; deadline: the
--- calling operation's (clock.monotonic() seconds), which a refresh keeps to.
function _M:access_token(scope, deadline)
  local key = self:lwa_key(scope)
  local tok = memo_get(self, key)
  if tok then return tok end
  local store, clock = self.store, self.clock
  tok = fresh(store:get(key), clock.now())
  if tok then return memo(self, key, tok, last_ref) end
  -- single flight: one refresh at a time, under a lock that expires (token_lock_ttl);
  -- the others wait for its token, or for the lock (its holder done, or dead and
  -- expired). The holder's refresh ends before its lock would expire, so its
  -- unlock never frees a successor's. A store that fails to answer (nil) lets
  -- each caller refresh on its own.
  local lock, ttl = key .. ":lock", self.cfg.token_lock_ttl or LOCK_TTL
  local locked_at = clock.monotonic()
  local locked = store:lock(lock, ttl)
  if locked == false then
    local give_up = clock.monotonic() + ttl + 1
    repeat
      if deadline and clock.monotonic() + 0.05 >= deadline then
        return nil, errors.new{ kind = "timeout", code = "DeadlineExceeded", operation = "lwa.token", retryable = true,
          message = "the call's deadline passed while another caller refreshed the access token" }
      end
      clock.sleep(0.05)
      tok = fresh(store:get(key), clock.now())
      if tok then return memo(self, key, tok, last_ref) end
      locked_at = clock.monotonic()
      locked = store:lock(lock, ttl)
    until locked ~= false or clock.monotonic() >= give_up
  end
  -- (a lock that outlived its expiry: its holder is taken to be gone; refresh anyway)
  local until_ = deadline
  if locked then
    local lock_end = locked_at + ttl - math.min(1, ttl * 0.1)
    if not until_ or lock_end < until_ then until_ = lock_end end
  end
  local t, err = lwa_exchange(self, scope, until_)
  -- the token is stored before the lock goes: a waiter that finds the lock free
  -- finds the token too, and does not refresh a second time
  if t then remember(self, key, t.access_token, t.expires_in) end
  if locked then store:unlock(lock) end
  if not t then return nil, err end
  return t.access_token
end

-- Forget a token the server refused. With `refused` (the token sent), the store's
-- entry goes only if it still holds that one: another client sharing the store
-- may already have put a new token there.
local function forget(self, key, refused)
  memo(self, key, nil, nil)
  local raw = refused and self.store:get(key)
  if raw and raw:sub(-#refused - 1) ~= " " .. refused then return end
  self.store:delete(key)
end

function _M:invalidate(scope, refused)
  forget(self, self:lwa_key(scope), refused)
end

-- Restricted data tokens, one per (selling partner, method, generic path, data elements).
function _M:rdt_key(method, path, data_elements)
  local elements = data_elements and table.concat(data_elements, ",") or ""
  local id = method .. " " .. path .. " " .. elements
  local k = self.keys[id]
  if k then return k end
  local s = secrets_of[self]
  k = "rdt:" .. fingerprint(s.client_id or "", s.refresh_token or "", method, path, elements)
  self.keys[id] = k
  return k
end

--- A restricted data token (cached) → token | nil, err; `call` performs
--- tokens.createRestrictedDataToken through the client pipeline; deadline: the
--- calling operation's, which waiting for another caller's fetch keeps to.
function _M:restricted_token(method, path, data_elements, call, deadline)
  local key = self:rdt_key(method, path, data_elements)
  local tok = memo_get(self, key)
  if tok then return tok end
  tok = fresh(self.store:get(key), self.clock.now())
  if tok then return memo(self, key, tok, last_ref) end
  return single_flight(self, key, deadline, function()
    local resource = { method = method, path = path }
    if data_elements then resource.dataElements = json.array(data_elements) end
    local body, err = call("tokens.createRestrictedDataToken",
      { body = { restrictedResources = { resource } } })
    if not body then return nil, err end
    local token = body.restrictedDataToken
    if type(token) ~= "string" then
      return nil, errors.new{ kind = "decode", code = "InvalidResponse", operation = "tokens.createRestrictedDataToken",
        message = "no restrictedDataToken in the response" }
    end
    local ttl = lifetime(body.expiresIn)
    if not ttl then
      return nil, errors.new{ kind = "decode", code = "InvalidResponse", operation = "tokens.createRestrictedDataToken",
        message = "the restricted data token's expiresIn is not a finite positive number (got "
          .. tostring(body.expiresIn) .. ")" }
    end
    remember(self, key, token, ttl)
    return token
  end)
end

function _M:invalidate_rdt(method, path, data_elements, refused)
  forget(self, self:rdt_key(method, path, data_elements), refused)
end

return _M
