-- Gives back reservations whose holders were cancelled, when nothing was reserved after
-- them: each quota's TAT is still the one the reservation left.
--
-- KEYS[1..q]   the GCRA keys, as for reserve.lua
-- ARGV[1]      q, the number of quotas
-- ARGV[2..q+1] per quota: emission interval (microseconds)
-- then         per reservation, latest first: the TAT it left in each quota
--
-- Returns how many reservations were given back. Latest first, so a run of cancelled
-- reservations at the end of the queue is given back whole.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local q = tonumber(ARGV[1])
local refunded = 0
local j = q + 2
while j + q - 1 <= #ARGV do
  local last = true
  for i = 1, q do
    if redis.call('GET', KEYS[i]) ~= ARGV[j + i - 1] then
      last = false
      break
    end
  end
  if last then
    for i = 1, q do
      local tat = tonumber(ARGV[j + i - 1]) - tonumber(ARGV[1 + i])
      if tat > now then
        redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
      else
        redis.call('DEL', KEYS[i])
      end
    end
    refunded = refunded + 1
  end
  j = j + q
end
return refunded
