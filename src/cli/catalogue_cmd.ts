/** `recscore catalogue build`, `inspect` and `upgrade`. */
import { readFileSync, statSync } from 'node:fs';

import { Catalogue, type ItemId } from '../catalogue/catalogue.js';
import { FORMAT_VERSION, readCatalogueHeader } from '../catalogue/file.js';
import { readNpyFloat32 } from '../catalogue/npy.js';
import { describe } from '../validate.js';
import { outputPath, regularInput } from './paths.js';
import { UserError } from './user_error.js';

/** Missing, a directory, a FIFO: one line naming the flag and the path. */
const mustExist = regularInput;

/** The lines of a text file given with `flag` (file errors name the flag and the path). */
function textLines(flag: string, path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    // Also Node's ERR_STRING_TOO_LONG for a file beyond what one string can hold.
    throw new UserError(`${flag} ${path}: cannot read it (${(e as Error).message})`);
  }
  return text.split(/\r?\n/);
}

/** Ids from a text file, one per line: all canonical integers become numbers, otherwise strings. */
export function readIds(path: string, flag = '--ids'): ItemId[] {
  const ids = textLines(flag, path);
  if (ids.length > 0 && ids[ids.length - 1] === '') ids.pop();
  const numeric = ids.every((s) => /^(0|[1-9][0-9]{0,15})$/.test(s) && Number.isSafeInteger(Number(s)));
  return numeric ? ids.map(Number) : ids;
}

export async function buildCatalogue(o: {
  vectors: string;
  ids?: string;
  bias?: string;
  attributes?: string;
  precision: string;
  out: string;
}): Promise<{ size: number; dim: number }> {
  if (o.precision !== 'f32' && o.precision !== 'int8' && o.precision !== 'bf16') {
    throw new UserError(`--precision ${o.precision}: must be f32, int8 or bf16`);
  }
  mustExist('--vectors', o.vectors);
  outputPath('--out', o.out);
  const ids = o.ids ? (mustExist('--ids', o.ids), readIds(o.ids)) : undefined;
  let bias: Float32Array | undefined;
  if (o.bias) {
    mustExist('--bias', o.bias);
    const b = await readNpyFloat32(o.bias);
    if (b.shape.length !== 1) throw new UserError(`--bias ${o.bias}: expected a 1-D array, got shape (${b.shape.join(', ')})`);
    bias = b.data;
  }
  let attributes: number[] | undefined;
  if (o.attributes) {
    mustExist('--attributes', o.attributes);
    attributes = readAttributes(o.attributes);
  }
  const cat = await Catalogue.fromNpy(o.vectors, { ids, bias, attributes, precision: o.precision });
  await cat.save(o.out);
  const r = { size: cat.size, dim: cat.dim };
  await cat.close();
  return r;
}

export async function inspectCatalogue(path: string): Promise<Record<string, unknown>> {
  mustExist('catalogue', path);
  const { header: h, fileSize, version } = await readCatalogueHeader(path);
  const cat = await Catalogue.open(path); // verifies the matrix checksum
  const firstIds = Array.from({ length: Math.min(5, cat.size) }, (_, i) => cat.id(i));
  await cat.close();
  return {
    path,
    bytes: fileSize,
    format: `${h.format} v${version}${version === 1 ? ' (row-major; `recscore catalogue upgrade` converts it to v2)' : ''}`,
    dtype: h.dtype,
    precision: h.compressed ? `${h.compressed.precision} scan copy + float32 rows` : 'f32',
    items: h.count,
    dim: h.dim,
    ids: h.ids === null ? 'row numbers' : h.ids.kind === 'int' ? 'integers' : 'strings/mixed',
    firstIds,
    bias: h.bias !== null,
    attributes: h.attributes !== null,
    maxRowNorm: h.maxRowNorm,
    checksum: `crc32 ${h.checksum.value.toString(16).padStart(8, '0')} (verified)`,
    createdBy: h.createdBy,
    modified: statSync(path).mtime.toISOString(),
  };
}

/**
 * Rewrites a catalogue file (any version this library reads, verified) as the current version:
 * the same items, ids, bias, attributes and compact copy, packed in panels. Returns the versions.
 */
export async function upgradeCatalogue(input: string, out: string): Promise<{ from: number; to: number; size: number }> {
  mustExist('catalogue', input);
  outputPath('OUT', out);
  const cat = await Catalogue.open(input);
  try {
    await cat.save(out);
    return { from: cat.formatVersion ?? FORMAT_VERSION, to: FORMAT_VERSION, size: cat.size };
  } finally {
    await cat.close();
  }
}

/** Attribute bits from a text file, one uint32 per line. */
function readAttributes(path: string): number[] {
  const rows = textLines('--attributes', path);
  while (rows.length > 0 && rows[rows.length - 1].trim() === '') rows.pop();
  return rows.map((s, i) => {
    const v = Number(s.trim());
    if (!/^\s*\d+\s*$/.test(s) || v > 0xffffffff) {
      throw new UserError(`--attributes ${path}: line ${i + 1}: ${describe(s)} is not an integer in 0..2^32-1`);
    }
    return v;
  });
}
