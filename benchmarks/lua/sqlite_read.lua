-- 100% GET /items/<random id in the seeded range>.
local max_id = 100000

init = function(args)
  math.randomseed(os.time())
end

request = function()
  return wrk.format("GET", "/items/" .. math.random(1, max_id))
end
