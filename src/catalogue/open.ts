/**
 * Opening a catalogue file: one descriptor, opened without blocking and fstat'd (a FIFO, a
 * directory or a device is a FileError before anything is read), through which the header is
 * read and the file mapped, so every size comes from that fstat and the mapping is the file the
 * header came from. Then the structural rules (always) and the deep pass (`verify`, once per
 * file version per process). A version-1 file (row-major) is repacked into panels in shared
 * memory once per process, with a notice through the logger.
 */
import { shareCompressed } from './build.js';
import { packPanels } from './topk.js';
import { compressedViews, readHeaderFrom } from './file.js';
import type { CatalogueHeader, HeaderData } from './header.js';
import { type FileVersion, matrixBytes } from './layout.js';
import type { FileIdentity } from './types.js';
import { isVerified, rememberVerified, verifyChecksums, verifyContent, versionKey } from './verify.js';
import { FileError, FormatError } from '../errors.js';
import type { Logger } from '../logger.js';
import { type CompressedParts, type NativeMappedFile, native } from '../native/addon.js';
import { openRegularFile, readExactly } from '../file_check.js';

export interface OpenedFile {
  header: CatalogueHeader;
  version: FileVersion;
  data: HeaderData;
  mapping: NativeMappedFile;
  /** The matrix packed in panels: a view of the mapping (version 2) or a repacked copy (1). */
  panels: Float32Array;
  /** The compact copy in the panel layout, likewise. */
  compressed: CompressedParts | null;
  identity: FileIdentity;
  headerCrc: number;
  /** The deep pass has passed for this file version in this module instance. */
  verified: boolean;
}

/** Version-1 files repacked in this process, by file version (dropped when no catalogue holds them). */
const repacked = new Map<string, WeakRef<{ panels: Float32Array; compressed: CompressedParts | null }>>();

export async function openCatalogueFile(path: string, verify: boolean, logger?: Logger): Promise<OpenedFile> {
  const { fh, stat } = await openRegularFile(path);
  let mapping: NativeMappedFile | null = null;
  try {
    const { header: h, version, data, headerCrc } = await readHeaderFrom(path, fh, stat.size);
    mapping = mapFile(path, fh.fd, stat.size);
    const matrix = new Float32Array(mapping.buffer, h.dataOffset, matrixBytes(version, h.count, h.dim) / 4);
    let compressed = compressedViews(mapping.buffer, h, version);
    const key = versionKey(stat, headerCrc);
    let verified = isVerified(key);
    const sums = { matrix: h.checksum.value, compressed: h.compressed?.checksum.value ?? null };
    // Version 1: the checksums of the stored bytes first, the contents once packed.
    if (verify && !verified && version === 1) await verifyChecksums(path, matrix, compressed, sums);
    let panels: Float32Array = matrix;
    if (version === 1) {
      let r = repacked.get(key)?.deref();
      if (!r) {
        r = repack(matrix, compressed, h.count, h.dim);
        repacked.set(key, new WeakRef(r));
        logger?.info?.(
          { path, version: 1 },
          `catalogue ${path} is format version 1: repacked in memory once per process; \`recscore catalogue upgrade\` converts it to version 2`,
        );
      }
      ({ panels, compressed } = r);
    }
    if (verify && !verified) {
      const target = { version: 2 as const, matrix: panels, count: h.count, dim: h.dim, bias: data.bias, maxRowNorm: h.maxRowNorm, compressed };
      await verifyContent(path, target, version === 2 ? sums : undefined);
      rememberVerified(key);
      verified = true;
    }
    const identity = { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, checksum: h.checksum.value };
    return { header: h, version, data, mapping, panels, compressed, identity, headerCrc, verified };
  } catch (e) {
    mapping?.close();
    throw e;
  } finally {
    await fh.close();
  }
}

function mapFile(path: string, fd: number, size: number): NativeMappedFile {
  let mapping: NativeMappedFile;
  try {
    mapping = new (native().MappedFile)(path, fd);
  } catch (e) {
    throw new FileError(path, `cannot be mapped (${(e as Error).message})`, { cause: e });
  }
  if (mapping.size !== size) {
    mapping.close();
    throw new FormatError(path, `the file changed while it was being opened (${size} bytes, then ${mapping.size})`);
  }
  return mapping;
}

/** A version-1 file's row-major sections, packed in panels in shared memory. */
function repack(matrix: Float32Array, c: CompressedParts | null, n: number, d: number): { panels: Float32Array; compressed: CompressedParts | null } {
  const panels = packPanels(matrix, n, d);
  if (!c) return { panels, compressed: null };
  const data = native().packCompact({ precision: c.precision, data: c.data, rows: n, d });
  const compressed = shareCompressed(c.precision, { data, scale: c.scale, err: c.err, errBias: c.errBias });
  return { panels, compressed };
}

/**
 * A worker thread's open of a file the main thread opened: no header decoding (the main thread
 * hands over what it decoded, the bias and attributes in shared memory), only a check that the
 * descriptor's fstat and header checksum name that very file version, then the mapping.
 */
/**
 * Maps the file a worker was handed after checking it is that very version. The ArrayBuffer is
 * taken at once and returned with the mapping: the mapping holds it weakly, and the await on the
 * file's close below would otherwise leave a window where a collection frees it.
 */
export async function mapSameFile(path: string, identity: FileIdentity, headerCrc: number): Promise<{ mapping: NativeMappedFile; buffer: ArrayBuffer }> {
  const { fh, stat } = await openRegularFile(path);
  try {
    const changed = (): FormatError => new FormatError(path, 'the catalogue file changed since it was first opened (a worker must map the same file)');
    const same = { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, checksum: identity.checksum };
    if (!sameVersion(same, identity) || stat.size < 24) throw changed();
    const prefix = await readExactly(fh, path, 24, 0, changed);
    if (prefix.readUInt32LE(16) !== headerCrc) throw changed();
    const mapping = mapFile(path, fh.fd, stat.size);
    return { mapping, buffer: mapping.buffer };
  } finally {
    await fh.close();
  }
}

/** Whether two identities name the same version of the same file. */
export function sameVersion(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.checksum === b.checksum;
}
