// Every file in the data directory is a sequence of frames: magic, payload length, checksum of the
// length and payload, then the payload. A reader can tell a whole frame from a torn or damaged one,
// and can find the next whole frame after damage by looking for the magic again.
//
// The magic's last byte is the frame version, which names the checksum: version 2 is CRC-32 from
// node:zlib (native code). No other version is read.

import { crc32 } from 'node:zlib';

export const FRAME_HEADER_BYTES = 12;
const MAGIC = Buffer.from([0xa5, 0x54, 0x54]); // 0xa5 'T' 'T', then the version
const VERSION = 2;

/** The checksum a frame carries for `data[start, end)`, continuing from `crc`. */
function checksum(data: Uint8Array, start: number, end: number, crc = 0): number {
  return crc32(data.subarray(start, end), crc);
}

/** Fills in the header of `buf`, whose first FRAME_HEADER_BYTES were left free for it. */
export function sealFrame(buf: Buffer): Buffer {
  sealFrameAt(buf, 0, buf.length);
  return buf;
}

/** The same for the frame that fills `buf[start, end)`. */
export function sealFrameAt(buf: Buffer, start: number, end: number): void {
  MAGIC.copy(buf, start);
  buf[start + 3] = VERSION;
  buf.writeUInt32LE(end - start - FRAME_HEADER_BYTES, start + 4);
  const crc = checksum(buf, start + FRAME_HEADER_BYTES, end, checksum(buf, start + 4, start + 8));
  buf.writeUInt32LE(crc, start + 8);
}

export function frameOf(payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafeSlow(FRAME_HEADER_BYTES + payload.length);
  buf.set(payload, FRAME_HEADER_BYTES);
  return sealFrame(buf);
}

export interface Frame {
  /** Where the frame starts in the file. */
  offset: number;
  payload: Buffer;
}

export interface Damage {
  offset: number;
  bytes: number;
  reason: string;
  /** True when no whole frame follows. */
  atEnd: boolean;
  /**
   * True when it is also what a write torn by a crash leaves behind: the start of a frame cut short,
   * or zeros (a file extended before its data reached the disk, or a journal segment's preallocated
   * space), or the start of a frame followed by zeros that run on past where it would end (a write
   * cut short inside that space). A frame whose full length is present but whose checksum fails was
   * written whole, so it is damage wherever it is.
   */
  torn: boolean;
}

export interface Scan {
  frames: Frame[];
  damage: Damage[];
}

const TRUNCATED_HEADER = 'truncated frame header';
const TRUNCATED_FRAME = 'truncated frame';

/** Why the bytes at `pos` are not a whole frame, or null when they are one. */
function problemAt(data: Buffer, pos: number): string | null {
  if (data.length - pos < FRAME_HEADER_BYTES) return TRUNCATED_HEADER;
  if (data.compare(MAGIC, 0, MAGIC.length, pos, pos + MAGIC.length) !== 0 || data[pos + 3] !== VERSION) {
    return 'no frame header (bad magic)';
  }
  const end = pos + FRAME_HEADER_BYTES + data.readUInt32LE(pos + 4);
  if (end > data.length) return TRUNCATED_FRAME;
  const crc = checksum(data, pos + FRAME_HEADER_BYTES, end, checksum(data, pos + 4, pos + 8));
  return crc === data.readUInt32LE(pos + 8) ? null : 'checksum mismatch';
}

/** Every whole frame of `data`, and every stretch of bytes that is not one. */
export function scanFrames(data: Buffer): Scan {
  const frames: Frame[] = [];
  const damage: Damage[] = [];
  let pos = 0;
  while (pos < data.length) {
    const problem = problemAt(data, pos);
    if (problem === null) {
      const end = pos + FRAME_HEADER_BYTES + data.readUInt32LE(pos + 4);
      frames.push({ offset: pos, payload: data.subarray(pos + FRAME_HEADER_BYTES, end) });
      pos = end;
      continue;
    }
    let next = data.indexOf(MAGIC, pos + 1);
    while (next >= 0 && problemAt(data, next) !== null) next = data.indexOf(MAGIC, next + 1);
    const atEnd = next < 0;
    const cutShort = atEnd ? cutShortInZeros(data, pos) : null;
    const torn = atEnd && (problem === TRUNCATED_HEADER || problem === TRUNCATED_FRAME || allZero(data, pos) || cutShort !== null);
    damage.push({ offset: pos, bytes: (atEnd ? data.length : next) - pos, reason: cutShort ?? problem, atEnd, torn });
    if (atEnd) break;
    pos = next;
  }
  return { frames, damage };
}

/**
 * Whether `damage` is nothing but zeros up to the end of the file: the space a journal segment keeps
 * zeroed ahead of its records, which holds no record (a frame never starts with a zero byte).
 */
export function isZeroTail(data: Buffer, damage: Damage): boolean {
  return damage.atEnd && allZero(data, damage.offset);
}

/** Disks lose whole sectors: the unit a lost write leaves as zeros. */
const SECTOR_BYTES = 512;

/**
 * Whether `damage` holds a whole sector of zeros: writes over the zeros a journal segment keeps
 * ahead of its records that never reached the disk, while later ones did (a power cut, when the
 * page cache was flushed out of order).
 */
export function isLostWrite(data: Buffer, damage: Damage): boolean {
  const end = damage.offset + damage.bytes;
  for (let sector = Math.ceil(damage.offset / SECTOR_BYTES) * SECTOR_BYTES; sector + SECTOR_BYTES <= end; sector += SECTOR_BYTES) {
    if (allZero(data, sector, sector + SECTOR_BYTES)) return true;
  }
  return false;
}

function allZero(data: Buffer, from: number, to = data.length): boolean {
  for (let i = from; i < to; i++) if (data[i] !== 0) return false;
  return true;
}

/**
 * A write cut short inside zeros written ahead of it leaves the start of a frame, then zeros to the
 * end of the file: without those zeros it would be a frame cut short (what is returned then). The
 * zeros must run on past the frame's end: a damaged frame that merely ends in zero bytes, at the end
 * of the file, was written whole.
 */
function cutShortInZeros(data: Buffer, pos: number): string | null {
  let end = data.length;
  while (end > pos && data[end - 1] === 0) end--;
  if (end === data.length || end === pos) return null;
  const problem = problemAt(data.subarray(0, end), pos);
  if (problem === TRUNCATED_HEADER) return problem;
  const past = problem === TRUNCATED_FRAME && pos + FRAME_HEADER_BYTES + data.readUInt32LE(pos + 4) < data.length;
  return past ? problem : null;
}
