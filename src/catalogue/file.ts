/**
 * The catalogue file format, version 2 (documented in docs/catalogue-format.md; version 1 is read).
 *
 *   offset 0   8 bytes   magic "RSCATLG\0"
 *          8   u32 LE    format version (2)
 *         12   u32 LE    header length H in bytes
 *         16   u32 LE    CRC-32 of the header bytes
 *         20   u32 LE    reserved, 0
 *         24   H bytes   header: a msgpack map (see CatalogueHeader)
 *              zeros     up to dataOffset, a multiple of 64
 *  dataOffset  N'*d*4    the matrix, float32 little-endian, packed in panels of 16 rows
 *                        (N' = N rounded up to 16; layout.ts); version 1: N*d*4 row-major
 *
 * The matrix is memory-mapped by the addon, so opening does not read it; the header carries the
 * CRC-32 of the matrix bytes. The header's rules are in header.ts, the checks that read
 * the matrix in verify.ts, opening in open.ts.
 */
import type { FileHandle } from 'node:fs/promises';
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';

import { writeAtomically } from '../atomic_file.js';
import {
  ALIGN,
  type CatalogueHeader,
  type CompressedSection,
  type HeaderData,
  type StoredIds,
  checkHeader,
} from './header.js';
import { type FileVersion, compactElements, matrixBytes } from './layout.js';
import { FormatError } from '../errors.js';
import type { CompressedParts } from '../native/addon.js';
import { openRegularFile, readExactly } from '../file_check.js';

export type { CatalogueHeader, CompressedSection, StoredIds } from './header.js';

export const MAGIC = Buffer.from('RSCATLG\0', 'latin1');
/** The version this library writes; it reads 1 and 2. */
export const FORMAT_VERSION = 2;
export const PREFIX_BYTES = 24;

export interface CatalogueContent {
  /** The compact copy, in the version-2 panel layout. */
  compressed?: CompressedParts | null;
  /** The matrix packed in panels (layout.ts). */
  panels: Float32Array;
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
  const dataBytes = matrixBytes(FORMAT_VERSION, c.count, c.dim);
  const matrix = new Uint8Array(c.panels.buffer, c.panels.byteOffset, Math.min(dataBytes, c.panels.byteLength));
  const checksum = await crc32Chunked(matrix);
  const intact = (): void => {
    // A matrix released (catalogue closed) during an await reads as empty: never write that.
    if (matrix.byteLength !== dataBytes) throw new Error('the catalogue was closed while it was being saved');
  };
  intact();
  const header: CatalogueHeader = {
    format: 'recscore-catalogue',
    dtype: 'float32',
    layout: 'panels16',
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
  /** The file's format version (1: row-major sections, repacked on open; 2: panels). */
  version: FileVersion;
  /** From fstat of the descriptor the header was read through. */
  fileSize: number;
  /** The CRC-32 of the header bytes (prefix bytes 16..20): it names this version of the file. */
  headerCrc: number;
  /** ids, bias and attributes, decoded and checked. */
  data: HeaderData;
}

/** Reads and checks the prefix and header of the catalogue file `path` (a FileError if it is not a regular file). */
export async function readCatalogueHeader(path: string): Promise<ParsedHeader> {
  const { fh, stat } = await openRegularFile(path);
  try {
    return await readHeaderFrom(path, fh, stat.size);
  } finally {
    await fh.close();
  }
}

/** Reads and checks the prefix and header of `path`, open on `fh`, whose fstat size is `size`. */
export async function readHeaderFrom(path: string, fh: FileHandle, size: number): Promise<ParsedHeader> {
  assertLittleEndian();
  const fail = (msg: string): never => {
    throw new FormatError(path, msg);
  };
  const shrank = (): Error => new FormatError(path, 'the file shrank while it was being read');
  if (size < PREFIX_BYTES) fail(`not a recscore catalogue (only ${size} bytes)`);
  const prefix = await readExactly(fh, path, PREFIX_BYTES, 0, shrank);
  if (!prefix.subarray(0, 8).equals(MAGIC)) fail('not a recscore catalogue (bad magic)');
  const v = prefix.readUInt32LE(8);
  if (v !== 1 && v !== 2) {
    fail(`catalogue format version ${v} is not supported (this recscore reads 1 and 2)`);
  }
  const version: FileVersion = v === 1 ? 1 : 2;
  const hlen = prefix.readUInt32LE(12);
  // The header cannot be larger than the file: a hostile length allocates nothing.
  if (hlen === 0 || PREFIX_BYTES + hlen > size) {
    fail(`truncated or corrupt: header length ${hlen} does not fit in a ${size}-byte file`);
  }
  const hbytes = await readExactly(fh, path, hlen, PREFIX_BYTES, shrank);
  const headerCrc = prefix.readUInt32LE(16);
  if (crc32(hbytes) !== headerCrc) fail('corrupt: header checksum mismatch');
  let h: unknown;
  try {
    h = unpack(hbytes);
  } catch (e) {
    throw new FormatError(path, `corrupt header: ${(e as Error).message}`, { cause: e });
  }
  const data = checkHeader(path, h, PREFIX_BYTES + hlen, size, version);
  return { header: h as CatalogueHeader, version, fileSize: size, headerCrc, data };
}

/** The compressed section's pieces, in file order, as bytes. */
function compressedPieces(c: CompressedParts): Uint8Array[] {
  const b = (a: ArrayBufferView): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return [b(c.data), ...(c.scale ? [b(c.scale)] : []), b(c.err), ...(c.errBias ? [b(c.errBias)] : [])];
}

/** Views of a mapped file's compressed section (its layout checked by checkHeader). */
export function compressedViews(buffer: ArrayBuffer, h: CatalogueHeader, version: FileVersion): CompressedParts | null {
  const c = h.compressed;
  if (!c) return null;
  const n = h.count;
  const e = compactElements(version, c.precision, n, h.dim);
  return {
    precision: c.precision,
    data: c.precision === 'int8' ? new Int8Array(buffer, c.dataOffset, e) : new Uint16Array(buffer, c.dataOffset, e),
    scale: typeof c.scaleOffset === 'number' ? new Float32Array(buffer, c.scaleOffset, n) : undefined,
    err: new Float32Array(buffer, c.errOffset, n),
    errBias: typeof c.errBiasOffset === 'number' ? new Float32Array(buffer, c.errBiasOffset, n) : undefined,
  };
}
