-- purgatory circuit record: one hash per circuit (see the package doc).
--
-- KEYS[1]   the circuit's hash
-- ARGV[1]   operation: register, failure, success, claim, release, expire,
--           force, record, reconcile, get, bump, ping
-- ARGV[2]   circuit name           ARGV[3]  pub/sub channel
-- ARGV[4]   threshold              ARGV[5]  ttl (ns)      ARGV[6] trials
-- ARGV[7]   maxttl (ns)            ARGV[8]  failure rate  ARGV[9] window (ns)
-- ARGV[10]  min calls
-- ARGV[11]  generation             ARGV[12] now (Unix ns)
-- ARGV[13..] failure: how many (default 1); claim, expire: the clock skew
--           the caller tolerates (ns, default 0: a lease with slots taken
--           ends once now is not before until + skew); force: target
--           state; record: calls, failed; reconcile: base
--           seq, wanted state, until, level; bump: the seq to go past.
--
-- Returns {status, state, gen, seq, failures, claimed, succeeded, until,
-- level, calls, failed, granted}, numbers but status, state and until
-- (strings), followed by the record's settings {threshold, ttl, trials,
-- maxttl, rate, window, min} as strings when they differ from the
-- caller's or the operation is register. status is "ok", "absent" (get and bump only) or
-- "corrupt: <what>" when the record was unreadable (replaced by a fresh one,
-- except by get). ping returns the commands the user may not run.
--
-- The transitions are those of the functions on store.Snapshot, which
-- TestScriptMatchesPure checks with random operation sequences.
--
-- Lua numbers are doubles: counters stay below 2^53, durations below the
-- bounds of goodSettings; times are decimal strings computed on as
-- {seconds, nanoseconds} pairs.

local key, op, circuit, channel = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local MAXN = 9007199254740991
-- SEQMAX bounds the gen and seq of a readable record: one operation adds
-- less than 2^21 to either (a batch of failures adds at most the
-- threshold), so the script never writes a number a double cannot hold.
local SEQMAX = MAXN - 2097152
local DAY = 86400 * 1e9
local MAXD = 7 * DAY -- the longest ttl, maxttl and window
local FIELDS = {'state', 'gen', 'seq', 'failures', 'claimed', 'succeeded', 'until', 'level', 'calls', 'failed',
  'threshold', 'ttl', 'trials', 'maxttl', 'rate', 'window', 'min', 'wgen', 'wstart', 'wcalls', 'wfailed'}
local BUCKETS = 10

-- int parses a decimal integer in [min, max]; nil if it is not one.
local function int(v, min, max)
  if type(v) ~= 'string' or string.len(v) > 16 or not string.find(v, '^%d+$') then
    return nil
  end
  local n = tonumber(v)
  if n < min or n > (max or MAXN) then
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

local function fmt(n)
  return string.format('%d', n)
end

-- join formats a {seconds, nanoseconds} pair as decimal nanoseconds.
local function join(t)
  local hi, lo = t[1], t[2]
  if hi >= 0 then
    if hi == 0 then
      return fmt(lo)
    end
    return fmt(hi) .. string.format('%09d', lo)
  end
  if lo == 0 then
    return '-' .. fmt(-hi) .. '000000000'
  end
  hi, lo = -hi - 1, 1e9 - lo
  if hi == 0 then
    return '-' .. fmt(lo)
  end
  return '-' .. fmt(hi) .. string.format('%09d', lo)
end

-- after returns the time t plus d nanoseconds (0 <= d <= MAXD).
local function after(t, d)
  local hi, lo = t[1] + math.floor(d / 1e9), t[2] + d % 1e9
  if lo >= 1e9 then
    hi, lo = hi + 1, lo - 1e9
  end
  return {hi, lo}
end

local function before(a, b)
  return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2])
end

