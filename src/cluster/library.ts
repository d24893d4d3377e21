// The Redis function library every master holds. tt_apply is the only writer: it applies one
// node's pre-aggregated batch for one partition atomically, and at most once, by the node's
// watermark for that partition (the last journal LSN of its that Redis holds):
//   hi <= mark: a duplicate (a retry after a lost reply, a replay after a restart): nothing changes;
//   lo == mark: the next batch: the counts, totals and expiry are applied and the mark becomes hi;
//   else: a gap (Redis lost acknowledged batches in a failover): nothing changes, and the node
//   replays its journal from the mark it is told.
// Redis replicates a function's effects as one transaction, so the counts and the mark are kept or
// lost together. tt_top reads one partition's candidates for an exact top-N (see reader.ts), and
// tt_top_many those of every partition a master holds: it names keys of several slots, which Redis
// allows a function flagged allow-cross-slot-keys as long as this master serves them all.

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

-- The tie list is only read when members tied at the boundary score were cut off (ZCOUNT says more
-- than the ranked list holds): otherwise every one of them is in the list already.
local function top_of(zset, total, n)
  local ranked = redis.call('ZREVRANGE', zset, 0, n - 1, 'WITHSCORES')
  local ties = {}
  if n > 0 and #ranked == 2 * n then
    local s = ranked[#ranked]
    local listed = 0
    for i = #ranked, 2, -2 do
      if ranked[i] ~= s then break end
      listed = listed + 1
    end
    if redis.call('ZCOUNT', zset, s, s) > listed then
      ties = redis.call('ZRANGE', zset, s, s, 'BYSCORE', 'LIMIT', 0, n)
    end
  end
  return {ranked, ties, redis.call('ZCARD', zset), redis.call('GET', total) or '0'}
end

local function top(keys, args)
  return top_of(keys[1], keys[2], tonumber(args[1]))
end

-- Several partitions held by one master, in one call: keys[1] (the first partition's window) routes
-- it; args are N, then each partition's window and total key.
local function top_many(keys, args)
  local n = tonumber(args[1])
  local replies = {}
  for a = 2, #args, 2 do replies[#replies + 1] = top_of(args[a], args[a + 1], n) end
  return replies
end

redis.register_function('tt_apply', apply)
redis.register_function{function_name = 'tt_top', callback = top, flags = {'no-writes'}}
redis.register_function{function_name = 'tt_top_many', callback = top_many, flags = {'no-writes', 'allow-cross-slot-keys'}}
`;

/** Replies to tt_apply. */
export type ApplyOutcome = { kind: 'ok' | 'dup' | 'gap'; mark: number };
