-- 100% POST /items (one INSERT in BEGIN IMMEDIATE per request).
local body = '{"name":"bench","price":1.5}'
local post_headers = { ["Content-Type"] = "application/json" }

request = function()
  return wrk.format("POST", "/items", post_headers, body)
end
