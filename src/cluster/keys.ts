// Where everything lives in Redis. Per partition, under its hash tag (one slot, so one function call
// may touch all of them): a sorted set per window (member: the domain in CESU-8, score: its count),
// the window's total beside it, and the watermark hash (node id → last journal LSN applied). Shared
// by all nodes, under the {tt} tag: the cluster's settings and the node registry. Idempotency keys
// are spread over the slots by their own hash.

import type { WindowKind } from '../window.ts';

export const KIND_LETTER: Record<WindowKind, string> = { minute: 'm', hour: 'h' };

/** What follows a partition's `{tag}` in its window's key; tt_top builds the keys from it (library.ts). */
export const windowSuffix = (kind: WindowKind, index: number): string => `:${KIND_LETTER[kind]}:${index}`;
export const windowKey = (tag: string, kind: WindowKind, index: number): string => `{${tag}}${windowSuffix(kind, index)}`;
export const totalKey = (tag: string, kind: WindowKind, index: number): string => `${windowKey(tag, kind, index)}:t`;
export const watermarkKey = (tag: string): string => `{${tag}}:hwm`;

export const CONFIG_KEY = '{tt}:config';
export const NODES_KEY = '{tt}:nodes';
export const idempotencyKey = (digest: string): string => `idem:{${digest.slice(0, 8)}}:${digest}`;
