-- purgatory circuit record: one hash per circuit (see the package doc).
--
-- KEYS[1]  the circuit's hash
-- ARGV[1]  operation: register, failure, success, claim, release, expire,
--          force, get
-- ARGV[2]  circuit name      ARGV[3] pub/sub channel
-- ARGV[4]  threshold         ARGV[5] ttl (ns)       ARGV[6] trials
-- ARGV[7]  generation        ARGV[8] now (unix ns)  ARGV[9] force target
--
-- Returns {status, state, gen, seq, failures, claimed, succeeded,
-- open_until, threshold, ttl, trials, granted}, all strings. status is "ok",
-- "absent" (get only) or "corrupt: <what>" when the record was unreadable
-- and has been replaced by a fresh one.
--
-- Lua numbers are doubles: counters stay below 2^53; times and durations are
-- kept as decimal strings and computed on as {seconds, nanoseconds} pairs.

local key, op, circuit, channel = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local MAXN = 9007199254740991

local function int(v, min)
  if type(v) ~= 'string' or string.len(v) > 16 or not string.find(v, '^%d+$') then
    return nil
  end
  local n = tonumber(v)
  if n < min or n > MAXN then
    return nil
  end
  return n
end

-- split parses decimal nanoseconds into {seconds, nanoseconds in [0, 1e9)}.
local function split(v)
  if type(v) ~= 'string' then
    return nil
  end
  local neg = false
  if string.sub(v, 1, 1) == '-' then
    neg = true
    v = string.sub(v, 2)
  end
  local n = string.len(v)
  if n == 0 or n > 21 or not string.find(v, '^%d+$') then
    return nil
  end
  local hi, lo = 0, tonumber(v)
  if n > 9 then
    hi = tonumber(string.sub(v, 1, n - 9))
    lo = tonumber(string.sub(v, n - 8))
  end
  if neg then
    if lo > 0 then
      hi, lo = -hi - 1, 1e9 - lo
    else
      hi = -hi
    end
  end
  return {hi, lo}
end

-- join formats a {seconds, nanoseconds} pair as decimal nanoseconds.
local function join(t)
  local hi, lo = t[1], t[2]
  if hi >= 0 then
    if hi == 0 then
      return string.format('%d', lo)
    end
    return string.format('%d%09d', hi, lo)
  end
  if lo == 0 then
    return string.format('-%d000000000', -hi)
  end
  hi, lo = -hi - 1, 1e9 - lo
  if hi == 0 then
    return string.format('-%d', lo)
  end
  return string.format('-%d%09d', hi, lo)
end

local function add(a, b)
  local hi, lo = a[1] + b[1], a[2] + b[2]
  if lo >= 1e9 then
    hi, lo = hi + 1, lo - 1e9
  end
  return {hi, lo}
end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

local function positive(t)
  return t ~= nil and (t[1] > 0 or (t[1] == 0 and t[2] > 0))
end

-- load reads the record: nil when absent, or nil and a reason when corrupt.
local function load()
  local raw = redis.pcall('HGETALL', key)
  if raw.err ~= nil then
    return nil, 'not a hash'
  end
  if #raw == 0 then
    return nil, nil
  end
  local h = {}
  for i = 1, #raw, 2 do
    h[raw[i]] = raw[i + 1]
  end
  local r = {
    state = h.state, gen = int(h.gen, 1), seq = int(h.seq, 1),
    failures = int(h.failures, 0), claimed = int(h.claimed, 0), succeeded = int(h.succeeded, 0),
    threshold = int(h.threshold, 1), ttl = split(h.ttl), trials = int(h.trials, 1),
  }
  if r.state ~= 'closed' and r.state ~= 'open' and r.state ~= 'half-open' then
    return nil, 'bad field state'
  end
  for _, f in ipairs({'gen', 'seq', 'failures', 'claimed', 'succeeded', 'threshold', 'ttl', 'trials'}) do
    if r[f] == nil then
      return nil, 'bad field ' .. f
    end
  end
  if not positive(r.ttl) then
    return nil, 'bad field ttl'
  end
  if r.state == 'open' then
    r.until_ = split(h.open_until)
    if r.until_ == nil then
      return nil, 'bad field open_until'
    end
  end
  return r, nil
end

-- fresh makes a new closed record with the caller's settings. Its sequence
-- number comes from the server clock (microseconds), so that it is newer
-- than anything a breaker saw of a record that was lost (a Redis restart
-- without persistence, an eviction, a repair).
-- clockSeq is the server time in microseconds.
local function clockSeq()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fresh()
  local set = {threshold = int(ARGV[4], 1), ttl = split(ARGV[5]), trials = int(ARGV[6], 1)}
  if set.threshold == nil or set.trials == nil or not positive(set.ttl) then
    return redis.error_reply('purgatory: bad settings for circuit ' .. circuit)
  end
  return {
    state = 'closed', gen = 1, seq = clockSeq(),
    failures = 0, claimed = 0, succeeded = 0,
    threshold = set.threshold, ttl = set.ttl, trials = set.trials,
  }
