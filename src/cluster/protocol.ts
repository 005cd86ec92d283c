/** What a chunk job carries through Redis, and the Redis names a cluster job uses. */
import type { ChunkPlan, JobOptions } from './manifest.js';

export const DEFAULT_QUEUE = 'recscore-cluster';

export interface ChunkPayload {
  v: 1;
  name: string;
  /** Absolute paths (a worker resolves each inside its data roots). */
  input: string;
  model: string;
  catalogue: string;
  vocabulary: string | null;
  outDir: string;
  /** SHA-256 of `<outDir>/_manifest.json` as submitted. */
  manifest: string;
  contract: number;
  library: string;
  options: JobOptions;
  chunk: ChunkPlan;
  total: number;
  /** A split catalogue's part this job scores the chunk against. */
  part?: number;
  /** HMAC-SHA256 of the rest (canonical JSON), with --secret-file. */
  sig?: string;
}

/** BullMQ job id of a chunk: the job's name, its manifest and the chunk index. */
export function chunkJobId(name: string, manifest: string, index: number): string {
  return `${name}.${manifest.slice(0, 16)}.${index}`;
}

/** Redis keys of a job's bookkeeping (beside BullMQ's, under the same prefix). */
export function jobKeys(prefix: string, queue: string, name: string): { meta: string; done: string } {
  const base = `${prefix}:${queue}:recscore-job:${name}`;
  return { meta: `${base}:meta`, done: `${base}:done` };
}

/** A job name: letters, digits, '.', '_', '-' (it is part of Redis keys and job ids). */
export function checkName(name: string): boolean {
  return /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$/.test(name);
}
