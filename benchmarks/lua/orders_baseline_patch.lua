-- Baseline (seed_app.py): PATCH /orders/{id} {"status"}. It has no ETag or If-Match: a blind update of
-- a random order, as its endpoint allows.
local statuses = {"novo", "pago", "separacao", "enviado", "entregue", "cancelado"}
local max_id = 100000
local headers = {["Content-Type"] = "application/json"}

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  local body = '{"status":"' .. statuses[math.random(#statuses)] .. '"}'
  return wrk.format("PATCH", "/orders/" .. math.random(max_id), headers, body)
end