end

local function to(r, st)
  r.state, r.gen, r.seq = st, r.gen + 1, r.seq + 1
  r.failures, r.claimed, r.succeeded, r.until_ = 0, 0, 0, nil
end

local function open(r, now)
  to(r, 'open')
  r.until_ = add(now, r.ttl)
end

local function fmt(n)
  return string.format('%d', n)
end

local function untilString(r)
  if r.state == 'open' then
    return join(r.until_)
  end
  return '0'
end

local function reply(status, r, granted)
  return {
    status, r.state, fmt(r.gen), fmt(r.seq), fmt(r.failures), fmt(r.claimed), fmt(r.succeeded),
    untilString(r), fmt(r.threshold), join(r.ttl), fmt(r.trials), granted and '1' or '0',
  }
end

local gen = tonumber(ARGV[7])
local now = split(ARGV[8])
if op ~= 'get' and now == nil then
  return redis.error_reply('purgatory: bad time ' .. tostring(ARGV[8]))
end

local r, corrupt = load()
if op == 'get' then
  if r == nil then
    return {corrupt and ('corrupt: ' .. corrupt) or 'absent'}
  end
  return reply('ok', r, false)
end

local status = 'ok'
local created = false
if r == nil then
  if corrupt then
    status = 'corrupt: ' .. corrupt
    redis.call('DEL', key)
  end
  r = fresh()
  if r.err then
    return r
  end
  created = true
end

local changed, granted = false, false

if op == 'failure' then
  if gen == r.gen then
    if r.state == 'closed' then
      r.failures = r.failures + 1
      if r.failures >= r.threshold then
        open(r, now)
      else
        r.seq = r.seq + 1
      end
      changed = true
    elseif r.state == 'half-open' then
      open(r, now)
      changed = true
    end
  end
elseif op == 'success' then
  if gen == r.gen then
    if r.state == 'closed' then
      if r.failures > 0 then
        r.failures = 0
        r.seq = r.seq + 1
        changed = true
      end
    elseif r.state == 'half-open' then
      r.succeeded = r.succeeded + 1
      if r.succeeded >= r.trials then
        to(r, 'closed')
      else
        r.seq = r.seq + 1
      end
      changed = true
    end
  end
elseif op == 'claim' then
  if r.state == 'open' and r.gen == gen and not before(now, r.until_) then
    to(r, 'half-open')
    gen = r.gen
    changed = true
  end
  if r.state == 'half-open' and r.gen == gen and r.claimed < r.trials then
    r.claimed = r.claimed + 1
    r.seq = r.seq + 1
    changed, granted = true, true
  end
elseif op == 'release' then
  if r.state == 'half-open' and r.gen == gen and r.claimed > 0 then
    r.claimed = r.claimed - 1
    r.seq = r.seq + 1
    changed = true
  end
elseif op == 'expire' then
  if r.state == 'open' and r.gen == gen and not before(now, r.until_) then
    to(r, 'half-open')
    changed = true
  end
elseif op == 'force' then
  if ARGV[9] ~= 'closed' and ARGV[9] ~= 'open' and ARGV[9] ~= 'half-open' then
    return redis.error_reply('purgatory: bad state ' .. tostring(ARGV[9]))
  end
  if ARGV[9] == 'open' then
    open(r, now)
  else
    to(r, ARGV[9])
  end
  changed = true
elseif op ~= 'register' then
  return redis.error_reply('purgatory: unknown operation ' .. tostring(op))
end

-- A caller in a later generation than the record has seen a history the
-- record lost (Redis restarted from an older snapshot, or failed over to a
-- replica that missed writes), or moved on by itself while Redis was away.
-- Either way the record is the truth now: leave it as it is, but give it a
-- sequence number newer than anything of the lost history (the server time,
-- as for a new record) and announce it, so that every breaker adopts it
-- instead of waiting forever for a generation that will not come.
if not changed and gen ~= nil and gen > r.gen and op ~= 'register' then
  r.seq = math.max(r.seq + 1, clockSeq())
  changed = true
end

if changed or created then
  redis.call('HSET', key,
    'state', r.state, 'gen', fmt(r.gen), 'seq', fmt(r.seq),
    'failures', fmt(r.failures), 'claimed', fmt(r.claimed), 'succeeded', fmt(r.succeeded),
    'open_until', untilString(r),
    'threshold', fmt(r.threshold), 'ttl', join(r.ttl), 'trials', fmt(r.trials))
end
if changed or status ~= 'ok' then
  redis.call('PUBLISH', channel, string.format('1 %s %s %s %s %s %s %s %s',
    r.state, fmt(r.gen), fmt(r.seq), fmt(r.failures), fmt(r.claimed), fmt(r.succeeded),
    untilString(r), circuit))
end
return reply(status, r, granted)
