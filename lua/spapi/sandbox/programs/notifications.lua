-- Notifications v1: destinations (grantless: client_credentials token with the
-- sellingpartnerapi::notifications scope) and subscriptions (seller tokens).
-- Destinations are per application (client id); subscriptions per application
-- and selling partner. No notification is delivered: the sandbox has no SQS.
local _M = {}

local function app(req) return req.client_id end

_M.handlers = {}

local function destination_view(d)
  return { name = d.name, destinationId = d.destinationId, resource = d.resource }
end

function _M.handlers.createDestination(req, sb)
  local b = req.body or {}
  if type(b.name) ~= "string" or b.name == "" then return sb.err(400, "InvalidInput", "name is required.") end
  local spec = b.resourceSpecification
  if type(spec) ~= "table" or (type(spec.sqs) ~= "table" and type(spec.eventBridge) ~= "table") then
    return sb.err(400, "InvalidInput", "resourceSpecification needs sqs or eventBridge.")
  end
  local resource
  if type(spec.sqs) == "table" then
    if type(spec.sqs.arn) ~= "string" or not spec.sqs.arn:match("^arn:aws:sqs:") then
      return sb.err(400, "InvalidInput", "sqs.arn must be an SQS queue ARN.")
    end
    resource = { sqs = { arn = spec.sqs.arn } }
  else
    local eb = spec.eventBridge
    if type(eb.region) ~= "string" or type(eb.accountId) ~= "string" then
      return sb.err(400, "InvalidInput", "eventBridge needs region and accountId.")
    end
    resource = { eventBridge = { name = "aws.partner/sellingpartnerapi.amazon.com/" .. eb.accountId .. "/sandbox",
                                 region = eb.region, accountId = eb.accountId } }
  end
  for _, d in ipairs(sb.state.list("notif_destination")) do
    if d.app == app(req) and sb.json.canonical(d.resource) == sb.json.canonical(resource) then
      return sb.err(409, "Conflict", "A destination for this resource already exists: " .. d.destinationId)
    end
  end
  local h = ngx.md5(app(req) .. sb.state.next_id("dest"))
  local id = string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12), h:sub(13, 16), h:sub(17, 20), h:sub(21, 32))
  local d = { app = app(req), name = b.name, destinationId = id, resource = resource }
  sb.state.put("notif_destination", id, d)
  return 200, { payload = destination_view(d) }
end

function _M.handlers.getDestinations(req, sb)
  local list = sb.json.array()
  for _, d in ipairs(sb.state.list("notif_destination")) do
    if d.app == app(req) then list[#list + 1] = destination_view(d) end
  end
  return 200, { payload = list }
end

local function find_destination(req, sb, id)
  local d = sb.state.get("notif_destination", id)
  if d and d.app == app(req) then return d end
  return nil
end

function _M.handlers.getDestination(req, sb)
  local d = find_destination(req, sb, req.params.destinationId)
  if not d then return sb.err(404, "NotFound", "The destination " .. req.params.destinationId .. " was not found.") end
  return 200, { payload = destination_view(d) }
end

function _M.handlers.deleteDestination(req, sb)
  local id = req.params.destinationId
  if not find_destination(req, sb, id) then
    return sb.err(404, "NotFound", "The destination " .. id .. " was not found.")
  end
  for _, s in ipairs(sb.state.list("notif_subscription")) do
    if s.destinationId == id then
      return sb.err(409, "Conflict", "The destination is used by subscription " .. s.subscriptionId .. ".")
    end
  end
  sb.state.delete("notif_destination", id)
  return 200, {}
end

local function sub_key(req, ntype) return app(req) .. "/" .. req.selling_partner .. "/" .. ntype end

local function sub_view(s)
  return { subscriptionId = s.subscriptionId, payloadVersion = s.payloadVersion, destinationId = s.destinationId,
           processingDirective = s.processingDirective }
end

function _M.handlers.createSubscription(req, sb)
  local ntype = req.params.notificationType
  local b = req.body or {}
  if type(b.payloadVersion) ~= "string" or type(b.destinationId) ~= "string" then
    return sb.err(400, "InvalidInput", "payloadVersion and destinationId are required.")
  end
  if not find_destination(req, sb, b.destinationId) then
    return sb.err(400, "InvalidInput", "The destination " .. b.destinationId .. " does not exist.")
  end
  local k = sub_key(req, ntype)
  local existing = sb.state.get("notif_subscription", k)
  if existing then
    return sb.err(409, "Conflict", "A subscription for " .. ntype .. " already exists: " .. existing.subscriptionId)
  end
  local h = ngx.md5(k .. sb.state.next_id("sub"))
  local s = { app = app(req), sp = req.selling_partner, notificationType = ntype, subscriptionId = string.format("%s-%s-%s-%s-%s", h:sub(1, 8), h:sub(9, 12),
    h:sub(13, 16), h:sub(17, 20), h:sub(21, 32)), payloadVersion = b.payloadVersion, destinationId = b.destinationId,
    processingDirective = b.processingDirective }
  sb.state.put("notif_subscription", k, s)
  return 200, { payload = sub_view(s) }
end

function _M.handlers.getSubscription(req, sb)
  local s = sb.state.get("notif_subscription", sub_key(req, req.params.notificationType))
  if not s then return sb.err(404, "NotFound", "No subscription for " .. req.params.notificationType .. ".") end
  return 200, { payload = sub_view(s) }
end

-- grantless: the application's subscription with this id, whatever the seller
local function find_by_id(req, sb)
  for _, s in ipairs(sb.state.list("notif_subscription")) do
    if s.app == app(req) and s.subscriptionId == req.params.subscriptionId
      and s.notificationType == req.params.notificationType then
      return s
    end
  end
  return nil
end

function _M.handlers.getSubscriptionById(req, sb)
  local s = find_by_id(req, sb)
  if not s then
    return sb.err(404, "NotFound", "The subscription " .. req.params.subscriptionId .. " was not found.")
  end
  return 200, { payload = sub_view(s) }
end

function _M.handlers.deleteSubscriptionById(req, sb)
  local s = find_by_id(req, sb)
  if not s then
    return sb.err(404, "NotFound", "The subscription " .. req.params.subscriptionId .. " was not found.")
  end
  sb.state.delete("notif_subscription", s.app .. "/" .. s.sp .. "/" .. s.notificationType)
  return 200, {}
end

function _M.handlers.getSubscriptions(req, sb)
  local wanted = {}
  for _, v in ipairs(req.query_all.notificationTypes or {}) do
    for t in v:gmatch("[^,]+") do wanted[t] = true end
  end
  local list = sb.json.array()
  for _, s in ipairs(sb.state.list("notif_subscription")) do
    if wanted[s.notificationType] and sb.state.get("notif_subscription", sub_key(req, s.notificationType)) then
      local v = sub_view(s)
      v.notificationType = s.notificationType
      list[#list + 1] = v
    end
  end
  return 200, { payload = { subscriptions = list } }
end

function _M.handlers.sendTestNotification(req, sb)
  local s
  for _, x in ipairs(sb.state.list("notif_subscription")) do
    if x.app == app(req) and x.notificationType == req.params.notificationType then s = x end
  end
  if not s then return sb.err(404, "NotFound", "No subscription for " .. req.params.notificationType .. ".") end
  return 200, {}
end

return _M
