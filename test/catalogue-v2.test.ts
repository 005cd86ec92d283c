/**
 * Catalogue format version 2 (panels) and the reading of version 1 (row-major). The packing is
 * checked against an address formula written here from docs/catalogue-format.md, and version-1
 * files are made here by converting a version-2 file's sections back to row-major, so the reader
 * of each version is tested against the other's bytes, not against itself.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

import { pack, unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';

import { Catalogue, FormatError } from '../src/index.js';
import { editCatalogue } from './catalogue-edit.js';
import { expectTopK, randomMatrix } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'recscore-v2-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const cli = new URL('../dist/cli.cjs', import.meta.url).pathname;

/** The spec's addresses (docs/catalogue-format.md, "Layout"). */
const f32At = (d: number, r: number, p: number): number => Math.floor(r / 16) * 16 * d + p * 16 + (r % 16);
function compactAt(prec: 'int8' | 'bf16', d: number, r: number, p: number): number {
  const g = prec === 'int8' ? 4 : 2;
  const perPanel = 16 * g * Math.ceil(d / g);
  return Math.floor(r / 16) * perPanel + Math.floor(p / g) * 16 * g + (r % 16) * g + (p % g);
}

interface Parsed {
  version: number;
  header: Record<string, any>;
  file: Uint8Array;
}
function parse(path: string): Parsed {
  const file = new Uint8Array(readFileSync(path));
  const buf = Buffer.from(file.buffer);
  const hlen = buf.readUInt32LE(12);
  return { version: buf.readUInt32LE(8), header: unpack(buf.subarray(24, 24 + hlen)) as Record<string, any>, file };
}

/** Rewrites a version-2 file as version 1: row-major matrix and compact copy, no layout key. */
function toVersion1(src: string, dst: string): void {
  const { header: h, file } = parse(src);
  const [n, d] = [h.count as number, h.dim as number];
  const panels = new Float32Array(file.buffer, h.dataOffset, Math.ceil(n / 16) * 16 * d);
  const rows = new Float32Array(n * d);
  for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) rows[r * d + p] = panels[f32At(d, r, p)];
  const pieces: Uint8Array[] = [new Uint8Array(rows.buffer)];
  const c = h.compressed;
  if (c) {
    const elem = c.precision === 'int8' ? 1 : 2;
    const packed = elem === 1 ? new Int8Array(file.buffer, c.dataOffset, c.scaleOffset - c.dataOffset) : new Uint16Array(file.buffer, c.dataOffset, (c.errOffset - c.dataOffset) / 2);
    const out = elem === 1 ? new Int8Array(n * d) : new Uint16Array(n * d);
    for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) out[r * d + p] = packed[compactAt(c.precision, d, r, p)];
    pieces.push(new Uint8Array(out.buffer));
    for (const k of ['scaleOffset', 'errOffset', 'errBiasOffset']) if (typeof c[k] === 'number') pieces.push(file.slice(c[k], c[k] + n * 4));
  }
  delete h.layout;
  h.dataBytes = n * d * 4;
  h.checksum = { algorithm: 'crc32', value: crc32(pieces[0]) };
  let hb = pack(h);
  const place = (): number[] => {
    const offs: number[] = [];
    let at = Math.ceil((24 + hb.length) / 64) * 64;
    for (const p of pieces) {
      offs.push(at);
      at = Math.ceil((at + p.byteLength) / 64) * 64;
    }
    return offs;
  };
  for (let i = 0; i < 3; i++) {
    const offs = place();
    h.dataOffset = offs[0];
    if (c) {
      let j = 1;
      c.dataOffset = offs[j++];
      if (typeof c.scaleOffset === 'number') c.scaleOffset = offs[j++];
      c.errOffset = offs[j++];
      if (typeof c.errBiasOffset === 'number') c.errBiasOffset = offs[j++];
      c.end = offs[offs.length - 1] + pieces[pieces.length - 1].byteLength;
      let crc = 0;
      for (const p of pieces.slice(1)) crc = crc32(p, crc);
      c.checksum = { algorithm: 'crc32', value: crc };
    }
    hb = pack(h);
  }
  const offs = place();
  const end = offs[offs.length - 1] + pieces[pieces.length - 1].byteLength;
  const out = Buffer.alloc(end);
  Buffer.from('RSCATLG\0', 'latin1').copy(out, 0);
  out.writeUInt32LE(1, 8);
  out.writeUInt32LE(hb.length, 12);
  out.writeUInt32LE(crc32(hb), 16);
  hb.copy(out, 24);
  pieces.forEach((p, i) => Buffer.from(p).copy(out, offs[i]));
  writeFileSync(dst, out);
}

