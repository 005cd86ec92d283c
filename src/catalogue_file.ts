/**
 * The catalogue file format, version 1 (documented in docs/catalogue-format.md).
 *
 *   offset 0   8 bytes   magic "RSCATLG\0"
 *          8   u32 LE    format version (1)
 *         12   u32 LE    header length H in bytes
 *         16   u32 LE    CRC-32 of the header bytes
 *         20   u32 LE    reserved, 0
 *         24   H bytes   header: a msgpack map (see CatalogueHeader)
 *              zeros     up to dataOffset, a multiple of 64
 *  dataOffset  N*d*4     the matrix, float32 little-endian, row-major
 *
 * The matrix is memory-mapped by the addon, so opening does not read it; the header carries the
 * CRC-32 of the matrix bytes, checked on open unless the caller opts out.
 */
import { open as openFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

import { writeAtomically } from './atomic_file.js';
import { FormatError } from './errors.js';
import type { CompressedParts } from './native.js';

export const MAGIC = Buffer.from('RSCATLG\0', 'latin1');
export const FORMAT_VERSION = 1;
const PREFIX_BYTES = 24;
const ALIGN = 64;
/** Header size above which a file is taken to be corrupt rather than read into memory. */
const MAX_HEADER_BYTES = 1 << 30;

export type StoredIds =
  | { kind: 'int'; data: Uint8Array } // float64 LE, one per row
  | { kind: 'mixed'; values: Array<string | number> };

/** Where a compressed catalogue's compact copy lies (byte offsets, each a multiple of 64). */
export interface CompressedSection {
  precision: 'int8' | 'bf16';
  dataOffset: number; // N·d int8, or N·d uint16 (bfloat16)
  scaleOffset: number | null; // int8: N float32 row scales
  errOffset: number; // N float32 bound terms
  errBiasOffset: number | null; // N float32 bias bound terms (when there is a bias)
  end: number; // the file ends here
  checksum: { algorithm: 'crc32'; value: number }; // over [dataOffset, end)
}

export interface CatalogueHeader {
  compressed?: CompressedSection | null;
  format: 'recscore-catalogue';
  dtype: 'float32';
  count: number;
  dim: number;
  dataOffset: number;
  dataBytes: number;
  checksum: { algorithm: 'crc32'; value: number };
  maxRowNorm: number;
  ids: StoredIds | null;
  bias: Uint8Array | null; // float32 LE
  attributes: Uint8Array | null; // uint32 LE
  createdBy: string;
}

export interface CatalogueContent {
  compressed?: CompressedParts | null;
  vectors: Float32Array;
  count: number;
  dim: number;
  ids: ReadonlyArray<string | number> | null;
  bias: Float32Array | null;
  attributes: Uint32Array | null;
  maxRowNorm: number;
}

const CRC_CHUNK = 16 << 20;

/** CRC-32 of bytes (continuing from `start`), in chunks that yield to the event loop between them. */
export async function crc32Chunked(bytes: Uint8Array, start = 0): Promise<number> {
  let c = start;
  for (let o = 0; o < bytes.byteLength; o += CRC_CHUNK) {
    c = crc32(bytes.subarray(o, Math.min(bytes.byteLength, o + CRC_CHUNK)), c);
    if (o + CRC_CHUNK < bytes.byteLength) await new Promise<void>((r) => setImmediate(r));
  }
  return c;
}

function bytesOf(a: Float32Array | Uint32Array | Float64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function assertLittleEndian(): void {
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
    throw new Error('recscore catalogue files are little-endian; this machine is big-endian');
  }
}

export function encodeIds(ids: ReadonlyArray<string | number> | null): StoredIds | null {
  if (!ids) return null;
  if (ids.every((v) => typeof v === 'number')) {
    return { kind: 'int', data: bytesOf(Float64Array.from(ids as number[])) };
  }
  return { kind: 'mixed', values: Array.from(ids) };
}

/** Writes the file atomically: to a temporary name beside it, then renamed over `path`. */
export async function writeCatalogueFile(path: string, c: CatalogueContent, version: string): Promise<void> {
  assertLittleEndian();
  const dataBytes = c.count * c.dim * 4;
  const matrix = new Uint8Array(c.vectors.buffer, c.vectors.byteOffset, dataBytes);
  const checksum = await crc32Chunked(matrix);
  const intact = (): void => {
    // A matrix released (catalogue closed) during an await reads as empty: never write that.
    if (matrix.byteLength !== dataBytes) throw new Error('the catalogue was closed while it was being saved');
  };
  intact();
  const header: CatalogueHeader = {
    format: 'recscore-catalogue',
    dtype: 'float32',
    count: c.count,
    dim: c.dim,
    dataOffset: 0,
    dataBytes,
    checksum: { algorithm: 'crc32', value: checksum },
    maxRowNorm: c.maxRowNorm,
    ids: encodeIds(c.ids),
    bias: c.bias ? bytesOf(c.bias) : null,
    attributes: c.attributes ? bytesOf(c.attributes) : null,
    createdBy: `recscore ${version}`,
  };
  const parts = c.compressed ? compressedPieces(c.compressed) : [];
  const section = async (dataOffset: number): Promise<CompressedSection | null> => {
    if (!c.compressed) return null;
    let at = Math.ceil((dataOffset + dataBytes) / ALIGN) * ALIGN;
    const offs: number[] = [];
    let crc = 0;
    for (const piece of parts) {
      offs.push(at);
      crc = crc32(piece, crc);
      at = Math.ceil((at + piece.byteLength) / ALIGN) * ALIGN;
    }
    const last = parts[parts.length - 1];
    const end = offs[offs.length - 1] + last.byteLength;
    let i = 0;
    return {
      precision: c.compressed.precision,
      dataOffset: offs[i++],
      scaleOffset: c.compressed.scale ? offs[i++] : null,
      errOffset: offs[i++],
      errBiasOffset: c.compressed.errBias ? offs[i++] : null,
      end,
      checksum: { algorithm: 'crc32', value: crc },
    };
  };
  // dataOffset is part of the header it follows: repack until the offset covers the header.
  header.compressed = await section(0);
  let headerBytes = pack(header);
  while (PREFIX_BYTES + headerBytes.length > header.dataOffset) {
    header.dataOffset = Math.ceil((PREFIX_BYTES + headerBytes.length) / ALIGN) * ALIGN;
    header.compressed = await section(header.dataOffset);
    headerBytes = pack(header);
  }
  const prefix = Buffer.alloc(header.dataOffset);
  MAGIC.copy(prefix, 0);
  prefix.writeUInt32LE(FORMAT_VERSION, 8);
  prefix.writeUInt32LE(headerBytes.length, 12);
  prefix.writeUInt32LE(crc32(headerBytes), 16);
  prefix.writeUInt32LE(0, 20);
  headerBytes.copy(prefix, PREFIX_BYTES);

  await writeAtomically(path, async (fh) => {
    await fh.write(prefix, 0, prefix.length, 0);
    let pos = prefix.length;
    for (let o = 0; o < matrix.byteLength; o += CRC_CHUNK) {
      const chunk = matrix.subarray(o, Math.min(matrix.byteLength, o + CRC_CHUNK));
      await fh.write(chunk, 0, chunk.byteLength, pos);
      pos += chunk.byteLength;
      intact();
    }
    intact();
    if (header.compressed) {
      const h = header.compressed;
      const offs = [h.dataOffset, h.scaleOffset, h.errOffset, h.errBiasOffset].filter((o): o is number => o !== null);
      for (let i = 0; i < parts.length; i++) await fh.write(parts[i], 0, parts[i].byteLength, offs[i]);
    }
  });
}

export interface ParsedHeader {
  header: CatalogueHeader;
  fileSize: number;
}

function fail(path: string, msg: string): never {
  throw new FormatError(path, msg);
}

/** Reads and validates the prefix and header; checks the file size against them. */
export async function readCatalogueHeader(path: string): Promise<ParsedHeader> {
  assertLittleEndian();
  const fh = await openFile(path, 'r');
  try {
    const { size } = await fh.stat();
    if (size < PREFIX_BYTES) fail(path, `not a recscore catalogue (only ${size} bytes)`);
    const prefix = Buffer.alloc(PREFIX_BYTES);
    await fh.read(prefix, 0, PREFIX_BYTES, 0);
    if (!prefix.subarray(0, 8).equals(MAGIC)) fail(path, 'not a recscore catalogue (bad magic)');
    const version = prefix.readUInt32LE(8);
    if (version !== FORMAT_VERSION) {
      fail(path, `catalogue format version ${version} is not supported (this recscore reads ${FORMAT_VERSION})`);
    }
    const hlen = prefix.readUInt32LE(12);
    if (hlen === 0 || hlen > MAX_HEADER_BYTES || PREFIX_BYTES + hlen > size) {
      fail(path, `truncated or corrupt: header length ${hlen} does not fit in a ${size}-byte file`);
    }
    const hbytes = Buffer.alloc(hlen);
    await fh.read(hbytes, 0, hlen, PREFIX_BYTES);
    if (crc32(hbytes) !== prefix.readUInt32LE(16)) fail(path, 'corrupt: header checksum mismatch');
    let h: CatalogueHeader;
    try {
      h = unpack(hbytes) as CatalogueHeader;
    } catch (e) {
      fail(path, `corrupt header: ${(e as Error).message}`);
    }
    validateHeader(path, h, size);
    return { header: h, fileSize: size };
  } finally {
    await fh.close();
  }
}

function validateHeader(path: string, h: CatalogueHeader, size: number): void {
  if (typeof h !== 'object' || h === null || h.format !== 'recscore-catalogue') fail(path, 'corrupt header');
  if (h.dtype !== 'float32') fail(path, `dtype ${String(h.dtype)} is not supported`);
  const int = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
  if (!int(h.count) || h.count === 0) fail(path, `corrupt header: count ${String(h.count)}`);
  if (!int(h.dim) || h.dim === 0) fail(path, `corrupt header: dim ${String(h.dim)}`);
  if (!int(h.dataOffset) || h.dataOffset % ALIGN !== 0) fail(path, 'corrupt header: dataOffset');
  if (h.dataBytes !== h.count * h.dim * 4) fail(path, 'corrupt header: dataBytes does not match count x dim');
  let expected = h.dataOffset + h.dataBytes;
  const c = h.compressed;
  if (c) {
    const n = h.count;
    const at = (o: unknown, bytes: number): boolean => int(o) && o % ALIGN === 0 && o >= h.dataOffset + h.dataBytes && o + bytes <= c.end;
    const elem = c.precision === 'int8' ? 1 : c.precision === 'bf16' ? 2 : 0;
    if (!elem || !int(c.end) || !at(c.dataOffset, n * h.dim * elem) || !at(c.errOffset, n * 4)) fail(path, 'corrupt header: compressed section');
    if ((c.precision === 'int8') !== (c.scaleOffset !== null) || (c.scaleOffset !== null && !at(c.scaleOffset, n * 4))) fail(path, 'corrupt header: compressed scales');
    if ((h.bias !== null) !== (c.errBiasOffset !== null) || (c.errBiasOffset !== null && !at(c.errBiasOffset, n * 4))) fail(path, 'corrupt header: compressed bias bounds');
    if (c.checksum?.algorithm !== 'crc32' || !int(c.checksum.value)) fail(path, 'corrupt header: compressed checksum');
    expected = c.end;
  }
  if (size < expected) fail(path, `truncated: expected ${expected} bytes, found ${size}`);
  if (size > expected) fail(path, `corrupt: expected ${expected} bytes, found ${size} (trailing data)`);
  if (h.checksum?.algorithm !== 'crc32' || !int(h.checksum.value)) fail(path, 'corrupt header: checksum');
  if (typeof h.maxRowNorm !== 'number' || !Number.isFinite(h.maxRowNorm) || h.maxRowNorm < 0) fail(path, 'corrupt header: maxRowNorm');
  if (h.bias && h.bias.byteLength !== h.count * 4) fail(path, 'corrupt header: bias length');
  if (h.attributes && h.attributes.byteLength !== h.count * 4) fail(path, 'corrupt header: attributes length');
  if (h.ids) {
    const n = h.ids.kind === 'int' ? h.ids.data.byteLength / 8 : h.ids.kind === 'mixed' ? h.ids.values.length : -1;
    if (n !== h.count) fail(path, 'corrupt header: ids length');
  }
}

/** The compressed section's pieces, in file order, as bytes. */
function compressedPieces(c: CompressedParts): Uint8Array[] {
  const b = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return [b(c.data), ...(c.scale ? [b(c.scale)] : []), b(c.err), ...(c.errBias ? [b(c.errBias)] : [])];
}

/** Views of a mapped file's compressed section (validated by readCatalogueHeader). */
export function compressedViews(buffer: ArrayBuffer, h: CatalogueHeader): CompressedParts | null {
  const c = h.compressed;
  if (!c) return null;
  const n = h.count;
  return {
    precision: c.precision,
    data: c.precision === 'int8' ? new Int8Array(buffer, c.dataOffset, n * h.dim) : new Uint16Array(buffer, c.dataOffset, n * h.dim),
    scale: c.scaleOffset !== null ? new Float32Array(buffer, c.scaleOffset, n) : undefined,
    err: new Float32Array(buffer, c.errOffset, n),
    errBias: c.errBiasOffset !== null ? new Float32Array(buffer, c.errBiasOffset, n) : undefined,
  };
}

/** CRC-32 of the compressed section's pieces (as written). */
export async function compressedCrc(c: CompressedParts): Promise<number> {
  let crc = 0;
  for (const p of compressedPieces(c)) crc = await crc32Chunked(p, crc);
  return crc;
}

/** Copies msgpack binary into a fresh, aligned typed array. */
export function copyFloat32(b: Uint8Array): Float32Array {
  const out = new Float32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function copyUint32(b: Uint8Array): Uint32Array {
  const out = new Uint32Array(b.byteLength / 4);
  new Uint8Array(out.buffer).set(b);
  return out;
}

export function decodeIds(ids: StoredIds | null): Array<string | number> | null {
  if (!ids) return null;
  if (ids.kind === 'int') {
    const f = new Float64Array(ids.data.byteLength / 8);
    new Uint8Array(f.buffer).set(ids.data);
    return Array.from(f);
  }
  return ids.values;
}