-- goodSettings returns the settings t parsed from strings, or nil and what
-- is out of range: threshold 0..1e6, ttl 1ns..7d, trials 1..1e6, maxttl
-- 0..7d, rate 0..1, window 0..7d (1ms..7d with a rate), min 0..1e9.
local function goodSettings(t)
  local s = {
    threshold = int(t.threshold, 0, 1e6), ttl = int(t.ttl, 1, MAXD), trials = int(t.trials, 1, 1e6),
    maxttl = int(t.maxttl, 0, MAXD), window = int(t.window, 0, MAXD), min = int(t.min, 0, 1e9),
  }
  for _, f in ipairs({'threshold', 'ttl', 'trials', 'maxttl', 'window', 'min'}) do
    if s[f] == nil then
      return nil, f
    end
  end
  local rate = type(t.rate) == 'string' and string.len(t.rate) <= 32 and
    string.find(t.rate, '^[0-9.e+-]+$') and tonumber(t.rate)
  if not rate or rate ~= rate or rate < 0 or rate > 1 then
    return nil, 'rate'
  end
  if rate > 0 and s.window < 1e6 then
    return nil, 'window'
  end
  s.rate, s.rateText = rate, t.rate
  return s, nil
end

-- load reads the fields the store owns (and no other: a hash may hold
-- anything else besides). It returns the record, or nil when there is none,
-- or nil and what is wrong with it.
local function load()
  local raw = redis.pcall('HMGET', key, unpack(FIELDS))
  if raw.err ~= nil then
    return nil, 'not a hash'
  end
  local h, any = {}, false
  for i, f in ipairs(FIELDS) do
    if raw[i] then
      h[f], any = raw[i], true
    end
  end
  if not any then
    return nil, nil
  end
  local set, bad = goodSettings(h)
  if set == nil then
    return nil, 'bad field ' .. bad
  end
  local r = {
    state = h.state, gen = int(h.gen, 1, SEQMAX), seq = int(h.seq, 1, SEQMAX), level = int(h.level, 0),
    failures = int(h.failures, 0), claimed = int(h.claimed, 0), succeeded = int(h.succeeded, 0),
    calls = int(h.calls, 0), failed = int(h.failed, 0), set = set,
    wgen = int(h.wgen, 0), wstart = int(h.wstart, 0), wcalls = {}, wfailed = {},
    raw = h, -- the fields as read: a write sets only those that changed
  }
  if r.state ~= 'closed' and r.state ~= 'open' and r.state ~= 'half-open' and r.state ~= 'isolated' then
    return nil, 'bad field state'
  end
  for _, f in ipairs({'gen', 'seq', 'level', 'failures', 'claimed', 'succeeded', 'calls', 'failed', 'wgen', 'wstart'}) do
    if r[f] == nil then
      return nil, 'bad field ' .. f
    end
  end
  for _, f in ipairs({'wcalls', 'wfailed'}) do
    local v = h[f]
    if type(v) ~= 'string' or string.len(v) > BUCKETS * 17 then
      return nil, 'bad field ' .. f
    end
    for n in string.gmatch(v, '[^ ]+') do
      local x = int(n, 0)
      if x == nil then
        return nil, 'bad field ' .. f
      end
      table.insert(r[f], x)
    end
    if #r[f] ~= BUCKETS then
      return nil, 'bad field ' .. f
    end
  end
  if r.state == 'open' or r.state == 'half-open' then
    r.until_ = split(h['until'])
    if r.until_ == nil then
      return nil, 'bad field until'
    end
  end
  return r, nil
end

local function zeros()
  local z = {}
  for i = 1, BUCKETS do
    z[i] = 0
  end
  return z
end

-- clockSeq is the server time in microseconds: the seq of a new record, so
-- that it is newer than anything a breaker saw of a record that was lost.
local function clockSeq()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end

local function fresh(set)
  return {
    state = 'closed', gen = 1, seq = clockSeq(), level = 0,
    failures = 0, claimed = 0, succeeded = 0, calls = 0, failed = 0, set = set,
    wgen = 0, wstart = 0, wcalls = zeros(), wfailed = zeros(),
  }
end

-- to starts a new generation in state st with all counters cleared.
local function to(r, st)
  r.state, r.gen, r.seq = st, r.gen + 1, r.seq + 1
  r.failures, r.claimed, r.succeeded, r.calls, r.failed, r.level, r.until_ = 0, 0, 0, 0, 0, 0, nil
end

-- openFor is Settings.OpenFor.
local function openFor(set, level)
  local d = set.ttl
  if set.maxttl <= d then
    return d
  end
  for _ = 1, level do
    if d >= math.floor(set.maxttl / 2) then
      return set.maxttl
    end
    d = d * 2
  end
  return d
