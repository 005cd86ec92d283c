/**
 * Family a: catalogue files. Each case builds a valid file with the library
 * (Catalogue.fromVectors(...).save), then mutates it the way a corrupted disk or a buggy writer
 * would: raw byte flips, truncation and extension (checksums left stale), and edits of the
 * header, the matrix or the compressed section with both checksums recomputed (a writer that
 * writes wrong content, consistently). Oracle: the open is refused with a typed error, or the
 * file opens and (1) its header obeys the format's rules (ids unique strings or safe integers,
 * count entries; bias finite; attributes N uint32; with verification: matrix finite and within
 * maxRowNorm), and (2) topK equals a float64 brute-force top-k computed here from the file's own
 * float32 matrix and bias, and a user alone (the compressed scan, when there is one) equals the
 * same user in a batch of 8 (the float32 scan) bit for bit.
 *
 * The library writes format version 2 (matrix and compact copy in panels of 16 rows); a quarter
 * of the cases rewrite the base file as version 1 (row-major, gen_catalogue_bytes.mjs toVersion1)
 * so that both readers are fuzzed. Edits address the data as the file's version lays them out.
 *
 * This module builds the base file and runs a case; the file's bytes are read and written in
 * gen_catalogue_bytes.mjs, the edits are in gen_catalogue_edits.mjs and the oracle in
 * gen_catalogue_oracle.mjs.
 */
