/**
 * A cluster job's manifest (`<out-dir>/_manifest.json`): what the job is (input, model and
 * catalogue by content, options, chunk table, library and arithmetic-contract versions). A
 * re-submission into the same out dir must describe the same job, so parts already committed
 * there are this job's parts; the chunk payloads carry the manifest's hash, and a worker checks
 * it against the file before it writes anything.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';

import { catalogueDigest, fileSha256 } from '../batch/checkpoint.js';
import { linesOf } from '../batch/jsonl.js';
import { VERSION } from '../version.js';

/**
 * The version of the arithmetic contract (docs/arithmetic.md) this build computes: every build
 * with the same number writes the same score bits. A job records it; a worker of another number
 * defers the job's chunks to workers of its own, so a rolling upgrade never mixes score bits.
 */
export const ARITHMETIC_CONTRACT = 1;

export const MANIFEST = '_manifest.json';
export const SUCCESS = '_SUCCESS';

export interface ChunkPlan {
  index: number;
  /** Byte range [start, end) of the input. */
  start: number;
  end: number;
  /** 1-based number of its first line. */
  firstLine: number;
  lines: number;
  /** The input's running CRC-32 before and after the chunk (a worker checks the input did not change). */
  crcBefore: number;
  crcAfter: number;
}

export interface JobOptions {
  k: number;
  excludeHistory: boolean;
  unknown: 'error' | 'skip';
  /** Bad lines a chunk may skip (recorded in errors-NNNNN.jsonl); one more fails the chunk. */
  maxErrors: number;
  /** Users per native batch. */
  batch: number;
  /** Lines per chunk. */
  chunk: number;
}

export interface Manifest {
  format: 'recscore-cluster-manifest/1';
  name: string;
  input: { path: string; sha256: string; size: number; lines: number };
  model: { path: string; sha256: string };
  /** A split catalogue (a directory with split.json): `parts` parts, digest of its split.json. */
  catalogue: { path: string; digest: string; parts?: number };
  vocabulary: { path: string; sha256: string } | null;
  options: JobOptions;
  library: string;
  contract: number;
  chunks: ChunkPlan[];
}

/** Width of part numbers: 5 digits, more when there are more chunks (names sort in chunk order). */
export function partName(index: number, total: number, prefix = 'part-'): string {
  const width = Math.max(5, String(Math.max(0, total - 1)).length);
  return `${prefix}${String(index).padStart(width, '0')}`;
}

/** SHA-256 of the input and its chunks: `chunk` lines each, consecutive, covering every byte. */
export async function planInput(path: string, chunk: number): Promise<{ sha256: string; size: number; lines: number; chunks: ChunkPlan[] }> {
  const hash = createHash('sha256');
  let size = 0;
  async function* tap(): AsyncGenerator<Buffer> {
    for await (const b of createReadStream(path, { highWaterMark: 1 << 20 })) {
      hash.update(b as Buffer);
      size += (b as Buffer).length;
      yield b as Buffer;
    }
  }
  const chunks: ChunkPlan[] = [];
  let cur: ChunkPlan | null = null;
  let lines = 0;
  // Only boundaries are needed: every line is "too long" to keep (its bytes still count in the CRC).
  for await (const l of linesOf(tap(), { skipLongLines: true, maxLineBytes: 0 })) {
    lines++;
    cur ??= { index: chunks.length, start: l.start, end: l.end, firstLine: l.number, lines: 0, crcBefore: l.crcBefore, crcAfter: l.crc };
    cur.end = l.end;
    cur.crcAfter = l.crc;
    cur.lines++;
    if (cur.lines === chunk) {
      chunks.push(cur);
      cur = null;
    }
  }
  if (cur) chunks.push(cur);
  return { sha256: hash.digest('hex'), size, lines, chunks };
}

export interface Sources {
  name: string;
  input: string;
  model: string;
  catalogue: string;
  vocabulary?: string | null;
  options: JobOptions;
  /** A split catalogue: its digest and number of parts. */
  split?: { digest: string; parts: number } | null;
}

/** The manifest of a job (reads the input once). */
export async function makeManifest(s: Sources): Promise<Manifest> {
  const plan = await planInput(s.input, s.options.chunk);
  return {
    format: 'recscore-cluster-manifest/1',
    name: s.name,
    input: { path: s.input, sha256: plan.sha256, size: plan.size, lines: plan.lines },
    model: { path: s.model, sha256: fileSha256(s.model) },
    catalogue: s.split ? { path: s.catalogue, digest: s.split.digest, parts: s.split.parts } : { path: s.catalogue, digest: catalogueDigest(s.catalogue) },
    vocabulary: s.vocabulary ? { path: s.vocabulary, sha256: fileSha256(s.vocabulary) } : null,
    options: s.options,
    library: VERSION,
    contract: ARITHMETIC_CONTRACT,
    chunks: plan.chunks,
  };
}

/** What must be equal for two manifests to describe the same job (paths may be spelled differently). */
export function identityOf(m: Manifest): string {
  return JSON.stringify({
    input: m.input.sha256,
    size: m.input.size,
    model: m.model.sha256,
    catalogue: m.catalogue.digest,
    vocabulary: m.vocabulary?.sha256 ?? null,
    options: m.options,
    contract: m.contract,
  });
}

export function manifestText(m: Manifest): string {
  return `${JSON.stringify(m, null, 1)}\n`;
}

export function sha256(text: string | Buffer): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The manifest in `file`, or null when there is none. */
export function readManifest(file: string): { manifest: Manifest; text: string } | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return null;
    throw e;
  }
  return { manifest: JSON.parse(text) as Manifest, text };
}
