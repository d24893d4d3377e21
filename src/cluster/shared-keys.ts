// Idempotency keys shared by every node (cluster mode): a retry sent to another node gets the
// first answer and is counted once. A key is claimed in Redis before the request is journaled
// (SET NX, "pending", expiring after PENDING_MS so a node that died before journaling does not hold
// it), and its answer stored once acknowledged ("done", kept as long as local mode keeps keys). A
// retry that meets "pending" waits for the answer; one with other counters is refused as in local mode.

import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { IDEMPOTENCY_TTL_MS, type Answer } from '../durability/idempotency.ts';
import { TopTallyError } from '../errors.ts';
import { unavailable } from './flusher.ts';
import { idempotencyKey } from './keys.ts';
import type { RedisLink } from './redis-link.ts';

const PENDING_MS = 30_000;
/** How long a retry waits for the node answering the first request before it gets 503. */
const WAIT_MS = 10_000;
const POLL_MS = 20;

export interface SharedKeys {
  once(key: string, fingerprint: string, execute: () => Promise<Answer>): Promise<Answer>;
}

export function sharedKeys(link: RedisLink, nodeId: string): SharedKeys {
  const call = (key: string, args: string[]): Promise<unknown> =>
    link.call(key, args).catch((err: Error) => {
      throw unavailable(err);
    });
  return {
    async once(key, fingerprint, execute) {
      const k = idempotencyKey(createHash('sha256').update(key).digest('hex'));
      const deadline = Date.now() + WAIT_MS;
      for (;;) {
        const mine = `pending:${fingerprint}:${nodeId}:${randomBytes(4).toString('hex')}`;
        const held = await call(k, ['SET', k, mine, 'NX', 'PX', String(PENDING_MS), 'GET']);
        if (held == null) {
          let answer: Answer;
          try {
            answer = await execute();
          } catch (err) {
            // Nothing was counted: let a retry run at once rather than wait for the claim to expire.
            if (String(await call(k, ['GET', k]).catch(() => null)) === mine) await call(k, ['DEL', k]).catch(() => {});
            throw err;
          }
          // Counted: the answer stands even if Redis cannot store it now (retries here still get it
          // from the local keys; see docs/cluster.md for a retry on another node in that case).
          await call(k, ['SET', k, `done:${fingerprint}:${answer.accepted}:${answer.counters}`, 'PX', String(IDEMPOTENCY_TTL_MS)]).catch(() => {});
          return answer;
        }
        const [state, first, accepted, counters] = String(held).split(':');
        if (first !== fingerprint) {
          throw new TopTallyError('TOPTALLY_ERR_IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used for a different request in the last 10 minutes', { key: key.slice(0, 64) });
        }
        if (state === 'done') return { accepted: Number(accepted), counters: Number(counters) };
        if (Date.now() >= deadline) throw unavailable(new Error('another node is still answering the first request with this Idempotency-Key'));
        await sleep(POLL_MS);
      }
    },
  };
}
