/**
 * Family a (gen_catalogue.mjs): the oracle for a file the library opened. It reads the file's
 * content here (independently of the library), checks that the header obeys the format's rules
 * and, with verification, that the matrix is finite and within maxRowNorm, then compares topK,
 * a user alone, exclusions, filters and topKAsync with a float64 brute force, and round-trips
 * the ids of the rows returned.
 *
 * The file is read as the version in its prefix says: version 1 row-major, version 2 in panels of
 * 16 rows (docs/catalogue-format.md, "Layout"). An accepted version-2 file must say
 * `layout: "panels16"` and, with verification, have +0 padding in the matrix's last panel and in
 * the compact copy (dimensions past d, rows past N).
 */
import { checkTopK, errText, sameResult, wrong } from './common.mjs';
import { PANEL, PREFIX, compactAt, compactBytes, compactElem, compactGroup, isInt, matrixAt, matrixBytes, panelCount, parseFile } from './gen_catalogue_bytes.mjs';

/** What the accepted file says, read here (independently of the library). */
function readContent(buf) {
  const { header: h, version: v, hlen } = parseFile(buf);
  if (!h || typeof h !== 'object') wrong('accepted a file whose header does not parse');
  if (v !== 1 && v !== 2) wrong(`accepted format version ${v}`);
  const { count: n, dim: d, dataOffset } = h;
  if (!isInt(n) || !isInt(d) || n < 1 || d < 1) wrong(`accepted count ${n} / dim ${d}`);
  if (v === 2 && h.layout !== 'panels16') wrong(`accepted a version-2 file with layout ${JSON.stringify(h.layout)} (must be "panels16")`);
  const mb = matrixBytes(v, n, d);
  if (h.dataBytes !== mb) wrong(`accepted dataBytes ${h.dataBytes} for a version-${v} ${n}×${d} matrix (must be ${mb})`);
  if (!isInt(dataOffset) || dataOffset + mb > buf.length || dataOffset < PREFIX + hlen || dataOffset % 64 !== 0) {
    wrong(`accepted a matrix [${dataOffset}, +${mb}) in a ${buf.length}-byte file whose header ends at ${PREFIX + hlen}`);
  }
  const c = h.compressed && typeof h.compressed === 'object' ? h.compressed : null;
  const end = c ? c.end : dataOffset + mb;
  if (end !== buf.length) wrong(`accepted a ${buf.length}-byte file that should end at ${end}`);
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const items = new Float32Array(n * d);
  for (let j = 0; j < n; j++) for (let p = 0; p < d; p++) items[j * d + p] = dv.getFloat32(dataOffset + matrixAt(v, d, j, p) * 4, true);
  const bin = (x) => (x instanceof Uint8Array ? x : null);
  let bias = null;
  if (h.bias !== null && h.bias !== undefined) {
    const b = bin(h.bias);
    if (!b || b.byteLength !== n * 4) wrong(`accepted a bias of ${b ? b.byteLength : typeof h.bias} bytes for ${n} items`);
    bias = new Float32Array(n);
    new Uint8Array(bias.buffer).set(b);
  }
  let attributes = null;
  if (h.attributes !== null && h.attributes !== undefined) {
    const a = bin(h.attributes);
    if (!a || a.byteLength !== n * 4) wrong(`accepted attributes of ${a ? a.byteLength : typeof h.attributes} bytes for ${n} items (uint32 each)`);
    attributes = new Uint32Array(n);
    new Uint8Array(attributes.buffer).set(a);
  }
  let ids = null;
  if (h.ids !== null && h.ids !== undefined) {
    if (typeof h.ids !== 'object') wrong(`accepted ids of type ${typeof h.ids}`);
    if (h.ids.kind === 'int') {
      const b = bin(h.ids.data);
      if (!b || b.byteLength !== n * 8) wrong(`accepted int ids of ${b ? b.byteLength : typeof h.ids.data} bytes for ${n} items`);
      const f = new Float64Array(n);
      new Uint8Array(f.buffer).set(b);
      ids = Array.from(f);
    } else if (h.ids.kind === 'mixed') {
      if (!Array.isArray(h.ids.values) || h.ids.values.length !== n) wrong(`accepted mixed ids with ${h.ids.values?.length} entries for ${n} items`);
      ids = h.ids.values;
    } else wrong(`accepted ids of kind ${String(h.ids.kind)}`);
  }
  return { h, v, n, d, items, bias, attributes, ids, padding: v === 2 ? paddingFault(buf, h, n, d) : null };
}

/** Version 2: where the padding (matrix rows past N; compact dims past d, rows past N) is not +0, or null. */
function paddingFault(buf, h, n, d) {
  const padded = panelCount(n) * PANEL;
  for (let r = n; r < padded; r++) {
    for (let p = 0; p < d; p++) {
      const o = h.dataOffset + matrixAt(2, d, r, p) * 4;
      if (buf[o] | buf[o + 1] | buf[o + 2] | buf[o + 3]) return `matrix padding row ${r} column ${p}`;
    }
  }
  const c = h.compressed;
  if (!c || typeof c !== 'object' || !isInt(c.dataOffset) || !compactElem(c.precision)) return null;
  const g = compactGroup(c.precision);
  const e = compactElem(c.precision);
  const width = Math.ceil(d / g) * g;
  if (c.dataOffset + compactBytes(2, c.precision, n, d) > buf.length) wrong(`accepted a compact copy past the end of the file`);
  for (let r = 0; r < padded; r++) {
    for (let p = r < n ? d : 0; p < width; p++) {
      const o = c.dataOffset + compactAt(2, c.precision, d, r, p) * e;
      if (buf[o] | (e === 2 ? buf[o + 1] : 0)) return `compact copy padding row ${r} column ${p}`;
    }
  }
  return null;
}

