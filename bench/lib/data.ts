/**
 * Seeded request bodies for the ingest scenarios. Every pool is built before the load starts, so the
 * generator only replays bytes and its own CPU stays out of the measurement as far as possible.
 */
import { Packr } from 'msgpackr';
import { domainName, mulberry32, Zipf, type Random } from './prng.js';

export type Counter = Record<string, number>;

export interface PoolOptions {
  seed: number;
  /** Distinct bodies in the pool; the generator cycles through them. */
  size: number;
  /** Zipf universe of domain names: 10,000 for the usual runs, 1,000,000 for cardinality runs. */
  universe: number;
  /** Unix second stamped on every counter, so the server sees current (not stale) data. */
  now: number;
}

/** The shapes under test: S is the seed's one-counter POST, B a JSON array, WS a MessagePack frame. */
export const shapes = {
  S: { countersPerBody: 1, domainsPerCounter: 3 },
  B: { countersPerBody: 100, domainsPerCounter: 5 },
  WS: { countersPerBody: 1000, domainsPerCounter: 5 },
} as const;

export type HttpShape = 'S' | 'B';

// Zipf CDFs are expensive for a million names and identical across pools of the same universe.
const zipfByUniverse = new Map<number, Zipf>();
function zipfFor(universe: number): Zipf {
  let zipf = zipfByUniverse.get(universe);
  if (zipf === undefined) {
    zipf = new Zipf(universe);
    zipfByUniverse.set(universe, zipf);
  }
  return zipf;
}

/** One per-second counter with `domains` distinct Zipf-drawn domains, each with 1..10 requests. */
export function makeCounter(random: Random, zipf: Zipf, timestamp: number, domains: number): Counter {
  const counter: Counter = { timestamp };
  let added = 0;
  while (added < domains) {
    const name = domainName(zipf.sample(random));
    if (name in counter) continue; // the head of a Zipf repeats often; a counter lists a domain once
    counter[name] = 1 + Math.floor(random() * 10);
    added++;
  }
  return counter;
}

function makeCounters(random: Random, zipf: Zipf, now: number, count: number, domains: number): Counter[] {
  const counters: Counter[] = new Array(count);
  for (let i = 0; i < count; i++) counters[i] = makeCounter(random, zipf, now, domains);
  return counters;
}

/** JSON bodies for POST /api/events: S is a bare object, B an array of counters. */
export function makeHttpBodies(shape: HttpShape, options: PoolOptions): string[] {
  const random = mulberry32(options.seed);
  const zipf = zipfFor(options.universe);
  const { countersPerBody, domainsPerCounter } = shapes[shape];
  const bodies: string[] = new Array(options.size);
  for (let i = 0; i < options.size; i++) {
    bodies[i] =
      shape === 'S'
        ? JSON.stringify(makeCounter(random, zipf, options.now, domainsPerCounter))
        : JSON.stringify(makeCounters(random, zipf, options.now, countersPerBody, domainsPerCounter));
  }
  return bodies;
}

const packr = new Packr({ useRecords: false });
const ID_PLACEHOLDER = 0xffffffff; // packs as uint32 (0xce + 4 bytes), so any later id fits in place
const ID_KEY_THEN_UINT32 = Buffer.from([0xa2, 0x69, 0x64, 0xce]); // fixstr "id", then the uint32 marker

/**
 * Pre-packed `{"type":"events","id":n,"events":[...]}` frames. Only the id changes between sends,
 * so each template keeps a fixed 4-byte slot for it and `frame()` rewrites that slot in place.
 */
export class WsFramePool {
  readonly countersPerFrame: number;
  private readonly templates: Buffer[];
  private readonly idOffsets: number[];

  constructor(options: PoolOptions) {
    const random = mulberry32(options.seed);
    const zipf = zipfFor(options.universe);
    const { countersPerBody, domainsPerCounter } = shapes.WS;
    this.countersPerFrame = countersPerBody;
    this.templates = new Array(options.size);
    this.idOffsets = new Array(options.size);
    for (let i = 0; i < options.size; i++) {
      const events = makeCounters(random, zipf, options.now, countersPerBody, domainsPerCounter);
      const template = packr.pack({ type: 'events', id: ID_PLACEHOLDER, events });
      // The header keys come before the events, so the first match is the id key itself.
      const at = template.indexOf(ID_KEY_THEN_UINT32);
      if (at < 0) throw new Error('msgpackr did not encode the frame id as uint32; cannot patch it in place');
      this.templates[i] = template;
      this.idOffsets[i] = at + ID_KEY_THEN_UINT32.length;
    }
  }

  get size(): number {
    return this.templates.length;
  }

  /**
   * The frame at `index` (mod pool size) carrying `id`. The buffer is shared: send it before asking
   * for another frame from the same slot (the ws client copies it while masking, synchronously).
   */
  frame(index: number, id: number): Buffer {
    const slot = index % this.templates.length;
    const template = this.templates[slot]!;
    template.writeUInt32BE(id >>> 0, this.idOffsets[slot]!);
    return template;
  }
}
