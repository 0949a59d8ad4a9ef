-- Pauses every process of the limiter: nobody is admitted before now + ARGV[1] microseconds.
-- A pause never shortens a longer one. The pause is published on ARGV[2] (its length in
-- microseconds), so processes already holding places learn it at once.
--
-- KEYS[1]  the pause key
-- Returns 1 when the end of the pause moved, 0 otherwise.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local length = tonumber(ARGV[1])
local ends = now + length
if ends <= tonumber(redis.call('GET', KEYS[1]) or '0') then
  return 0
end
redis.call('SET', KEYS[1], string.format('%d', ends), 'PX', math.ceil(length / 1000))
redis.call('PUBLISH', ARGV[2], ARGV[1])
return 1
