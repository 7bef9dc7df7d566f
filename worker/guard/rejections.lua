-- Rolling window of provider rejections. KEYS[1] sorted set (score = µs).
-- ARGV[1] op: check | add | clear; ARGV[2] now µs or '' (Redis TIME)
-- ARGV[3] window µs; ARGV[4] budget; ARGV[5] unique member for add
-- Returns {rejections in window, µs until traffic may resume (0 = not paused)}.
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local window = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
if ARGV[1] == 'clear' then
  redis.call('DEL', KEYS[1])
  return {0, 0}
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - window))
if ARGV[1] == 'add' then
  redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[5])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
end
local n = redis.call('ZCARD', KEYS[1])
if n >= budget then
  local oldest = redis.call('ZRANGE', KEYS[1], n - budget, n - budget, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return {n, wait}
end
return {n, 0}
