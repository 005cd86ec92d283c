/**
 * The `score` job's checkpoint (`<out>.progress`): how far input, output and error file have got,
 * written after the data it points past is on disk.
 *
 * No temporary file and no rename: the file holds two fixed-size slots, and each save overwrites
 * the older one in place (its text ends in a CRC of itself) and syncs. A save cut short, even by
 * SIGKILL or a power cut, leaves the other slot whole; a reader takes the valid slot with the
 * higher sequence number. A file where no slot is valid is refused with one fixed message.
 *
 * The job is identified by content, never by how paths are spelled: `identity` is a SHA-256 over
 * the model file, the catalogue's header and size (the header carries the checksum of the
 * contents), the vocabulary and every option that changes the output; the input is checked by a
 * running CRC-32 of the bytes read up to the checkpoint (`inputCrc`, `inputBytes`).
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fdatasync, fdatasyncSync, fstatSync, openSync, readFileSync, readSync, statSync, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { crc32 } from 'node:zlib';

import { UserError } from '../cli/user_error.js';

const fdatasyncAsync = promisify(fdatasync);

export interface Checkpoint {
  identity: string;
  nextLine: number; // first input line not yet handled
  inputBytes: number; // byte offset of nextLine (in the decompressed input)
  inputCrc: number; // running CRC-32 of the input bytes read before nextLine
  outBytes: number;
  errorBytes: number;
  scored: number;
  errors: number;
  complete: boolean;
}

const FIELDS: Record<keyof Checkpoint, 'string' | 'boolean' | 'count' | 'positive'> = {
  identity: 'string',
  nextLine: 'positive',
  inputBytes: 'count',
  inputCrc: 'count',
  outBytes: 'count',
  errorBytes: 'count',
  scored: 'count',
  errors: 'count',
  complete: 'boolean',
};

const SLOT = 1024;

function valid(v: unknown): v is Checkpoint & { seq: number } {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const o = v as Record<string, unknown>;
  if (typeof o.seq !== 'number' || !Number.isSafeInteger(o.seq) || o.seq < 0) return false;
  return Object.entries(FIELDS).every(([key, kind]) => {
    const x = o[key];
    if (kind === 'string' || kind === 'boolean') return typeof x === kind;
    return typeof x === 'number' && Number.isSafeInteger(x) && x >= (kind === 'positive' ? 1 : 0);
  });
}

/** One slot's text: JSON, a space, its CRC-32 in hex, a newline, padded with spaces. */
function slotText(ck: Checkpoint, seq: number): Buffer {
  const json = JSON.stringify({ ...ck, seq });
  const text = `${json} ${crc32(json).toString(16).padStart(8, '0')}\n`;
  if (text.length > SLOT) throw new Error(`checkpoint larger than ${SLOT} bytes`);
  return Buffer.from(text.padEnd(SLOT, ' '));
}

function parseSlot(b: Buffer): (Checkpoint & { seq: number }) | null {
  const m = /^(\{.*\}) ([0-9a-f]{8})\n *$/s.exec(b.toString('latin1'));
  if (!m || crc32(m[1]) !== parseInt(m[2], 16)) return null;
  try {
    const v: unknown = JSON.parse(m[1]);
    return valid(v) ? v : null;
  } catch {
    return null;
  }
}

/** The latest checkpoint in `path` (with the sequence number of its slot). */
export function readCheckpoint(path: string): Checkpoint & { seq: number } {
  if (!existsSync(path)) throw new UserError(`--resume: no checkpoint ${path} (start without --resume)`);
  const unreadable = new UserError(`checkpoint ${path} is unreadable: delete it or run without --resume`);
  let b: Buffer;
  try {
    // Never read a FIFO or a device: it could block forever.
    if (!statSync(path).isFile()) throw unreadable;
    b = readFileSync(path);
  } catch {
    throw unreadable;
  }
  const slots = [parseSlot(b.subarray(0, SLOT)), parseSlot(b.subarray(SLOT, 2 * SLOT))].filter((s) => s !== null);
  if (slots.length === 0) throw unreadable;
  return slots.reduce((a, s) => (s.seq > a.seq ? s : a));
}

/** Saves checkpoints into `path`, each into the slot the previous one did not use. */
export class CheckpointFile {
  readonly path: string;
  #fd: number;
  #seq: number;

  /**
   * `seq`: the sequence number of the checkpoint the file holds (-1: a new file, which gets
   * `initial` in its first slot at once, synced before anything else is written: a job killed
   * before its first commit leaves a checkpoint --resume reads, not an empty file).
   */
  constructor(path: string, seq: number, initial?: Checkpoint) {
    this.path = path;
    this.#fd = openSync(path, seq < 0 ? 'w' : 'r+');
    this.#seq = seq;
    if (seq < 0 && initial) {
      this.#seq = 0;
      writeSync(this.#fd, slotText(initial, 0), 0, SLOT, 0);
      fdatasyncSync(this.#fd);
    }
  }

  /** Writes the slot, then syncs it (off the main thread). */
  async save(ck: Checkpoint): Promise<void> {
    this.#seq++;
    const text = slotText(ck, this.#seq);
    writeSync(this.#fd, text, 0, SLOT, (this.#seq % 2) * SLOT);
    await fdatasyncAsync(this.#fd);
  }

  close(): void {
    closeSync(this.#fd);
  }
}

/** SHA-256 of a whole file (the model: a few MB). */
export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/**
 * What identifies a catalogue file's contents without reading gigabytes: its size and its first
 * MiB (the header, which records the CRC-32 of every section).
 */
export function catalogueDigest(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(size, 1 << 20));
    let got = 0;
    while (got < head.length) {
      const n = readSync(fd, head, got, head.length - got, got);
      if (n === 0) break;
      got += n;
    }
    return createHash('sha256').update(String(size)).update(head.subarray(0, got)).digest('hex');
  } finally {
    closeSync(fd);
  }
}

/** The job's identity: a hash of its parts, in order. */
export function jobIdentity(parts: ReadonlyArray<string>): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(`${p.length}:${p}`);
  return h.digest('hex');
}
