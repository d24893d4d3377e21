// The Redis function library every master holds. tt_apply is the only writer: it applies one
// node's pre-aggregated batch for one partition atomically, and at most once, by the node's
// watermark for that partition (the last journal LSN of its that Redis holds):
//   hi <= mark: a duplicate (a retry after a lost reply, a replay after a restart): nothing changes;
//   lo == mark: the next batch: the counts, totals and expiry are applied and the mark becomes hi;
//   else: a gap (Redis lost acknowledged batches in a failover): nothing changes, and the node
//   replays its journal from the mark it is told.
// Redis replicates a function's effects as one transaction, so the counts and the mark are kept or
// lost together. tt_top reads the candidates for an exact top-N (see reader.ts) of the partitions
// it is given, usually all those a master holds: it names keys of several slots, which Redis allows
// a function flagged allow-cross-slot-keys as long as this master serves them all. tt_takeover
// swaps an idempotency key's claim atomically (see shared-keys.ts).

export const LIBRARY_NAME = 'toptally';

export const LIBRARY = `#!lua name=${LIBRARY_NAME}
local function apply(keys, args)
  local node, lo, hi = args[1], tonumber(args[2]), tonumber(args[3])
  local mark = redis.call('HGET', keys[1], node) or '0'
  local m = tonumber(mark)
  if hi <= m then return {'dup', mark} end
  if lo ~= m then return {'gap', mark} end
  -- Per minute: its window and total, then its hour's; each delta goes to both.
  local a = 4
  for w = 2, #keys, 4 do
    local minute, hour = keys[w], keys[w + 2]
    local minuteTtl, hourTtl, sum, n = args[a], args[a + 1], args[a + 2], tonumber(args[a + 3])
    a = a + 4
    for i = 1, n do
      redis.call('ZINCRBY', minute, args[a + 1], args[a])
      redis.call('ZINCRBY', hour, args[a + 1], args[a])
      a = a + 2
    end
    redis.call('INCRBY', keys[w + 1], sum)
    redis.call('INCRBY', keys[w + 3], sum)
    redis.call('EXPIRE', minute, minuteTtl)
    redis.call('EXPIRE', keys[w + 1], minuteTtl)
    redis.call('EXPIRE', hour, hourTtl)
    redis.call('EXPIRE', keys[w + 3], hourTtl)
  end
  redis.call('HSET', keys[1], node, args[3])
  return {'ok', args[3]}
end

-- The candidates for a window's top N of several partitions held by one master, in one call:
-- keys[1] (the first partition's window) routes it; args are N, the windows' key suffix and the
-- partitions' tags, joined by commas (a window's key is {tag}suffix, its total's {tag}suffix:t, as
-- keys.ts builds them). The partitions' top N are cut to their own N-th best score C, so the reply
-- holds about N members however many partitions it covers: every member above C with its score,
-- and members at C by name (the node orders ties by bytes). A partition whose list ends at C may
-- hold more members at C than it listed: its first N at C in byte order are read; any other
-- partition's members at C are all in its list.
-- Totals come back as Redis keeps them (strings): Lua's own number formatting would round them.
local function top(keys, args)
  local n, suffix = tonumber(args[1]), args[2]
  local zsets, lists, scores, totals, size = {}, {}, {}, {}, 0
  for tag in string.gmatch(args[3], '[^,]+') do
    local zset = '{' .. tag .. '}' .. suffix
    local ranked = redis.call('ZREVRANGE', zset, 0, n - 1, 'WITHSCORES')
    zsets[#zsets + 1] = zset
    lists[#lists + 1] = ranked
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
    local full = #ranked == 2 * n and tonumber(ranked[#ranked]) == cut
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

redis.register_function('tt_apply', apply)
redis.register_function('tt_takeover', takeover)
redis.register_function{function_name = 'tt_top', callback = top, flags = {'no-writes', 'allow-cross-slot-keys'}}
`;

/** Replies to tt_apply. */
export type ApplyOutcome = { kind: 'ok' | 'dup' | 'gap'; mark: number };
