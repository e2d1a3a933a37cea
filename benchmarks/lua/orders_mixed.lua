-- lastro orders, the baseline's mixed.lua translated: 70% GET /api/orders/{id}, 20% GET
-- /api/orders?status=X&limit=50, 10% POST /api/orders.
-- Environment: BENCH_TOKEN (bearer token), BENCH_MAX_ID (orders seeded).
local statuses = {"received", "in_production", "ready", "delivered", "cancelled"}
local max_id = tonumber(os.getenv("BENCH_MAX_ID") or "100000")
local token = os.getenv("BENCH_TOKEN") or ""
local post_body = '{"customer":"cliente-wrk","items":[{"sku":"SKU-1","name":"Widget","quantity":2,"unit_price":19.9}]}'

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  local r = math.random(100)
  if r <= 70 then
    return wrk.format("GET", "/api/orders/" .. math.random(max_id), {["Authorization"] = "Bearer " .. token})
  elseif r <= 90 then
    local path = "/api/orders?status=" .. statuses[math.random(#statuses)] .. "&limit=50"
    return wrk.format("GET", path, {["Authorization"] = "Bearer " .. token})
  else
    local headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}
    return wrk.format("POST", "/api/orders", headers, post_body)
  end
end
