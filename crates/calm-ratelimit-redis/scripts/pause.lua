-- Pauses every process of the limiter: nobody is admitted before now + ARGV[1] microseconds.
-- A pause never shortens a longer one. A pause is known by its end, in server microseconds:
-- processes tell a pause they already know from a new one by it.
--
-- KEYS[1]  the pause key
-- ARGV[1]  the pause's length in microseconds
-- ARGV[2]  the channel the pause is published on, as "<length>:<end>", so processes already
--          holding places learn it at once
--
-- Returns { microseconds left of the pause in force, its end }: this one, or a longer one
-- already in force.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local length = tonumber(ARGV[1])
local ends = now + length
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if ends <= current then
  return { current - now, current }
end
redis.call('SET', KEYS[1], string.format('%d', ends), 'PX', math.ceil(length / 1000))
redis.call('PUBLISH', ARGV[2], string.format('%d:%d', length, ends))
return { length, ends }
