/**
 * Opening a catalogue file: one descriptor, opened without blocking and fstat'd (a FIFO, a
 * directory or a device is a FileError before anything is read), through which the header is
 * read and the file mapped, so every size comes from that fstat and the mapping is the file the
 * header came from. Then the structural rules (always) and the deep pass (`verify`, once per
 * file version per process).
 */
import { compressedViews, readHeaderFrom } from './catalogue_file.js';
import type { CatalogueHeader, HeaderData } from './catalogue_header.js';
import type { FileIdentity } from './catalogue_types.js';
import { isVerified, rememberVerified, verifyContent, versionKey } from './catalogue_verify.js';
import { FileError, FormatError } from './errors.js';
import { type CompressedParts, type NativeMappedFile, native } from './native.js';
import { openRegularFile } from './file_check.js';

export interface OpenedFile {
  header: CatalogueHeader;
  data: HeaderData;
  mapping: NativeMappedFile;
  vectors: Float32Array;
  compressed: CompressedParts | null;
  identity: FileIdentity;
  /** The deep pass has passed for this file version in this module instance. */
  verified: boolean;
}

export async function openCatalogueFile(path: string, verify: boolean): Promise<OpenedFile> {
  const { fh, stat } = await openRegularFile(path);
  let mapping: NativeMappedFile | null = null;
  try {
    const { header: h, data, headerCrc } = await readHeaderFrom(path, fh, stat.size);
    try {
      mapping = new (native().MappedFile)(path, fh.fd);
    } catch (e) {
      throw new FileError(path, `cannot be mapped (${(e as Error).message})`, { cause: e });
    }
    if (mapping.size !== stat.size) {
      throw new FormatError(path, `the file changed while it was being opened (${stat.size} bytes, then ${mapping.size})`);
    }
    const vectors = new Float32Array(mapping.buffer, h.dataOffset, h.count * h.dim);
    const compressed = compressedViews(mapping.buffer, h);
    const key = versionKey(stat, headerCrc);
    let verified = isVerified(key);
    if (verify && !verified) {
      const target = { vectors, count: h.count, dim: h.dim, bias: data.bias, maxRowNorm: h.maxRowNorm, compressed };
      await verifyContent(path, target, { matrix: h.checksum.value, compressed: h.compressed?.checksum.value ?? null });
      rememberVerified(key);
      verified = true;
    }
    const identity = { dev: stat.dev, ino: stat.ino, size: stat.size, mtimeMs: stat.mtimeMs, checksum: h.checksum.value };
    return { header: h, data, mapping, vectors, compressed, identity, verified };
  } catch (e) {
    mapping?.close();
    throw e;
  } finally {
    await fh.close();
  }
}

/** Whether two identities name the same version of the same file. */
export function sameVersion(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.checksum === b.checksum;
}
