-- 80% GET /items/<random id in the seeded range>, 20% POST /items.
local max_id = 100000
local body = '{"name":"bench","price":1.5}'
local post_headers = { ["Content-Type"] = "application/json" }

init = function(args)
  math.randomseed(os.time())
end

request = function()
  if math.random() < 0.8 then
    return wrk.format("GET", "/items/" .. math.random(1, max_id))
  end
  return wrk.format("POST", "/items", post_headers, body)
end
