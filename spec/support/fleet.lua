-- Runs inside a real nginx for spec/openresty/fleet_spec.lua: every worker keeps
-- a timer (started in init_worker) that waits for a run posted to /go, then
-- makes its share of the calls with its own spapi client on the shared-dict
-- store, in several light threads, and posts its result for /result.
--   POST /go { id, endpoint, lwa_endpoint, refresh_token, op, params, threads,
--              calls (per thread), workers (ids taking part; default all),
--              transport, rate_margin }
--   GET /result → { ready = workers waiting for runs, t0 = when /go was posted, results = { [worker id] = {
--              ok, failed, statuses, first_error, t1 = when its last call ended } } }
local _M = {}

local json = require "spapi.json"
local spapi = require "spapi"

local ctl = ngx.shared.fleet_ctl

local function run(p)
  local wid = ngx.worker.id()
  if p.workers then
    local mine = false
    for _, w in ipairs(p.workers) do if w == wid then mine = true end end
    if not mine then return end
  end
  local res = { ok = 0, failed = 0, statuses = {}, worker = wid }
  local sp, err = spapi.client{ env = false, endpoint = p.endpoint, lwa_endpoint = p.lwa_endpoint,
    client_id = "amzn1.application-oa2-client.fleet", client_secret = "fleet-secret",
    refresh_token = p.refresh_token, shared_dict = "spapi_fleet", transport = p.transport,
    rate_margin = p.rate_margin, retry_base = 0.05, retry_cap = 0.2 }
  if not sp then
    res.first_error = tostring(err)
  else
    local function worker()
      for _ = 1, p.calls do
        local body, e = sp:call(p.op, p.params)
        if body then
          res.ok = res.ok + 1
        else
          res.failed = res.failed + 1
          res.first_error = res.first_error or tostring(e)
        end
      end
    end
    local threads = {}
    for i = 1, p.threads or 1 do threads[i] = ngx.thread.spawn(worker) end
    for _, t in ipairs(threads) do ngx.thread.wait(t) end
  end
  ngx.update_time()
  res.t1 = ngx.now()
  ctl:set("result:" .. p.id .. ":" .. wid, json.encode(res))
end

--- init_worker: the timer that waits for runs
function _M.init()
  ngx.timer.at(0, function(premature)
    if premature then return end
    local seen = 0
    ctl:set("ready:" .. ngx.worker.id(), true)
    while not ngx.worker.exiting() do
      local id = ctl:get("run_id") or 0
      if id > seen then
        seen = id
        local ok, e = pcall(run, json.decode(ctl:get("run")))
        if not ok then ctl:set("result:" .. id .. ":" .. ngx.worker.id(), json.encode{ first_error = tostring(e) }) end
      end
      ngx.sleep(0.005)
    end
  end)
end

function _M.go()
  ngx.req.read_body()
  local p = json.decode(ngx.req.get_body_data())
  ngx.update_time()
  ctl:set("t0:" .. p.id, ngx.now())
  ctl:set("run", json.encode(p))
  ctl:set("run_id", p.id)
  ngx.say("{}")
end

function _M.result()
  local id = tonumber(ngx.var.arg_id)
  local out = { t0 = ctl:get("t0:" .. id), results = {}, ready = 0 }
  for w = 0, ngx.worker.count() - 1 do
    if ctl:get("ready:" .. w) then out.ready = out.ready + 1 end
    local s = ctl:get("result:" .. id .. ":" .. w)
    if s then out.results[#out.results + 1] = json.decode(s) end
  end
  ngx.say(json.encode(out))
end

return _M