export async function checkOpened(ctx, cat, buf, { verify, dataTouched, hot, plan, rng }) {
  const { h, v, n, d, items, bias, attributes, ids, padding } = readContent(buf);
  if (cat.size !== n || cat.dim !== d) wrong(`opened as ${cat.size}×${cat.dim}, the header says ${n}×${d}`);
  // The header schema: checked on every open.
  if (ids) {
    const seen = new Map();
    for (let j = 0; j < n; j++) {
      const v = ids[j];
      if (!(typeof v === 'string' || (typeof v === 'number' && Number.isSafeInteger(v)))) wrong(`accepted id ${String(v)} (${typeof v}) at row ${j}: ids are strings or safe integers`);
      if (seen.has(v)) wrong(`accepted duplicate id ${JSON.stringify(v)} at rows ${seen.get(v)} and ${j}`);
      seen.set(v, j);
    }
  }
  if (bias) for (let j = 0; j < n; j++) if (!Number.isFinite(bias[j])) wrong(`accepted bias[${j}] = ${bias[j]}`);
  // With verification: the matrix is finite and within the recorded row-norm bound.
  let realMax = 0;
  let nonFinite = -1;
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let p = 0; p < d; p++) {
      const x = items[j * d + p];
      if (!Number.isFinite(x) && nonFinite < 0) nonFinite = j * d + p;
      s += x * x;
    }
    realMax = Math.max(realMax, Math.sqrt(s));
  }
  if (verify) {
    if (padding) wrong(`accepted (verified) a version-2 file whose ${padding} is not +0`);
    if (nonFinite >= 0) wrong(`accepted (verified) a matrix with ${items[nonFinite]} at row ${Math.floor(nonFinite / d)}`);
    if (typeof h.maxRowNorm === 'number' && realMax > h.maxRowNorm * (1 + 1e-5) + 1e-30) {
      wrong(`accepted (verified) maxRowNorm ${h.maxRowNorm} below the real largest row norm ${realMax}`);
    }
  }
  // Answers: without verification only a file whose data were not touched must answer exactly.
  const exact = verify || !dataTouched;
  const users = queryUsers(rng, items, n, d, hot);
  const b = users.length / d;
  const k = plan.k;
  const batch = cat.topK(users, { k });
  if (exact) {
    const diff = checkTopK({ items, n, d, bias, users, k, res: batch, eligible: () => true });
    if (diff) wrong(`topK (batch of ${b}, float32 scan) differs from float64 brute force: ${diff}`);
  }
  for (let u = 0; u < b; u++) {
    const one = cat.topK(users.subarray(u * d, (u + 1) * d), { k });
    if (exact) {
      const diff = sameResult(batch, one, u, 0);
      if (diff) wrong(`user ${u} alone (${cat.precision === 'f32' ? 'float32' : `${cat.precision} scan`}) differs from the same user in a batch of ${b}: ${diff}`);
    }
  }
  // Exclusions and an async call.
  const u0 = users.subarray(0, d);
  const excl = hot.length ? hot.filter((r) => r < n) : [0];
  const resEx = await cat.topKAsync(u0, { k, exclude: [excl] });
  if (exact) {
    const diff = checkTopK({ items, n, d, bias, users: u0, k, res: resEx, eligible: (_u, j) => !excl.includes(j) });
    if (diff) wrong(`topKAsync with exclude [${excl}] differs from brute force: ${diff}`);
  }
  if (attributes) {
    const mask = (attributes[rng.int(0, n - 1)] & rng.u32()) >>> 0;
    const res = cat.topK(u0, { k, filter: { allOf: mask } });
    if (exact) {
      const diff = checkTopK({ items, n, d, bias, users: u0, k, res, eligible: (_u, j) => (attributes[j] & mask) >>> 0 === mask >>> 0 });
      if (diff) wrong(`topK with filter allOf ${mask} differs from brute force: ${diff}`);
    }
  }
  // Ids round-trip for the rows returned.
  for (let i = 0; i < Math.min(batch.k, 8); i++) {
    const r = batch.rows[i];
    if (r < 0) continue;
    const id = cat.id(r);
    const want = ids ? ids[r] : r;
    if (!Object.is(id, want)) wrong(`id(${r}) = ${String(id)}, the file says ${String(want)}`);
    let back;
    try {
      back = cat.row(id);
    } catch (e) {
      wrong(`row(id(${r})) failed: ${errText(e)}`);
    }
    if (back !== r) wrong(`row(id(${r})) = ${back}`);
  }
  return `v${v} ${n}×${d} ${cat.precision}, ${b} users, k ${k}${exact ? '' : ' (answers not checked: verify:false and data edited)'}`;
}

/** Users: the hot rows (their own vectors are their best items), their negatives, random ones, a zero. */
function queryUsers(rng, items, n, d, hot) {
  const out = [];
  const row = (j) => Array.from(items.subarray(j * d, (j + 1) * d), (x) => (Number.isFinite(x) ? Math.max(-1e3, Math.min(1e3, x)) : 1));
  for (const j of hot.slice(0, 3)) if (j < n) out.push(row(j), row(j).map((x) => -x));
  while (out.length < 7) out.push(rng.bool(0.5) ? row(rng.int(0, n - 1)) : Array.from({ length: d }, () => rng.normal()));
  out.push(new Array(d).fill(0));
  while (out.length < 8) out.push(Array.from({ length: d }, () => rng.normal()));
  return Float32Array.from(out.flat());
}
