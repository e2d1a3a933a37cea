-- Baseline (seed_app.py): GET /orders?status=X&limit=50, like the list share of its own mixed.lua.
local statuses = {"novo", "pago", "separacao", "enviado", "entregue", "cancelado"}

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  return wrk.format("GET", "/orders?status=" .. statuses[math.random(#statuses)] .. "&limit=50")
end
