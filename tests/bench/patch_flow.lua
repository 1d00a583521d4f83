-- PATCH /orders/{id} through the whole status flow.  Each connection, when
-- it needs a request, takes an order that is ready for its next step
-- (pending -> paid -> shipped -> delivered) or, if none is, creates one with
-- POST /orders.  The state travels in the answers: an order's id and status
-- are read from the body of the 201/200 that moved it, so an order is never
-- in flight twice and every PATCH is a legal transition.  Anything but a
-- 2xx is counted (non2xx) and that order dropped.
dofile(os.getenv("BENCH_LUA") .. "/common.lua")

local headers, post_req
local ready, head, tail = {}, 1, 0
local next_status = {pending = "paid", paid = "shipped", shipped = "delivered"}

function init(args)
   non2xx, posts, patches, flows = 0, 0, 0, 0
   headers = bench.headers(true)
   post_req = wrk.format("POST", "/orders", headers,
                         '{"customerId":"customer-bench","items":["item-1","item-2"]}')
end

function request()
   if head <= tail then
      local o = ready[head]
      ready[head] = nil
      head = head + 1
      patches = patches + 1
      return wrk.format("PATCH", "/orders/" .. o[1], headers,
                        '{"status":"' .. o[2] .. '"}')
   end
   posts = posts + 1
   return post_req
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
      return
   end
   local id = body:match('"id":"([0-9a-f-]+)"')
   local st = body:match('"status":"(%a+)"')
   if st == "delivered" then
      flows = flows + 1
   elseif id and next_status[st] then
      tail = tail + 1
      ready[tail] = {id, next_status[st]}
   end
end