end

local function open(r, now, level)
  to(r, 'open')
  r.level = level
  r.until_ = after(now, openFor(r.set, level))
end

local function halfOpen(r, now)
  local level = r.level
  to(r, 'half-open')
  r.level = level
  r.until_ = after(now, r.set.ttl)
end

local function untilString(r)
  if r.state == 'open' or r.state == 'half-open' then
    return join(r.until_)
  end
  return '0'
end

-- bucket is floor(now / width) for now >= 0 given as decimal nanoseconds,
-- by long division (now does not fit a double exactly).
local function bucket(v, width)
  if string.sub(v, 1, 1) == '-' then
    return nil
  end
  local q, rem = 0, 0
  for i = 1, string.len(v) do
    rem = rem * 10 + tonumber(string.sub(v, i, i))
    local d = math.floor(rem / width)
    rem = rem - d * width
    q = q * 10 + d
  end
  if q > MAXN then
    return nil
  end
  return q
end

-- add is Window.Add on the record's window.
local function add(r, gen, at, calls, failed)
  r.wdirty = true
  if r.wgen ~= gen or at >= r.wstart + BUCKETS then
    r.wgen, r.wstart, r.wcalls, r.wfailed = gen, at, zeros(), zeros()
  elseif at > r.wstart then
    local n = at - r.wstart
    for i = BUCKETS, 1, -1 do
      if i > n then
        r.wcalls[i], r.wfailed[i] = r.wcalls[i - n], r.wfailed[i - n]
      else
        r.wcalls[i], r.wfailed[i] = 0, 0
      end
    end
    r.wstart = at
  elseif at <= r.wstart - BUCKETS then
    return
  end
  local i = math.max(r.wstart - at, 0) + 1
  r.wcalls[i] = r.wcalls[i] + calls
  r.wfailed[i] = r.wfailed[i] + math.min(failed, calls)
end

-- counts formats a window's buckets (table.concat would use %.14g).
local function counts(b)
  local out = {}
  for i = 1, BUCKETS do
    out[i] = fmt(b[i])
  end
  return table.concat(out, ' ')
end

local function totals(r)
  local c, f = 0, 0
  for i = 1, BUCKETS do
    c, f = c + r.wcalls[i], f + r.wfailed[i]
  end
  return c, f
end

-- reply returns the record as numbers (Redis replies with integers; until
-- stays a string: nanoseconds do not fit a double), and its settings only
-- when the caller's differ or when it registers.
local function reply(status, r, granted)
  local s = r.set
  local out = {
    status, r.state, r.gen, r.seq, r.failures, r.claimed, r.succeeded,
    untilString(r), r.level, r.calls, r.failed, granted and 1 or 0,
  }
  if op == 'register' or not (s.threshold == tonumber(ARGV[4]) and s.ttl == tonumber(ARGV[5]) and
    s.trials == tonumber(ARGV[6]) and s.maxttl == tonumber(ARGV[7]) and s.rateText == ARGV[8] and
    s.window == tonumber(ARGV[9]) and s.min == tonumber(ARGV[10])) then
    for _, v in ipairs({fmt(s.threshold), fmt(s.ttl), fmt(s.trials), fmt(s.maxttl), s.rateText, fmt(s.window), fmt(s.min)}) do
      table.insert(out, v)
    end
  end
  return out
end

local function caller()
  return {threshold = ARGV[4], ttl = ARGV[5], trials = ARGV[6], maxttl = ARGV[7], rate = ARGV[8],
    window = ARGV[9], min = ARGV[10]}
end

-- The commands a write makes, with their arguments, for the permission
-- check (Redis 7: redis.acl_check_cmd).
local function denied()
  if not redis.acl_check_cmd then
    return nil
  end
  local missing = {}
  for _, c in ipairs({{'publish', channel, 'x'}, {'hset', key, 'state', 'x'}, {'hmget', key, 'state'},
    {'del', key}, {'pexpire', key, '1'}, {'persist', key}, {'time'}}) do
    if not redis.acl_check_cmd(unpack(c)) then
      table.insert(missing, c[1])
    end
  end
  if #missing == 0 then
    return nil
  end
  return table.concat(missing, ' ')
