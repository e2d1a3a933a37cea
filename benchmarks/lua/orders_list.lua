-- lastro orders: GET /api/orders?status=X&limit=50, X uniform over the service's five statuses.
-- Environment: BENCH_TOKEN (bearer token).
local statuses = {"received", "in_production", "ready", "delivered", "cancelled"}
local headers = {["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")}

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  return wrk.format("GET", "/api/orders?status=" .. statuses[math.random(#statuses)] .. "&limit=50", headers)
end