function build(precision: 'f32' | 'int8' | 'bf16', n = 1000, d = 13): { c: Catalogue; items: Float32Array; bias: Float32Array } {
  const items = randomMatrix(n, d, 71);
  const bias = randomMatrix(n, 1, 72);
  const ids = Array.from({ length: n }, (_, i) => `sku-${i}`);
  return { c: Catalogue.fromVectors(items, { dim: d, ids, bias, precision }), items, bias };
}

describe('catalogue format version 2', () => {
  it('stores the matrix in panels of 16 rows at the documented addresses, padding zero', async () => {
    const n = 1000;
    const d = 13;
    const { c, items } = build('f32', n, d);
    const path = join(dir, 'p.rsc');
    await c.save(path);
    const { version, header: h, file } = parse(path);
    expect(version).toBe(2);
    expect(h.layout).toBe('panels16');
    expect(h.dataBytes).toBe(1008 * d * 4);
    const panels = new Float32Array(file.buffer, h.dataOffset, 1008 * d);
    for (let r = 0; r < n; r++) for (let p = 0; p < d; p++) expect(panels[f32At(d, r, p)]).toBe(items[r * d + p]);
    for (let r = n; r < 1008; r++) for (let p = 0; p < d; p++) expect(Object.is(panels[f32At(d, r, p)], 0)).toBe(true);
    await c.close();
  });

  it.each(['int8', 'bf16'] as const)('stores the %s compact copy in panels (row-major copy == unpacked panels)', async (prec) => {
    const n = 37;
    const d = 7; // neither a multiple of 4 nor of 2: the groups are padded
    const { c } = build(prec, n, d);
    const path = join(dir, `c-${prec}.rsc`);
    await c.save(path);
    const { header: h, file } = parse(path);
    const g = prec === 'int8' ? 4 : 2;
    const elems = 3 * 16 * g * Math.ceil(d / g);
    const packed = prec === 'int8' ? new Int8Array(file.buffer, h.compressed.dataOffset, elems) : new Uint16Array(file.buffer, h.compressed.dataOffset, elems);
    let nonzero = 0;
    for (let r = 0; r < 48; r++) {
      for (let p = 0; p < Math.ceil(d / g) * g; p++) {
        const v = packed[compactAt(prec, d, r, p)];
        if (r >= n || p >= d) expect(v).toBe(0);
        else if (v !== 0) nonzero++;
      }
    }
    expect(nonzero).toBeGreaterThan(n * d * 0.9);
    // The compact copy approximates the row it stands for.
    for (const r of [0, 17, 36]) {
      const x = c.vector(r);
      const scale = prec === 'int8' ? new Float32Array(file.buffer, h.compressed.scaleOffset, n)[r] : 1;
      for (let p = 0; p < d; p++) {
        const v = packed[compactAt(prec, d, r, p)];
        const approx = prec === 'int8' ? v * scale : new Float32Array(new Uint32Array([v << 16]).buffer)[0];
        expect(Math.abs(approx - x[p])).toBeLessThanOrEqual(prec === 'int8' ? scale / 2 + 1e-7 : Math.abs(x[p]) / 128);
      }
    }
    await c.close();
  });

  it('refuses nonzero padding and a missing layout with the rule named', async () => {
    const { c } = build('int8', 40, 6);
    const path = join(dir, 'pad.rsc');
    await c.save(path);
    await c.close();
    const bytes = readFileSync(path);
    const { header: h } = parse(path);
    const last = Buffer.from(bytes);
    last.writeFloatLE(0.5, h.dataOffset + f32At(6, 45, 2) * 4);
    const padPath = join(dir, 'pad2.rsc');
    writeFileSync(padPath, last);
    editCatalogue(padPath, () => {}); // checksums recomputed: only the padding rule can tell
    await expect(Catalogue.open(padPath)).rejects.toThrow(/matrix: padding row 45 \(past the last item\) is not zero/);
    const compact = Buffer.from(bytes);
    compact.writeInt8(3, h.compressed.dataOffset + compactAt('int8', 6, 5, 7));
    writeFileSync(padPath, compact);
    editCatalogue(padPath, () => {});
    await expect(Catalogue.open(padPath)).rejects.toThrow(/compressed: the compact copy's padding is not zero at row 5, column 7/);
    writeFileSync(padPath, bytes);
    editCatalogue(padPath, (f) => void delete f.header.layout);
    await expect(Catalogue.open(padPath)).rejects.toThrow(FormatError);
    await expect(Catalogue.open(padPath)).rejects.toThrow(/header: layout must be "panels16", got undefined/);
  });
});

describe('catalogue format version 1', () => {
  it.each(['f32', 'int8', 'bf16'] as const)('a %s version-1 file opens, repacked once with one notice, and scores bit-identically', async (prec) => {
    const n = 1000;
    const d = 13;
    const { c, items, bias } = build(prec, n, d);
    const v2 = join(dir, `v2-${prec}.rsc`);
    const v1 = join(dir, `v1-${prec}.rsc`);
    await c.save(v2);
    toVersion1(v2, v1);
    expect(parse(v1).version).toBe(1);
    const notices: string[] = [];
    const logger = { info: (_o: object, msg?: string) => void notices.push(msg ?? '') };
    const a = await Catalogue.open(v1, { logger });
    const again = await Catalogue.open(v1, { logger }); // the same file version: not repacked again
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/format version 1: repacked in memory once per process; `recscore catalogue upgrade` converts it/);
    expect(a.formatVersion).toBe(1);
    const b = await Catalogue.open(v2);
    expect(b.formatVersion).toBe(2);
    const users = randomMatrix(3, d, 73);
    for (const batch of [users.subarray(0, d), users]) {
      const ra = a.topK(batch, { k: 20, exclude: batch.length === d ? [[5]] : [[5], null, [1, 2]] });
      const rb = b.topK(batch, { k: 20, exclude: batch.length === d ? [[5]] : [[5], null, [1, 2]] });
      expect(ra.rows).toEqual(rb.rows);
      expect(ra.scores).toEqual(rb.scores);
      expectTopK(ra, { items, dim: d, bias, exclude: batch.length === d ? [[5]] : [[5], null, [1, 2]] }, batch, 20);
    }
    expect(a.id(999)).toBe('sku-999');
    expect(a.vector(17)).toEqual(items.slice(17 * d, 18 * d));
    await Promise.all([a.close(), again.close(), b.close(), c.close()]);
  });

  it('`recscore catalogue upgrade` writes the version-2 file save writes, byte for byte', async () => {
    const { c } = build('bf16', 300, 9);
    const v2 = join(dir, 'u2.rsc');
    const v1 = join(dir, 'u1.rsc');
    const up = join(dir, 'up.rsc');
    await c.save(v2);
    await c.close();
    toVersion1(v2, v1);
    const out = execFileSync(process.execPath, [cli, 'catalogue', 'upgrade', v1, up], { encoding: 'utf8' });
    expect(out).toMatch(/format version 1 -> 2/);
    expect(readFileSync(up).equals(readFileSync(v2))).toBe(true);
    const info = execFileSync(process.execPath, [cli, 'catalogue', 'inspect', v1], { encoding: 'utf8' });
    expect(info).toMatch(/v1 \(row-major; `recscore catalogue upgrade` converts it to v2\)/);
  });
});
