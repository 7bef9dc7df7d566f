-- GCRA reservation over two budgets at once (the total and one sub-budget).
-- KEYS[1] total TAT key, KEYS[2] sub-budget TAT key (µs, Redis clock).
-- ARGV[1] now in µs, or '' to use Redis TIME (the one clock shared by all hosts)
-- ARGV[2] total emission interval µs; ARGV[3] sub-budget interval µs (0 = none)
-- ARGV[4] burst tolerance µs (0 = none); ARGV[5] longest wait µs worth reserving
-- Returns {reserved 0|1, wait µs, binding 0 none|1 total|2 sub, slot µs, now µs}.
-- Refusal reserves nothing: the caller comes back later instead of polling.
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local t_total = tonumber(ARGV[2])
local t_sub = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local max_wait = tonumber(ARGV[5])
local tat_total = tonumber(redis.call('GET', KEYS[1]) or '0')
local tat_sub = tonumber(redis.call('GET', KEYS[2]) or '0')

local slot = now
local binding = 0
if tat_total - burst > slot then
  slot = tat_total - burst
  binding = 1
end
if t_sub > 0 and tat_sub - burst > slot then
  slot = tat_sub - burst
  binding = 2
end
local wait = slot - now
if wait > max_wait then
  return {0, wait, binding, slot, now}
end

local new_total = math.max(tat_total, slot) + t_total
redis.call('SET', KEYS[1], string.format('%.0f', new_total),
  'PX', math.ceil((new_total - now) / 1000) + 1000)
if t_sub > 0 then
  local new_sub = math.max(tat_sub, slot) + t_sub
  redis.call('SET', KEYS[2], string.format('%.0f', new_sub),
    'PX', math.ceil((new_sub - now) / 1000) + 1000)
end
return {1, wait, binding, slot, now}
