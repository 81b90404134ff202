-- The one retry policy of every request spapi sends: API calls (and the RDT
-- fetches, which are API calls), LWA token exchanges and document transfers.
--   * which failures are worth another attempt: a 429, a 5xx, a network fault;
--     after the server may have acted (a 5xx, a lost answer) only a request
--     that may be sent twice;
--   * how long to wait: the server's Retry-After when it gives one, else an
--     exponential backoff (cfg.retry_base doubling up to cfg.retry_cap) with
--     jitter, never less than a floor the caller knows (429: one slot at the
--     granted rate);
--   * when to stop: after cfg.max_retries retries (or the call's max_retries),
--     or when the wait would end past the call's deadline.
local _M = {}

local hdr = require "spapi.headers"
local random_bytes = require("spapi.core").random_bytes
local tonumber, min, max = tonumber, math.min, math.max

-- a uniform number in [0, 1) from the system's randomness: the jitter differs
-- between processes (LuaJIT's math.random starts from the same seed in every
-- one: a fleet would retry in step) and leaves math.random's state alone
local function random()
  local a, b, c, d = random_bytes(4):byte(1, 4)
  return ((a * 256 + b) * 256 + c) * 256 / 2 ^ 32 + d / 2 ^ 32
end

--- backoff(cfg, attempt) → seconds before retry number `attempt` (1, 2, …):
--- d = min(retry_cap, retry_base · 2^(attempt−1)), drawn uniformly from [d/2, d).
function _M.backoff(cfg, attempt)
  local d = min(cfg.retry_cap, cfg.retry_base * 2 ^ (attempt - 1))
  return d / 2 + random() * d / 2
end

--- retry_after(headers) → seconds | nil: a Retry-After in seconds (headers: a
--- header block or table). The HTTP-date form is not read (backoff instead).
function _M.retry_after(headers)
  local n = tonumber(hdr.get(headers, "retry-after"))
  if n then return max(0, n) end
  return nil
end

--- Whether a failed exchange (no answer: a transport's kind) is worth another
--- attempt. A request that never left (resolve, connect) always is; one that may
--- have reached the server only when it may be sent twice; a TLS failure never
--- (a certificate does not fix itself).
function _M.lost_again(kind, idempotent)
  if kind == "resolve" or kind == "connect" then return true end
  if kind == "tls" then return false end
  return idempotent and true or false
end

--- Whether an answer's status is worth another attempt: a 429 always (the server
--- did nothing), a 5xx when the request may be sent twice.
function _M.status_again(status, idempotent)
  return status == 429 or (status >= 500 and idempotent and true or false)
end

--- next(cfg, attempts, max_retries, deadline, now, delay) → delay | nil, why:
--- the wait before the next attempt, after `attempts` attempts of a call that
--- ends at `deadline` (monotonic; nil: none); delay: the server's or the
--- caller's (nil: backoff). nil when the call should stop.
function _M.next(cfg, attempts, max_retries, deadline, now, delay)
  if attempts > (max_retries or cfg.max_retries) then return nil, "retries exhausted" end
  delay = delay or _M.backoff(cfg, attempts)
  if deadline and now + delay > deadline then return nil, "retry deadline reached" end
  return delay
end

--- exchange(cfg, clock, send, req, deadline, idempotent) → resp | nil, message,
--- kind, attempts: one request outside the API pipeline (LWA, a document's
--- storage URL) under this policy. send(req) → resp ({ status, headers (a
--- table), body }) | nil, message, kind. Each attempt's timeout (req.timeout,
--- else cfg.timeout) ends by the deadline; the last answer is returned whatever
--- its status (the caller reads it), with resp.attempts.
function _M.exchange(cfg, clock, send, req, deadline, idempotent)
  local timeout, attempts = req.timeout or cfg.timeout, 0
  while true do
    local now = clock.monotonic()
    if deadline and deadline - now < timeout then
      if deadline - now <= 0 then return nil, "the call's deadline passed", "timeout", attempts end
      req.timeout = deadline - now
    else
      req.timeout = timeout
    end
    attempts = attempts + 1
    local resp, msg, kind = send(req)
    local again, delay
    if resp then
      again = _M.status_again(resp.status, idempotent)
      delay = again and _M.retry_after(resp.headers)
    else
      again = _M.lost_again(kind, idempotent)
    end
    if again then delay = _M.next(cfg, attempts, nil, deadline, clock.monotonic(), delay) end
    if not delay then
      if resp then
        resp.attempts = attempts
        return resp
      end
      return nil, msg, kind, attempts
    end
    if delay > 0 then clock.sleep(delay) end
  end
end

return _M
