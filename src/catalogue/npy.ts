/** Reading NumPy .npy files of float32 in C order (what `np.save(path, a.astype(np.float32))` writes). */
import { FormatError } from '../errors.js';
import { openRegularFile, readExactly, readInto } from '../file_check.js';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/**
 * Reads a float32 .npy file into memory. `shared` puts the data in a SharedArrayBuffer (so a
 * catalogue can later be handed to worker threads without a copy). The path must be a regular
 * file (a FileError otherwise: a FIFO is refused, not waited on); sizes come from its fstat.
 */
export async function readNpyFloat32(path: string, shared = false): Promise<NpyArray> {
  const { fh, stat } = await openRegularFile(path);
  const shrank = (): Error => new FormatError(path, 'truncated while reading data');
  try {
    const size = stat.size;
    if (size < 10) throw new FormatError(path, 'not a .npy file (bad magic)');
    const pre = await readExactly(fh, path, Math.min(12, size), 0, shrank);
    if (!pre.subarray(0, 6).equals(NPY_MAGIC)) throw new FormatError(path, 'not a .npy file (bad magic)');
    const major = pre[6];
    let hlen: number;
    let hstart: number;
    if (major === 1) {
      hlen = pre.readUInt16LE(8);
      hstart = 10;
    } else if (major === 2 || major === 3) {
      hlen = pre.readUInt32LE(8);
      hstart = 12;
    } else {
      throw new FormatError(path, `.npy format version ${major} is not supported`);
    }
    if (hstart > pre.length || hstart + hlen > size) throw new FormatError(path, 'truncated .npy header');
    const header = (await readExactly(fh, path, hlen, hstart, shrank)).toString('latin1');
    const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
    const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
    const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
    if (descr === undefined || fortran === undefined || shapeText === undefined) {
      throw new FormatError(path, 'corrupt .npy header');
    }
    if (descr !== '<f4' && descr !== '=f4' && descr !== '|f4') {
      throw new FormatError(path, `dtype ${descr} is not float32 little-endian; save it with a.astype(np.float32)`);
    }
    if (fortran === 'True') throw new FormatError(path, 'Fortran-order arrays are not supported; save np.ascontiguousarray(a)');
    const shape = shapeText
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0)
      .map((s) => Number(s));
    if (shape.some((v) => !Number.isSafeInteger(v) || v < 0)) throw new FormatError(path, `bad shape (${shapeText})`);
    const count = shape.reduce((a, b) => a * b, 1);
    const offset = hstart + hlen;
    if (offset + count * 4 > size) {
      throw new FormatError(path, `truncated: shape (${shape.join(', ')}) needs ${offset + count * 4} bytes, file has ${size}`);
    }
    const buffer = shared ? new SharedArrayBuffer(count * 4) : new ArrayBuffer(count * 4);
    const bytes = new Uint8Array(buffer);
    const CHUNK = 64 << 20;
    for (let o = 0; o < bytes.length; o += CHUNK) {
      const len = Math.min(CHUNK, bytes.length - o);
      await readInto(fh, path, bytes.subarray(o, o + len), offset + o, shrank);
    }
    return { shape, data: new Float32Array(buffer) };
  } finally {
    await fh.close();
  }
}
