-- 90% reads, 10% writes: 80% GET /orders/{id} (random seeded ids), 10%
-- GET /orders?limit=20 (the first page), 10% POST /orders.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local gets, list_req, post_req

function init(args)
   bench.seed()
   local h = bench.headers(false)
   gets = {}
   for i, id in ipairs(bench.read_ids()) do
      gets[i] = wrk.format("GET", "/orders/" .. id, h)
   end
   list_req = wrk.format("GET", "/orders?limit=20", h)
   post_req = wrk.format("POST", "/orders", bench.headers(true),
                         '{"customerId":"customer-bench","items":["item-1","item-2"]}')
end

function request()
   local r = math.random(10)
   if r <= 8 then
      return gets[math.random(#gets)]
   elseif r == 9 then
      return list_req
   end
   return post_req
end
