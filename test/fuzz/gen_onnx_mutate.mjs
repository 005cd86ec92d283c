/**
 * Family b (gen_onnx.mjs): one case's mutation of a base model: raw byte edits (flips,
 * truncation, extension, splices, zeroed bytes), or one to three structured edits
 * (gen_onnx_structured.mjs), sometimes with names that are not UTF-8 patched in after encoding.
 */
import { Attr, decodeModel, encodeModel } from './onnx_schema.mjs';
import { STRUCTURED, pickNode } from './gen_onnx_structured.mjs';

/** Names that are not UTF-8: set a marker, encode, then overwrite the marker's bytes. */
function invalidUtf8(rng, m) {
  const g = m.graph;
  const marker = `Q${Array.from({ length: 7 }, () => String.fromCharCode(97 + rng.int(0, 25))).join('')}`;
  const where = rng.pick(['node.name', 'node.input', 'node.output', 'attr.name', 'initializer.name', 'graph.input', 'opType', 'docString', 'attr.s']);
  const n = pickNode(rng, g);
  if (where === 'node.name') n.name = marker;
  else if (where === 'node.input' && n.input.length) {
    const old = n.input[0];
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
    for (const t of g.initializer) if (t.name === old) t.name = marker;
    for (const i of g.input) if (i.name === old) i.name = marker;
  } else if (where === 'node.output' && n.output.length) {
    const old = n.output[0];
    n.output[0] = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
    for (const o of g.output) if (o.name === old) o.name = marker;
  } else if (where === 'attr.name' && n.attribute.length) rng.pick(n.attribute).name = marker;
  else if (where === 'initializer.name' && g.initializer.length) {
    const t = rng.pick(g.initializer);
    const old = t.name;
    t.name = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
  } else if (where === 'graph.input' && g.input.length) {
    const old = g.input[0].name;
    g.input[0].name = marker;
    for (const x of g.node) x.input = x.input.map((s) => (s === old ? marker : s));
  } else if (where === 'opType') n.opType = marker;
  else if (where === 'attr.s') {
    const a = n.attribute.find((x) => x.type === Attr.STRING);
    if (!a) return null;
    a.s = new TextEncoder().encode(marker);
  } else g.docString = marker;
  const bad = rng.pick([
    [0xff, 0xfe, 0xfd, 0x41, 0x42, 0x43, 0x44, 0x45],
    [0xc3, 0x28, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41],
    [0x41, 0xed, 0xa0, 0x80, 0x41, 0x41, 0x41, 0x41],
    [0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0x41, 0xe2],
  ]);
  return {
    what: `invalid UTF-8 in ${where}${where.startsWith('node') || where.startsWith('attr') || where === 'opType' ? ` (${n.opType} ${n.name})` : ''}`,
    patch(bytes) {
      const mk = new TextEncoder().encode(marker);
      let count = 0;
      for (let i = 0; i + mk.length <= bytes.length; i++) {
        let ok = true;
        for (let k = 0; k < mk.length && ok; k++) ok = bytes[i + k] === mk[k];
        if (ok) {
          bytes.set(bad, i);
          count++;
        }
      }
      return count;
    },
  };
}

function rawMutation(rng, bytes) {
  const kind = rng.weighted([[4, 'flip'], [2, 'truncate'], [1, 'extend'], [1, 'splice'], [1, 'zero']]);
  const b = Uint8Array.from(bytes);
  if (kind === 'flip') {
    const m = rng.int(1, 8);
    const at = [];
    for (let i = 0; i < m; i++) {
      const o = rng.bool(0.5) ? rng.int(0, Math.min(b.length, 2048) - 1) : rng.int(0, b.length - 1);
      b[o] ^= 1 << rng.int(0, 7);
      at.push(o);
    }
    return { bytes: b, what: `bit flips at ${at.join(',')}` };
  }
  if (kind === 'truncate') {
    const len = rng.pick([0, 1, 2, 10, b.length - 1, b.length - 4, rng.int(0, b.length - 1), Math.floor(b.length / 2)]);
    return { bytes: b.slice(0, Math.max(0, Math.min(len, b.length - 1))), what: `truncated to ${Math.max(0, Math.min(len, b.length - 1))} of ${b.length}` };
  }
  if (kind === 'extend') {
    const extra = rng.bytes(rng.pick([1, 3, 16, 200]));
    const out = new Uint8Array(b.length + extra.length);
    out.set(b);
    out.set(extra, b.length);
    return { bytes: out, what: `extended by ${extra.length} random bytes` };
  }
  if (kind === 'splice') {
    const from = rng.int(0, b.length - 1);
    const len = rng.int(1, Math.min(64, b.length - from));
    const to = rng.int(0, b.length - len);
    b.copyWithin(to, from, from + len);
    return { bytes: b, what: `${len} bytes copied from ${from} to ${to}` };
  }
  const o = rng.int(0, b.length - 1);
  const len = rng.int(1, 16);
  b.fill(0, o, o + len);
  return { bytes: b, what: `${len} bytes zeroed at ${o}` };
}

export function mutate(rng, base) {
  if (rng.bool(0.04)) return { bytes: base.bytes, what: 'unmodified' };
  if (rng.bool(0.3)) return rawMutation(rng, base.bytes);
  for (let attempt = 0; attempt < 8; attempt++) {
    const m = decodeModel(base.bytes);
    const whats = [];
    let patch = null;
    const count = rng.weighted([[6, 1], [2, 2], [1, 3]]);
    for (let c = 0; c < count; c++) {
      const key = rng.weighted([
        [4, 'attrRename'],
        [5, 'attrValue'],
        [3, 'attrAdd'],
        [2, 'attrDrop'],
        [2, 'inputDrop'],
        [1, 'inputAdd'],
        [2, 'inputSwap'],
        [4, 'initializer'],
        [3, 'constant'],
        [2, 'opType'],
        [1, 'nodeDrop'],
        [1, 'nodeDup'],
        [1, 'domain'],
        [1, 'opset'],
        [2, 'ioType'],
        [1, 'rename'],
        [1, 'external'],
        [2, 'utf8'],
      ]);
      try {
        if (key === 'utf8') {
          const r = invalidUtf8(rng, m);
          if (r) {
            patch = r.patch;
            whats.push(r.what);
          }
        } else {
          const w = STRUCTURED[key](rng, m);
          if (w) whats.push(w);
        }
      } catch (e) {
        whats.push(`(${key} failed: ${e.message})`);
      }
    }
    if (!whats.length) continue;
    let bytes;
    try {
      bytes = encodeModel(m);
    } catch {
      continue;
    }
    if (patch && patch(bytes) === 0) whats.push('(marker not found)');
    return { bytes, what: whats.join('; ') };
  }
  return rawMutation(rng, base.bytes);
}
