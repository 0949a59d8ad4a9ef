-- Reserves places for a batch of requests, in order, in every quota at once (GCRA).
--
-- KEYS[1]      the pause key (the end of a server pause, in server microseconds)
-- KEYS[2..q+1] one GCRA key per quota (its theoretical arrival time, TAT, in microseconds)
-- ARGV[1]      q, the number of quotas
-- ARGV[2..]    per quota: emission interval, tolerance (microseconds)
-- then         per request: the longest wait it accepts in microseconds, -1 for none
--
-- Returns { pause left in microseconds (0: none), the pause's end (its identity; 0: none),
-- { per request: {1, wait, TAT per quota} when reserved, {0, wait} when the wait would pass
-- its bound (nothing is taken) } }.
--
-- NOTE: times are integers of microseconds read from the server's own clock (TIME); they
-- stay below 2^53, so Lua's doubles hold them exactly. They are written with '%d': Lua's
-- tostring would round them to 14 digits.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local q = tonumber(ARGV[1])
-- NOTE: one MGET for every key: each redis.call costs as much as the arithmetic around it.
local stored = redis.call('MGET', unpack(KEYS))
local pause = tonumber(stored[1] or '0')

local tats, intervals, tolerances = {}, {}, {}
for i = 1, q do
  intervals[i] = tonumber(ARGV[2 * i])
  tolerances[i] = tonumber(ARGV[2 * i + 1])
  tats[i] = tonumber(stored[i + 1] or '0')
end

local results = {}
local reserved = false
for j = 2 * q + 2, #ARGV do
  local bound = tonumber(ARGV[j])
  local at = math.max(now, pause)
  for i = 1, q do
    at = math.max(at, tats[i] - tolerances[i])
  end
  local wait = at - now
  if bound >= 0 and wait > bound then
    results[#results + 1] = { 0, wait }
  else
    local result = { 1, wait }
    for i = 1, q do
      tats[i] = math.max(tats[i], at) + intervals[i]
      result[#result + 1] = tats[i]
    end
    results[#results + 1] = result
    reserved = true
  end
end

-- A TAT at or before now says nothing a missing key does not: each key expires then.
if reserved then
  for i = 1, q do
    local ttl = math.ceil((tats[i] - now) / 1000)
    redis.call('SET', KEYS[i + 1], string.format('%d', tats[i]), 'PX', ttl)
  end
end
if pause <= now then
  pause = 0
end
return { math.max(pause - now, 0), pause, results }
