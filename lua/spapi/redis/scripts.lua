-- The Redis store's server-side scripts (run atomically by EVALSHA; the store
-- loads each on first use and again after NOSCRIPT, when the server lost it).
local _M = {}

-- take: one token from the bucket KEYS[1] (a hash: tokens, last), refilled at
-- ARGV[1] tokens a second up to ARGV[2], on the server's clock (TIME), so machines
-- whose clocks disagree still share one budget. The bucket may go into debt: a
-- caller that would wait at most ARGV[3] seconds (negative: any wait) reserves a
-- token and is told how long to wait → { 1, wait }; otherwise nothing is reserved
-- → { 0, wait needed }. Numbers travel as strings (a script's number reply would
-- be cut to an integer).
_M.take = [[
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens, last = tonumber(b[1]), tonumber(b[2])
if not tokens or not last then tokens, last = burst, now end
if now > last then tokens = tokens + (now - last) * rate end
if tokens > burst then tokens = burst end
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
local ok = 1
if max_wait >= 0 and wait > max_wait then ok = 0 else tokens = tokens - 1 end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'last', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil(((burst - tokens) / rate + 60) * 1000))
return { ok, string.format('%.6f', wait) }
]]

-- unlock: delete the lock KEYS[1] only while it is still ARGV[1]'s (a lock that
-- expired and was taken by another holder stays theirs).
_M.unlock = [[
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
]]

return _M