import { closeSync, ftruncateSync, openSync, readFileSync, statSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

import { Wrong, errText, isTyped, rejected } from './common.mjs';
import { parseFile, rawEdit, toVersion1, writeHeader } from './gen_catalogue_bytes.mjs';
import { DATA_EDITS, headerEdit } from './gen_catalogue_edits.mjs';
import { checkOpened } from './gen_catalogue_oracle.mjs';

export { parseFile };

// ---------------------------------------------------------------- base catalogues

function randomIds(rng, n) {
  const kind = rng.weighted([[3, 'none'], [3, 'int'], [3, 'string'], [1, 'mixed']]);
  if (kind === 'none') return { kind, ids: undefined };
  const seen = new Set();
  const ids = [];
  const str = () => {
    const alphabet = ['a', 'b', 'Z', '0', '-', ' ', 'é', '漢', '😀', '\u0000', '"', '\\'];
    let s = rng.bool(0.3) ? 'sku-' : '';
    const len = rng.int(0, 6);
    for (let i = 0; i < len; i++) s += rng.pick(alphabet);
    return s;
  };
  const int = () => rng.weighted([[4, rng.int(0, 10 * n)], [1, -rng.int(1, 1000)], [1, 2 ** 53 - 1 - rng.int(0, 5)], [1, rng.int(0, 2 ** 31)]]);
  while (ids.length < n) {
    const v = kind === 'int' ? int() : kind === 'string' ? str() : rng.bool() ? str() : int();
    if (seen.has(v)) {
      if (kind !== 'int') ids.push(`${v}#${ids.length}`), seen.add(`${v}#${ids.length - 1}`);
      continue;
    }
    seen.add(v);
    ids.push(v);
  }
  return { kind, ids };
}

function randomVectors(rng, n, d) {
  const v = new Float32Array(n * d);
  const kind = rng.weighted([[4, 'uniform'], [3, 'normal'], [2, 'clustered'], [1, 'duplicates'], [1, 'scaled'], [1, 'lowrank']]);
  if (kind === 'clustered' || kind === 'lowrank') {
    const c = rng.int(1, 4);
    const centers = Array.from({ length: c }, () => Float32Array.from({ length: d }, () => rng.normal()));
    for (let j = 0; j < n; j++) {
      const cc = centers[j % c];
      const a = kind === 'lowrank' ? rng.normal() : 1;
      for (let p = 0; p < d; p++) v[j * d + p] = a * cc[p] + (kind === 'clustered' ? 0.01 * rng.normal() : 0);
    }
  } else {
    const scale = kind === 'scaled' ? 10 ** rng.int(-12, 12) : 1;
    for (let i = 0; i < v.length; i++) v[i] = (kind === 'uniform' ? rng.float() * 2 - 1 : rng.normal()) * scale;
    if (kind === 'duplicates') for (let j = 1; j < n; j++) if (rng.bool(0.5)) v.copyWithin(j * d, (j - 1) * d, j * d);
  }
  if (rng.bool(0.1)) v.fill(0, 0, d * rng.int(0, Math.min(2, n))); // zero rows
  return { kind, v };
}

export function baseSpec(rng) {
  const n = rng.weighted([[2, rng.int(1, 8)], [6, rng.int(9, 120)], [2, rng.int(121, 500)]]);
  const d = rng.weighted([[2, rng.int(1, 4)], [6, rng.int(5, 24)], [1, rng.int(25, 70)]]);
  const { kind: vkind, v } = randomVectors(rng, n, d);
  const { kind: idKind, ids } = randomIds(rng, n);
  const bias = rng.bool(0.5) ? Float32Array.from({ length: n }, () => rng.normal() * (rng.bool(0.8) ? 0.5 : 100)) : undefined;
  const attributes = rng.bool(0.4) ? Uint32Array.from({ length: n }, () => rng.u32() & rng.pick([0xff, 0xffffffff, 0x3])) : undefined;
  const precision = rng.weighted([[5, 'f32'], [4, 'int8'], [2, 'bf16']]);
  const desc = `n=${n} d=${d} ${vkind} ids=${idKind}${bias ? ' bias' : ''}${attributes ? ' attrs' : ''} ${precision}`;
  return { n, d, v, ids, bias, attributes, precision, desc };
}

// ---------------------------------------------------------------- a case

export async function setup() {
  return {};
}

export async function run(ctx, rng, index) {
  const { Catalogue } = ctx.lib;
  const spec = baseSpec(rng);
  const base = join(ctx.caseDir, 'base.rsc');
  const path = join(ctx.caseDir, 'fuzz.rsc');
  try {
    const cat = Catalogue.fromVectors(spec.v, { dim: spec.d, ids: spec.ids, bias: spec.bias, attributes: spec.attributes, precision: spec.precision });
    await cat.save(base);
    await cat.close();
  } catch (e) {
    // The builder refused a valid input (or failed): itself a finding.
    return { ...rejected(e, 'builder'), outcome: isTyped(e) ? 'wrong' : 'untyped', kind: `build ${spec.desc}`, detail: `the builder refused a valid catalogue: ${errText(e)}` };
  }
  let buf = new Uint8Array(readFileSync(base));
  const version = rng.bool(0.25) ? 1 : 2;
  if (version === 1) {
    try {
      buf = toVersion1(buf);
      writeFileSync(base, buf);
    } catch (e) {
      return { outcome: 'wrong', kind: `build ${spec.desc} v1`, detail: `the harness could not rewrite the saved file as version 1 (not a version-2 file?): ${errText(e)}` };
    }
  }
  spec.desc += ` v${version}`;
  const parsed = parseFile(buf);
  const h = parsed.header;
  const physOffset = h.dataOffset;
  const plan = rng.weighted([
    [1, 'none'],
    [4, 'data'],
    [6, 'header'],
    [2, 'data+header'],
    [4, 'raw'],
    [1, 'header+raw'],
  ]);
  const whats = [];
  const hot = new Set();
  let dataTouched = false;
  if (plan.includes('data')) {
    const keys = Object.keys(DATA_EDITS).filter((k) => (h.compressed ? true : !k.startsWith('compressed')));
    const m = rng.int(1, 2);
    for (let i = 0; i < m; i++) {
      const r = DATA_EDITS[rng.pick(keys)](rng, buf, h, version);
      if (!r) continue;
      whats.push(r.what);
      r.rows.forEach((x) => hot.add(x));
      dataTouched = true;
    }
  }
  let layoutOk = true;
  const staleCrc = rng.bool(0.08);
  if (plan.includes('header')) {
    const m = rng.weighted([[6, 1], [2, 2], [1, 3]]);
    const rows = [];
    for (let i = 0; i < m; i++) {
      try {
        const r = headerEdit(rng, h, rows, version, spec.n);
        whats.push(r.what);
        layoutOk &&= r.layout;
      } catch (e) {
        whats.push(`(edit skipped: ${e.message})`);
      }
    }
    rows.forEach((x) => Number.isInteger(x) && hot.add(x));
    // Without verification only the header schema is checked: an edit that changes how the
    // data are read (shape, offsets, compressed section, maxRowNorm) may change answers.
    dataTouched = true;
  }
  if (plan !== 'none' && plan !== 'raw') {
    if (staleCrc) whats.push('header CRC left stale');
    buf = writeHeader(buf, physOffset, h, { relayout: layoutOk, fixData: true, fixHeader: !staleCrc, staleHeaderCrc: parsed.hcrc });
  }
  if (plan.includes('raw')) {
    const m = rng.weighted([[5, 1], [1, 2]]);
    for (let i = 0; i < m; i++) {
      const r = rawEdit(rng, buf);
      buf = r.buf;
      whats.push(r.what);
    }
    dataTouched = true;
  }
  // Sometimes the file is first opened (verified) and closed, then rewritten in place: the same
  // inode (and, half the time, the same mtime), as a cache of verified files must not trust.
  const inPlace = plan !== 'none' && rng.bool(0.08);
  const keepMtime = inPlace && rng.bool(0.5);
  if (inPlace) {
    writeFileSync(path, readFileSync(base));
    try {
      await (await Catalogue.open(path)).close();
    } catch (e) {
      return { ...rejected(e, 'open of the unmodified file'), outcome: 'wrong', kind: `${spec.desc}; unmodified`, detail: `a file the builder wrote was refused: ${errText(e)}` };
    }
    const st = statSync(path);
    const fd = openSync(path, 'r+');
    writeSync(fd, buf, 0, buf.length, 0);
    ftruncateSync(fd, buf.length);
    closeSync(fd);
    if (keepMtime) utimesSync(path, st.atime, st.mtime);
  } else writeFileSync(path, buf);
  const verify = rng.weighted([[8, undefined], [1, true], [2, false]]);
  // A version-1 file logs one info line when it is repacked (the first open in this process).
  const logged = [];
  const logger = version === 1 && rng.bool(0.5) ? { info: (obj, msg) => logged.push({ obj, msg }) } : undefined;
  const kind = `${spec.desc}; ${plan}: ${whats.join('; ') || 'unmodified'}${inPlace ? `; rewritten in place after a verified open${keepMtime ? ' (mtime kept)' : ''}` : ''}${verify === false ? '; verify:false' : ''}`;
  const queryPlan = { k: rng.weighted([[3, 1], [2, 2], [2, 3], [2, 10], [1, spec.n], [1, spec.n + 3]]), extraSeed: rng.u32() };

  ctx.kind = kind;
  let cat;
  try {
    const options = verify === undefined && !logger ? undefined : { ...(verify === undefined ? {} : { verify }), ...(logger ? { logger } : {}) };
    cat = await Catalogue.open(path, options);
  } catch (e) {
    if (plan === 'none') return { outcome: 'wrong', kind, detail: `a file the builder wrote was refused: ${errText(e)}` };
    return { ...rejected(e, 'open'), kind };
  }
  try {
    const checked = await checkOpened(ctx, cat, buf, { verify: verify !== false, dataTouched, hot: [...hot], plan: queryPlan, rng });
    if (logger && !inPlace && parseFile(buf).version === 1 && !logged.some((l) => l.obj?.version === 1)) {
      return { outcome: 'wrong', kind, detail: `a version-1 file opened with a logger logged no info line about its repacking (got ${JSON.stringify(logged)})` };
    }
    return { outcome: 'correct', kind, detail: checked };
  } catch (e) {
    if (e instanceof Wrong) return { outcome: 'wrong', kind, detail: e.message };
    return { ...rejected(e, 'after open'), kind };
  } finally {
    await cat.close().catch(() => {});
  }
}
