-- The last atomic check before a request leaves: on Redis' clock, against the record
-- of actual dispatch times (not reservations), the request's lock and the memo.
-- KEYS[1] total dispatch log (sorted set, score µs); KEYS[2] sub-budget dispatch log
-- KEYS[3] the request's in-flight lock ('' handling: ARGV[9] = '' skips it)
-- KEYS[4] the request's memo key (checked only with a lock token)
-- ARGV[1] now µs or '' (Redis TIME); ARGV[2] reserved slot µs; ARGV[3] late tolerance µs
-- ARGV[4] total window µs; ARGV[5] most dispatches allowed in it
-- ARGV[6] sub window µs; ARGV[7] most dispatches in it (0 = no sub check)
-- ARGV[8] unique member; ARGV[9] lock token or ''; ARGV[10] lock TTL ms from now
-- Returns {verdict, now µs, wait µs, memo record}: verdict 0 go (recorded), 1 late
-- (slot forfeited), 2 total log full, 3 sub log full, 4 lock lost, 5 memoised.
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
  if memo then return {5, now, 0, memo} end
  if redis.call('GET', KEYS[3]) ~= token then return {4, now, 0, ''} end
end
if now - tonumber(ARGV[2]) > tonumber(ARGV[3]) then return {1, now, 0, ''} end

local function full(key, window, most)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('(%.0f', now - window))
  local n = redis.call('ZCARD', key)
  if n < most then return 0 end
  local oldest = redis.call('ZRANGE', key, n - most, n - most, 'WITHSCORES')
  local wait = tonumber(oldest[2]) + window - now + 1
  if wait < 1 then wait = 1 end
  return wait
end
local wait = full(KEYS[1], tonumber(ARGV[4]), tonumber(ARGV[5]))
if wait > 0 then return {2, now, wait, ''} end
local sub_most = tonumber(ARGV[7])
if sub_most > 0 then
  wait = full(KEYS[2], tonumber(ARGV[6]), sub_most)
  if wait > 0 then return {3, now, wait, ''} end
end

local member = string.format('%.0f', now) .. ':' .. ARGV[8]
redis.call('ZADD', KEYS[1], now, member)
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[4]) / 1000) + 1000)
if sub_most > 0 then  -- record in the sub-budget's log too
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], math.ceil(tonumber(ARGV[6]) / 1000) + 1000)
end
if token ~= '' then redis.call('PEXPIRE', KEYS[3], ARGV[10]) end
return {0, now, 0, ''}
