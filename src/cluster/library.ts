// The Redis function library every master holds. tt_flush is the only function that adds counts:
// it applies one node's pre-aggregated batches, one per partition, for the partitions of one master
// in one call, each atomically and at most once, by the node's watermark for that partition (the
// last journal LSN of its that Redis holds):
//   hi <= mark: a duplicate (a retry after a lost reply, a replay after a restart): nothing changes;
//   lo == mark: the next batch: the counts, totals and expiry are applied and the mark becomes hi;
//   else: a gap (Redis lost acknowledged batches in a failover): nothing changes, and the node
//   replays its journal from the mark it is told.
// Redis replicates a function's effects as one transaction, so the counts and the marks are kept or
// lost together. An hour's sorted set is not updated by every batch: a minute is added to its hour
// once, after it closed (tt_fold), and until then reads of the hour add the minute themselves. So
// each batch updates one sorted set per (domain, minute) instead of two, and what a read answers
// never depends on whether a minute was folded yet. tt_top reads the candidates for an exact top-N
// (see reader.ts) of the partitions it is given, usually all those a master holds. Both name keys
// of several slots (built from the partitions' tags), which Redis allows a function flagged
// allow-cross-slot-keys as long as this master serves them all. tt_takeover swaps an idempotency
// key's claim atomically (see shared-keys.ts).

export const LIBRARY_NAME = 'toptally';