end

if op == 'ping' then
  return {denied() or ''}
end

local gen = tonumber(ARGV[11])
local nowText = ARGV[12]
local now = split(nowText)
if op ~= 'get' and op ~= 'bump' and now == nil then
  return redis.error_reply('purgatory: bad time ' .. tostring(nowText))
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
if op == 'bump' then
  if r == nil then
    return {corrupt and ('corrupt: ' .. corrupt) or 'absent'}
  end
elseif r == nil then
  if corrupt then
    status = 'corrupt: ' .. corrupt
  end
  local set, bad = goodSettings(caller())
  if set == nil then
    return redis.error_reply('purgatory: bad settings for circuit ' .. circuit .. ': ' .. bad .. ' out of range')
  end
  r = fresh(set)
  created = true
end

local changed, granted = false, false

-- leaseOver is Snapshot.leaseOver: the trial lease of a half-open record
-- with slots taken has run out at now, allowing skew (ARGV[13]).
local function leaseOver(skew)
  return r.state == 'half-open' and r.claimed > 0 and not before(now, after(r.until_, skew))
end

-- skewArg parses a claim's or expire's ARGV[13] (0 when absent).
local function skewArg()
  if ARGV[13] == nil then
    return 0
  end
  return int(ARGV[13], 0, MAXD)
end

if op == 'failure' then
  -- ARGV[13], if given, is how many failures (store.Snapshot.FailureN).
  local n = 1
  if ARGV[13] ~= nil then
    n = int(ARGV[13], 1)
    if n == nil then
      return redis.error_reply('purgatory: bad failure count')
    end
  end
  if gen == r.gen then
    if r.state == 'closed' and r.set.threshold > 0 then
      local k = math.max(r.set.threshold - r.failures, 1) -- the failure that opens it
      if n >= k then
        r.seq = r.seq + (k - 1)
        open(r, now, 0)
      else
        r.failures = r.failures + n
        r.seq = r.seq + n
      end
      changed = true
    elseif r.state == 'half-open' then
      open(r, now, r.level + 1)
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
      if r.succeeded >= r.set.trials then
        local n = r.succeeded
        to(r, 'closed')
        r.succeeded = n -- closed by its trials: a recovery
      else
        if r.claimed > 0 then
          r.claimed = r.claimed - 1 -- a trial that reported holds no slot
        end
        r.seq = r.seq + 1
      end
      changed = true
    end
  end
elseif op == 'claim' then
  local skew = skewArg()
  if skew == nil then
    return redis.error_reply('purgatory: bad skew')
  end
  if r.state == 'open' and r.gen == gen and not before(now, r.until_) then
    halfOpen(r, now)
    gen = r.gen
    changed = true
  end
  if r.state == 'half-open' and r.gen == gen then
    if leaseOver(skew) then
      open(r, now, r.level + 1) -- the trial lease ran out with slots taken
      changed = true
    elseif r.claimed < r.set.trials then
      if r.claimed == 0 then
        r.until_ = after(now, r.set.ttl) -- the lease starts with its first claim
      end
      r.claimed = r.claimed + 1
      r.seq = r.seq + 1
      changed, granted = true, true
    end
  end
elseif op == 'release' then
  if r.state == 'half-open' and r.gen == gen and r.claimed > 0 then
    r.claimed = r.claimed - 1
    r.seq = r.seq + 1
    changed = true
  end
elseif op == 'expire' then
  local skew = skewArg()
  if skew == nil then
    return redis.error_reply('purgatory: bad skew')
  end
  if r.gen == gen and (r.state == 'open' and not before(now, r.until_) or leaseOver(skew)) then
    if r.state == 'open' then
      halfOpen(r, now)
    else
      open(r, now, r.level + 1)
    end
    changed = true
  end
elseif op == 'force' then
  local st = ARGV[13]
  if st == 'open' then
    open(r, now, r.level)
  elseif st == 'half-open' then
    halfOpen(r, now)
  elseif st == 'closed' or st == 'isolated' then
    to(r, st)
  else
    return redis.error_reply('purgatory: bad state ' .. tostring(st))
  end
  changed = true
