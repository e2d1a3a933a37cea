-- Baseline (seed_app.py): GET /orders/{id}, like the GET share of its own mixed.lua.
local max_id = 100000

init = function(args)
  math.randomseed(os.time() + (tonumber(tostring({}):sub(8)) or 0))
end

request = function()
  return wrk.format("GET", "/orders/" .. math.random(max_id))
end
