-- The shared breaker: every transition in one atomic script.
-- KEYS[1] state hash, KEYS[2] half-open probe lock, KEYS[3] transition counters hash.
-- ARGV[1] op: check | gate | success | failure | auth | release | reset
-- ARGV[2] now µs or '' (Redis TIME); ARGV[3] probe token ('' = not a probe)
-- ARGV[4] failure threshold; ARGV[5] base cool-down µs; ARGV[6] max cool-down µs
-- ARGV[7] auth cool-down µs; ARGV[8] probe lock TTL ms
-- Returns {decision, µs to wait, transition ('' | opened | half_opened | closed), step}.
local op = ARGV[1]
local now
if ARGV[2] ~= '' then
  now = tonumber(ARGV[2])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local token = ARGV[3]
local threshold = tonumber(ARGV[4])
local base = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])
local auth = tonumber(ARGV[7])
local probe_ttl = tonumber(ARGV[8])

local st = redis.call('HMGET', KEYS[1], 'state', 'failures', 'open_until', 'step')
local state = st[1] or 'closed'
local failures = tonumber(st[2] or '0')
local open_until = tonumber(st[3] or '0')
local step = tonumber(st[4] or '0')

local function fmt(x) return string.format('%.0f', x) end
local function cooldown(s)
  local c = base * math.pow(2, s)
  if c > cap then c = cap end
  return c
end
local function is_probe()
  return token ~= '' and redis.call('GET', KEYS[2]) == token
end
local function open(duration, reason)
  redis.call('HSET', KEYS[1], 'state', 'open', 'failures', failures, 'step', step,
    'open_until', fmt(now + duration), 'opened_at', fmt(now), 'reason', reason)
  redis.call('HINCRBY', KEYS[3], 'opened', 1)
  return {'open', duration, 'opened', step}
end

if op == 'check' then
  if state == 'closed' then return {'closed', 0, '', step} end
  local transition = ''
  if state == 'open' then
    if now < open_until then return {'open', open_until - now, '', step} end
    redis.call('HSET', KEYS[1], 'state', 'half_open', 'half_opened_at', fmt(now))
    redis.call('HINCRBY', KEYS[3], 'half_opened', 1)
    transition = 'half_opened'
  end
  if redis.call('SET', KEYS[2], token, 'NX', 'PX', probe_ttl) then
    return {'probe', 0, transition, step}
  end
  local pttl = redis.call('PTTL', KEYS[2])
  if pttl < 0 then pttl = 0 end
  return {'busy', pttl * 1000, transition, step}
elseif op == 'gate' then
  if state == 'closed' or is_probe() then return {'closed', 0, '', step} end
  local wait = open_until - now
  if wait < 0 then wait = 0 end
  return {'open', wait, '', step}
elseif op == 'success' then
  if state == 'closed' then
    if failures > 0 then redis.call('HSET', KEYS[1], 'failures', 0) end
    return {'closed', 0, '', step}
  end
  if is_probe() then
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'step', 0, 'open_until', 0,
      'closed_at', fmt(now), 'reason', '')
    redis.call('DEL', KEYS[2])
    redis.call('HINCRBY', KEYS[3], 'closed', 1)
    return {'closed', 0, 'closed', 0}
  end
  return {state, 0, '', step}  -- a straggler from before the breaker opened
elseif op == 'failure' then
  if state == 'closed' then
    failures = failures + 1
    if failures >= threshold then return open(cooldown(step), 'unhealthy') end
    redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', failures)
    return {'closed', 0, '', step}
  end
  if is_probe() then
    redis.call('DEL', KEYS[2])
    failures = failures + 1
    if step < 40 then step = step + 1 end
    return open(cooldown(step), 'probe_failed')
  end
  return {state, 0, '', step}
elseif op == 'auth' then
  failures = failures + 1
  if is_probe() then redis.call('DEL', KEYS[2]) end
  if state == 'open' and open_until >= now + auth then
    return {'open', open_until - now, '', step}
  end
  return open(auth, 'authentication_failed')
elseif op == 'release' then
  if is_probe() then redis.call('DEL', KEYS[2]) end
  return {state, 0, '', step}
elseif op == 'reset' then
  redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0, 'step', 0, 'open_until', 0,
    'closed_at', fmt(now), 'reason', 'operator_reset')
  redis.call('DEL', KEYS[2])
  if state ~= 'closed' then
    redis.call('HINCRBY', KEYS[3], 'closed', 1)
    return {'closed', 0, 'closed', 0}
  end
  return {'closed', 0, '', 0}
end
return redis.error_reply('unknown breaker op ' .. op)
