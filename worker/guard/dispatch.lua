-- The last atomic check before a request leaves: on Redis' clock, against the record
-- of actual dispatch times (not reservations), the request's lock and the memo.
-- KEYS[1] total dispatch log (sorted set, score µs); KEYS[2] sub-budget dispatch log
-- KEYS[3] the request's in-flight lock ('' handling: ARGV[9] = '' skips it)
-- KEYS[4] the request's memo key (checked only with a lock token)
-- ARGV[1] now µs or '' (Redis TIME); ARGV[2] reserved slot µs; ARGV[3] late tolerance µs
-- ARGV[4] total window µs; ARGV[5] most dispatches allowed in it
-- ARGV[6] sub window µs; ARGV[7] most dispatches in it (0 = no sub check)
-- ARGV[8] unique member; ARGV[9] lock token or ''; ARGV[10] lock TTL ms from now
-- KEYS[5] the deployment's recent lateness (hash: peak µs, at µs)
-- ARGV[11] lateness allowed for µs (half the jitter allowance); ARGV[12] its decay µs
-- (the peak e-folds every ARGV[12] µs); ARGV[13] the most the windows widen µs
-- ARGV[14] '1': only report a departure — the request checked at ARGV[2] is leaving
-- now; its lateness (now - ARGV[2]) joins the peak, nothing is checked or recorded
-- Returns {verdict, now µs, wait µs, memo record, widening µs}: verdict 0 go
-- (recorded), 1 late (slot forfeited), 2 total log full, 3 sub log full, 4 lock lost,
-- 5 memoised, 6 departure reported.
--
-- Widening: how late workers wake after their slots measures how starved they are, and
-- a starved worker is also slow between this check and its bytes leaving. The windows
-- therefore widen by the recent peak lateness beyond half the allowance (decaying, capped):
-- 0 on a machine with CPU to spare, tens of ms on a starved one.
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local token = ARGV[9]
if token ~= '' then
  local memo = redis.call('GET', KEYS[4])
  if memo then return {5, now, 0, memo, 0} end
  if redis.call('GET', KEYS[3]) ~= token then return {4, now, 0, '', 0} end
end
local late = now - tonumber(ARGV[2])
local decay = tonumber(ARGV[12])
local peak = 0
local seen = redis.call('HMGET', KEYS[5], 'peak', 'at')
if seen[1] then
  local age = now - tonumber(seen[2])
  if age < 0 then age = 0 end
  peak = tonumber(seen[1]) * math.exp(-age / decay)
end
if late > peak then peak = late end
redis.call('HSET', KEYS[5], 'peak', string.format('%.0f', peak), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[5], math.ceil(decay / 1000) * 10)
local widen = peak - tonumber(ARGV[11])
if widen < 0 then widen = 0 end
if widen > tonumber(ARGV[13]) then widen = tonumber(ARGV[13]) end
if ARGV[14] == '1' then return {6, now, 0, '', widen} end

if late > tonumber(ARGV[3]) then return {1, now, 0, '', widen} end

-- the window is half-open, (now - window, now]: a dispatch exactly one window after the
-- k-th latest passes (slots k reservation intervals apart are punctual, never refused)
local function full(key, window, most)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%.0f', now - window))
  local n = redis.call('ZCARD', key)
  if n < most then return 0 end
  local oldest = redis.call('ZRANGE', key, n - most, n - most, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now
  if wait < 1 then wait = 1 end
  return wait
end
local wait = full(KEYS[1], tonumber(ARGV[4]) + widen, tonumber(ARGV[5]))
if wait > 0 then return {2, now, wait, '', widen} end
local sub_most = tonumber(ARGV[7])
if sub_most > 0 then
  wait = full(KEYS[2], tonumber(ARGV[6]) + widen, sub_most)
  if wait > 0 then return {3, now, wait, '', widen} end
end

local member = string.format('%.0f', now) .. ':' .. ARGV[8]
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], math.ceil((tonumber(ARGV[4]) + widen) / 1000) + 1000)
if sub_most > 0 then  -- record in the sub-budget's log too
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], math.ceil((tonumber(ARGV[6]) + widen) / 1000) + 1000)
end
if token ~= '' then redis.call('PEXPIRE', KEYS[3], ARGV[10]) end
return {0, now, 0, '', widen}
