/** Reading NumPy .npy files of float32 in C order (what `np.save(path, a.astype(np.float32))` writes). */
import { open as openFile } from 'node:fs/promises';

import { FormatError } from './errors.js';

export interface NpyArray {
  shape: number[];
  data: Float32Array;
}

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/**
 * Reads a float32 .npy file into memory. `shared` puts the data in a SharedArrayBuffer (so a
 * catalogue can later be handed to worker threads without a copy).
 */
export async function readNpyFloat32(path: string, shared = false): Promise<NpyArray> {
  const fh = await openFile(path, 'r');
  try {
    const { size } = await fh.stat();
    const pre = Buffer.alloc(12);
    await fh.read(pre, 0, 12, 0);
    if (size < 10 || !pre.subarray(0, 6).equals(NPY_MAGIC)) throw new FormatError(path, 'not a .npy file (bad magic)');
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
    if (hstart + hlen > size) throw new FormatError(path, 'truncated .npy header');
    const hbuf = Buffer.alloc(hlen);
    await fh.read(hbuf, 0, hlen, hstart);
    const header = hbuf.toString('latin1');
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
      const { bytesRead } = await fh.read(bytes, o, len, offset + o);
      if (bytesRead !== len) throw new FormatError(path, 'truncated while reading data');
    }
    return { shape, data: new Float32Array(buffer) };
  } finally {
    await fh.close();
  }
}