elseif op == 'record' then
  local calls, failed = int(ARGV[13], 0), int(ARGV[14], 0)
  if calls == nil or failed == nil then
    return redis.error_reply('purgatory: bad counts')
  end
  local set = r.set
  if r.state == 'closed' and r.gen == gen and set.rate > 0 and set.window > 0 and calls > 0 then
    local at = bucket(nowText, math.max(math.floor(set.window / BUCKETS), 1))
    if at == nil then
      return redis.error_reply('purgatory: bad time for a rate window ' .. nowText)
    end
    add(r, gen, at, calls, failed)
    r.calls, r.failed = totals(r)
    if r.calls >= math.max(set.min, 1) and r.failed >= set.rate * r.calls then
      open(r, now, 0)
    else
      r.seq = r.seq + 1
    end
    changed = true
  end
elseif op == 'reconcile' then
  if ARGV[13] == fmt(r.seq) then
    local st, u, level = ARGV[14], split(ARGV[15]), int(ARGV[16], 0)
    if (st == 'open' or st == 'half-open' or st == 'closed' or st == 'isolated') and u ~= nil and level ~= nil then
      to(r, st) -- half-open with no slot taken
      if st == 'open' or st == 'half-open' then
        r.until_ = u
      end
      r.level = level
      changed = true
    end
  end
elseif op == 'bump' then
  local floor = int(ARGV[13], 0, SEQMAX - 1)
  if floor ~= nil and r.seq <= floor then
    r.seq = floor + 1
    changed = true
  end
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
if not changed and gen ~= nil and gen > r.gen and op ~= 'register' and op ~= 'bump' then
  r.seq = math.max(r.seq + 1, clockSeq())
  changed = true
end

if changed or created or status ~= 'ok' or op == 'register' then
  local missing = denied()
  if missing then
    return redis.error_reply('NOPERM purgatory: this user may not run: ' .. missing)
  end
end
if changed or status ~= 'ok' then
  -- Published first: without the right to publish, nothing is written.
  -- Concatenation, not string.format, keeps NUL bytes of the name.
  redis.call('PUBLISH', channel, table.concat({'2', r.state, fmt(r.gen), fmt(r.seq), fmt(r.failures),
    fmt(r.claimed), fmt(r.succeeded), untilString(r), fmt(r.level), fmt(r.calls), fmt(r.failed), circuit}, ' '))
end
if changed or created then
  if status ~= 'ok' then
    redis.call('DEL', key)
  end
  -- Only the fields that changed: a record read as it is (r.raw) keeps
  -- its settings, and its window unless add touched it.
  local s, raw = r.set, r.raw
  local kv = {}
  local function put(f, v)
    if raw == nil or raw[f] ~= v then
      kv[#kv + 1] = f
      kv[#kv + 1] = v
    end
  end
  put('state', r.state)
  put('gen', fmt(r.gen))
  put('seq', fmt(r.seq))
  put('failures', fmt(r.failures))
  put('claimed', fmt(r.claimed))
  put('succeeded', fmt(r.succeeded))
  put('until', untilString(r))
  put('level', fmt(r.level))
  put('calls', fmt(r.calls))
  put('failed', fmt(r.failed))
  if raw == nil then
    put('threshold', fmt(s.threshold))
    put('ttl', fmt(s.ttl))
    put('trials', fmt(s.trials))
    put('maxttl', fmt(s.maxttl))
    put('rate', s.rateText)
    put('window', fmt(s.window))
    put('min', fmt(s.min))
  end
  if raw == nil or r.wdirty then
    put('wgen', fmt(r.wgen))
    put('wstart', fmt(r.wstart))
    put('wcalls', counts(r.wcalls))
    put('wfailed', counts(r.wfailed))
  end
  if #kv > 0 then
    redis.call('HSET', key, unpack(kv))
  end
end
if changed or created or op == 'register' then
  -- Idle expiry, refreshed by every write: a day, or ten times the longest
  -- period of the circuit. An isolated circuit never expires.
  if r.state == 'isolated' then
    redis.call('PERSIST', key)
  else
    local s = r.set
    redis.call('PEXPIRE', key, fmt(math.floor(math.max(DAY, 10 * math.max(s.ttl, s.maxttl, s.window)) / 1e6)))
  end
end
return reply(status, r, granted)
