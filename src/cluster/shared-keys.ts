// Idempotency keys shared by every node (cluster mode): a retry sent to another node gets the
// first answer and is counted once. A key is claimed in Redis before the request is journaled (SET
// NX, "pending", naming the node and its process's boot id), and its answer stored once acknowledged
// ("done", kept as long as local mode keeps keys). A retry that meets "pending" asks the registry
// what became of the claimant:
// - still running: the retry waits for its answer;
// - restarted: its recovery stored the answer of every key it had journaled before it heartbeat
//   again (restore()), so a claim still pending was never journaled, and the retry takes it over;
// - not heard from: whether it journaled the request is in its journal alone, so the retry gets 503
//   until the node is back or the claim expires (PENDING_MS, the time keys are kept): counting it
//   now would count it twice once the node returns.
// A retry with other counters is refused as in local mode.

import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDEMPOTENCY_TTL_MS, type Answer } from '../durability/idempotency.ts';
import type { KeyedAnswer } from '../durability/records.ts';
import { TopTallyError } from '../errors.ts';
import { unavailable } from './flusher.ts';
import { idempotencyKey } from './keys.ts';
import type { RedisLink } from './redis-link.ts';
import type { Claimant } from './registry.ts';

const PENDING_MS = IDEMPOTENCY_TTL_MS;
/** How long a retry waits for the node answering the first request before it gets 503. */
const WAIT_MS = 10_000;
const POLL_MS = 20;

export interface SharedKeys {
  once(key: string, fingerprint: string, execute: () => Promise<Answer>): Promise<Answer>;
  /** Stores the answers this node recovered from its journal, before it heartbeats as restarted. */
  restore(answers: readonly KeyedAnswer[], nowMs: number): Promise<void>;
}

export interface SharedKeysOptions {
  link: RedisLink;
  nodeId: string;
  boot: string;
  claimant: (nodeId: string, boot: string) => Claimant;
}

const redisKey = (key: string): string => idempotencyKey(createHash('sha256').update(key).digest('hex'));
const doneValue = (fingerprint: string, answer: Answer): string => `done:${fingerprint}:${answer.accepted}:${answer.counters}`;

export function sharedKeys({ link, nodeId, boot, claimant }: SharedKeysOptions): SharedKeys {
  const call = (key: string, args: string[]): Promise<unknown> =>
    link.call(key, args).catch((err: Error) => {
      throw unavailable(err);
    });
  /** Runs the request under claim `mine`, and stores its answer. */
  const run = async (k: string, mine: string, fingerprint: string, execute: () => Promise<Answer>): Promise<Answer> => {
    let answer: Answer;
    try {
      answer = await execute();
    } catch (err) {
      // Nothing was counted: let a retry run at once rather than wait for the claim to expire.
      if (String(await call(k, ['GET', k]).catch(() => null)) === mine) await call(k, ['DEL', k]).catch(() => {});
      throw err;
    }
    // Counted: the answer stands even if Redis cannot store it now (retries here still get it from
    // the local keys, and a restart stores it from the journal).
    await call(k, ['SET', k, doneValue(fingerprint, answer), 'PX', String(IDEMPOTENCY_TTL_MS)]).catch(() => {});
    return answer;
  };
  return {
    async once(key, fingerprint, execute) {
      const k = redisKey(key);
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const mine = `pending:${fingerprint}:${nodeId}:${boot}:${randomBytes(4).toString('hex')}`;
        const held = await call(k, ['SET', k, mine, 'NX', 'PX', String(PENDING_MS), 'GET']);
        if (held == null) return run(k, mine, fingerprint, execute);
        const [state, first, accepted, counters] = String(held).split(':');
        if (first !== fingerprint) {
          throw new TopTallyError('TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request in the last 10 minutes', { key: key.slice(0, 64) });
        }
        if (state === 'done') return { accepted: Number(accepted), counters: Number(counters) };
        const [, , node, claimBoot] = String(held).split(':');
        const fate = claimant(node, claimBoot);
        if (fate === 'restarted') {
          if (Number(await call(k, ['FCALL', 'tt_takeover', '1', k, String(held), mine, String(PENDING_MS)])) === 1) return run(k, mine, fingerprint, execute);
          continue;
        }
        if (fate === 'down') {
          throw new TopTallyError(
            'TOPTALLY_ERR_IDEMPOTENCY_KEY_HELD',
            `Node ${node} took the first request with this Idempotency-Key and is not answering; whether it counted it is in its journal: retry once it is back`,
            { key: key.slice(0, 64), node, retryAfter: 5 },
          );
        }
        if (Date.now() >= deadline) throw unavailable(new Error('another node is still answering the first request with this Idempotency-Key'));
        await sleep(POLL_MS);
      }
    },
    async restore(answers, nowMs) {
      for (const answer of answers) {
        const ttl = answer.atMs + IDEMPOTENCY_TTL_MS - nowMs;
        if (ttl > 0) await call(redisKey(answer.key), ['SET', redisKey(answer.key), doneValue(answer.fingerprint, answer), 'PX', String(Math.ceil(ttl))]);
      }
    },
  };
}