export const LIBRARY = `#!lua name=${LIBRARY_NAME}
-- Applies one batch's windows in the partition whose keys start with prefix, from args[from] on:
-- per window its minute, hour, whether the minute is closed on the sender's clock, the minute's and
-- the hour's TTL, the sum of its deltas and its pairs.
local function applyWindows(prefix, args, from, windows)
  for a = from, from + 7 * (windows - 1), 7 do
    local index, hourIndex, closed, minuteTtl, hourTtl, sum = args[a], args[a + 1], args[a + 2], args[a + 3], args[a + 4], args[a + 5]
    local minute, hour = prefix .. ':m:' .. index, prefix .. ':h:' .. hourIndex
    -- The pairs come packed (pairs-pack.ts): member, delta, member, delta...
    local packed = cmsgpack.unpack(args[a + 6])
    local n = #packed / 2
    -- A minute is unfolded (listed in its hour's :u set) from its first batch if that came while
    -- it was open on the sender's clock, then folded (:f) by tt_fold, never back: an unfolded
    -- minute gets the deltas alone, and its hour only the members new to it (at 0, so the hour's
    -- size stays exact), until tt_fold adds the whole minute to the hour once; a folded minute
    -- gets each delta in the hour too. An unfolded minute's sorted set lives as long as its hour,
    -- so that it is never lost to the hour unfolded.
    local unfolded, folded = hour .. ':u', hour .. ':f'
    local direct = redis.call('SISMEMBER', folded, index) == 1
    if not direct and redis.call('SISMEMBER', unfolded, index) == 0 then
      direct = closed == '1'
      local state = direct and folded or unfolded
      redis.call('SADD', state, index)
      redis.call('EXPIRE', state, hourTtl)
    end
    -- Scores go to redis.call as Lua numbers, which Redis formats itself with all 17 digits (Lua's
    -- own tostring would keep 14).
    if direct then
      for i = 1, 2 * n, 2 do
        redis.call('ZINCRBY', minute, packed[i + 1], packed[i])
        redis.call('ZINCRBY', hour, packed[i + 1], packed[i])
      end
      redis.call('EXPIRE', minute, minuteTtl)
    else
      -- A ZMSCORE and a ZADD per thousand members: a ZINCRBY each costs Redis more, in the call
      -- and in what it appends to the AOF.
      for from = 0, n - 1, 1000 do
        local members, update, new = {}, {}, {}
        for i = 1, math.min(1000, n - from) do members[i] = packed[2 * (from + i) - 1] end
        local scores = redis.call('ZMSCORE', minute, unpack(members))
        for i, member in ipairs(members) do
          local delta = packed[2 * (from + i)]
          if scores[i] then
            update[2 * i - 1] = tonumber(scores[i]) + delta
          else
            update[2 * i - 1] = delta
            new[#new + 1] = 0
            new[#new + 1] = member
          end
          update[2 * i] = member
        end
        redis.call('ZADD', minute, unpack(update))
        if #new > 0 then redis.call('ZADD', hour, 'NX', unpack(new)) end
      end
      redis.call('EXPIRE', minute, hourTtl)
    end
    redis.call('INCRBY', minute .. ':t', sum)
    redis.call('INCRBY', hour .. ':t', sum)
    redis.call('EXPIRE', minute .. ':t', minuteTtl)
    redis.call('EXPIRE', hour, hourTtl)
    redis.call('EXPIRE', hour .. ':t', hourTtl)
  end
end

-- One node's batches for partitions this master serves: keys[1] (the first one's watermark) routes
-- the call; args are the node id, then per partition its tag, lo, hi, its number of windows and
-- those (see applyWindows). Each batch is judged by its own watermark; the reply is its outcome
-- and the watermark, per partition in order. Every watermark is read before anything is written,
-- so a partition this master does not serve (a stale slot map) fails the call with nothing changed.
local function flush(keys, args)
  local node, batches, a = args[1], {}, 2
  while a <= #args do
    local prefix, windows = '{' .. args[a] .. '}', tonumber(args[a + 3])
    local mark = redis.call('HGET', prefix .. ':hwm', node) or '0'
    batches[#batches + 1] = {prefix, mark, a, windows}
    a = a + 4 + 7 * windows
  end
  local reply = {}
  for _, batch in ipairs(batches) do
    local prefix, mark, at, windows = batch[1], batch[2], batch[3], batch[4]
    local lo, hi, m = tonumber(args[at + 1]), tonumber(args[at + 2]), tonumber(mark)
    if hi <= m then
      reply[#reply + 1], reply[#reply + 2] = 'dup', mark
    elseif lo ~= m then
      reply[#reply + 1], reply[#reply + 2] = 'gap', mark
    else
      applyWindows(prefix, args, at + 4, windows)
      redis.call('HSET', prefix .. ':hwm', node, args[at + 2])
      reply[#reply + 1], reply[#reply + 2] = 'ok', args[at + 2]
    end
  end
  return reply
end

-- Folds the partition's closed minutes into their hours: keys[1] routes the call (any key of the
-- partition); args are the partition's tag, the last minute to fold, the seconds to add to a
-- minute's start for its expiry (its retention on toptally's clock), and the hours to look at.
-- Every node calls it once a minute; a folded minute is no longer listed as unfolded, so a second
-- call changes nothing. Returns how many minutes it folded.
local function fold(keys, args)
  local prefix, through, expiry, count = '{' .. args[1] .. '}', tonumber(args[2]), tonumber(args[3]), 0
  for i = 4, #args do
    local hour = prefix .. ':h:' .. args[i]
    local unfolded, folded = hour .. ':u', hour .. ':f'
    for _, index in ipairs(redis.call('SMEMBERS', unfolded)) do
      if tonumber(index) <= through then
        local minute = prefix .. ':m:' .. index
        local scores = redis.call('ZRANGE', minute, 0, -1, 'WITHSCORES')
        for j = 1, #scores, 2 do redis.call('ZINCRBY', hour, scores[j + 1], scores[j]) end
        redis.call('SREM', unfolded, index)
        redis.call('SADD', folded, index)
        local ttl = redis.call('PTTL', hour)
        if ttl > 0 then redis.call('PEXPIRE', folded, ttl) end
        redis.call('EXPIRE', minute, math.max(1, tonumber(index) * 60 + expiry))
        count = count + 1
      end
    end
  end
  return count
end

-- An hour with minutes not folded in yet: a member's count is its score in the hour plus those in
-- the minutes. Its exact top n, by the threshold algorithm: the sets are read best first, a block
-- at a time, each member met gets its full count (ZMSCORE in every set), and reading stops once
-- the n-th best count met is above the sum of the last scores read from the sets still being read:
-- no member not met can reach it. The hour lists every member, so once it is read through, all
-- were met. Returns every member met at or above that n-th count, with its count (a flat list,
-- in no order): the members at the cut are all there.
local function summed(hour, minutes, n)
  local sets = {hour}
  for _, key in ipairs(minutes) do sets[#sets + 1] = key end
  local block = math.max(n, 32)
  local from, last, ended = {}, {}, {}
  local counts, met = {}, {}
  local cut = -math.huge
  while true do
    local fresh = {}
    for i, key in ipairs(sets) do
      if not ended[i] then
        local ranked = redis.call('ZREVRANGE', key, from[i] or 0, (from[i] or 0) + block - 1, 'WITHSCORES')
        from[i] = (from[i] or 0) + block
        if #ranked < 2 * block then ended[i] = true end
        for j = 1, #ranked, 2 do
          if counts[ranked[j]] == nil then
            counts[ranked[j]] = 0
            fresh[#fresh + 1] = ranked[j]
          end
          last[i] = tonumber(ranked[j + 1])
        end
      end
    end
    for _, key in ipairs(sets) do
      for s = 1, #fresh, 1000 do
        local scores = redis.call('ZMSCORE', key, unpack(fresh, s, math.min(s + 999, #fresh)))
        for j = 1, #scores do
          if scores[j] then
            local member = fresh[s + j - 1]
            counts[member] = counts[member] + tonumber(scores[j])
          end
        end
      end
    end
    for _, member in ipairs(fresh) do met[#met + 1] = counts[member] end
    if #met >= n then
      table.sort(met, function(x, y) return x > y end)
      cut = met[n]
    end
    local reach, reading = 0, false
    for i = 1, #sets do
      if not ended[i] then
        reach = reach + last[i]
        reading = true
      end
    end
    if ended[1] or not reading or reach < cut then break end
  end
  local ranked = {}
  for member, count in pairs(counts) do
    if count >= cut then
      ranked[#ranked + 1] = member
      ranked[#ranked + 1] = string.format('%.17g', count)
    end
  end
  return ranked
end

-- The candidates for a window's top N of several partitions held by one master, in one call:
-- keys[1] (the first partition's window) routes it; args are N, the windows' key suffix and the
-- partitions' tags, joined by commas (a window's key is {tag}suffix, its total's {tag}suffix:t, as
-- keys.ts builds them). The partitions' top N are cut to their own N-th best score C, so the reply
-- holds about N members however many partitions it covers: every member above C with its score,
-- and members at C by name (the node orders ties by bytes). A partition whose list ends at C may
-- hold more members at C than it listed: its first N at C in byte order are read; any other
-- partition's members at C are all in its list. An hour with minutes not folded in yet lists its
-- members summed (see summed), all those at its own cut included.
-- Totals come back as Redis keeps them (strings): Lua's own number formatting would round them.
local function top(keys, args)
  local n, suffix = tonumber(args[1]), args[2]
  local hourly = string.sub(suffix, 1, 3) == ':h:'
  local zsets, lists, complete, scores, totals, size = {}, {}, {}, {}, {}, 0
  for tag in string.gmatch(args[3], '[^,]+') do
    local zset = '{' .. tag .. '}' .. suffix
    local minutes = {}
    if hourly then
      for _, index in ipairs(redis.call('SMEMBERS', zset .. ':u')) do minutes[#minutes + 1] = '{' .. tag .. '}:m:' .. index end
    end
    local ranked
    if #minutes > 0 then
      ranked = summed(zset, minutes, n)
    else
      ranked = redis.call('ZREVRANGE', zset, 0, n - 1, 'WITHSCORES')
    end
    zsets[#zsets + 1] = zset
    lists[#lists + 1] = ranked
    complete[#lists] = #minutes > 0
    for i = 2, #ranked, 2 do scores[#scores + 1] = tonumber(ranked[i]) end
    size = size + redis.call('ZCARD', zset)
    totals[#totals + 1] = redis.call('GET', zset .. ':t') or '0'
  end
  local cut = -math.huge
  if n > 0 and #scores >= n then
    table.sort(scores)
    cut = scores[#scores - n + 1]
  end
  local above, at, cutText = {}, {}, ''
  for k, ranked in ipairs(lists) do
    local full = not complete[k] and #ranked == 2 * n and tonumber(ranked[#ranked]) == cut
    for i = 1, #ranked, 2 do
      local score = tonumber(ranked[i + 1])
      if score > cut then
        above[#above + 1] = ranked[i]
        above[#above + 1] = ranked[i + 1]
      elseif score == cut then
        cutText = ranked[i + 1]
        if not full then at[#at + 1] = ranked[i] end
      end
    end
    if full then
      for _, member in ipairs(redis.call('ZRANGE', zsets[k], cut, cut, 'BYSCORE', 'LIMIT', 0, n)) do at[#at + 1] = member end
    end
  end
  return {above, at, cutText, size, totals}
end

-- Takes over an idempotency key's claim left by a process that is gone: only if it still holds
-- the value the caller saw (another node may have taken it over first).
local function takeover(keys, args)
  if redis.call('GET', keys[1]) ~= args[1] then return 0 end
  redis.call('SET', keys[1], args[2], 'PX', args[3])
  return 1
end

redis.register_function{function_name = 'tt_flush', callback = flush, flags = {'allow-cross-slot-keys'}}
redis.register_function('tt_fold', fold)
redis.register_function('tt_takeover', takeover)
redis.register_function{function_name = 'tt_top', callback = top, flags = {'no-writes', 'allow-cross-slot-keys'}}
`;

