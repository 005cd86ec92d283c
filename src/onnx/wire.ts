/**
 * A strict check of the protobuf wire format of an ONNX file against the ONNX schema, run before
 * decoding. @bufbuild/protobuf reads a known field whatever its wire type, lets a nested field
 * run past the end of its message, and (proto2) replaces invalid UTF-8 with U+FFFD; a file with
 * any of these is corrupt, and must not be read as something else. Walks every record once
 * (skipping tensor bytes by length), so it costs a fraction of the decode.
 */
import { type DescField, type DescMessage, ScalarType } from '@bufbuild/protobuf';

/** Where (a field path such as `graph.node[3].name`) and what is wrong. */
export class WireError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** bytes fields the ONNX schema documents as UTF-8 text (attribute strings, string tensors). */
const TEXT_BYTES = new Set(['onnx.AttributeProto.s', 'onnx.AttributeProto.strings', 'onnx.TensorProto.string_data']);

const MAX_DEPTH = 100; // @bufbuild/protobuf's default recursion limit

const VARINT = 0;
const BIT64 = 1;
const LEN = 2;
const START_GROUP = 3;
const END_GROUP = 4;
const BIT32 = 5;

function scalarWireType(s: ScalarType): number {
  switch (s) {
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BIT64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return BIT32;
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return LEN;
    default:
      return VARINT;
  }
}

class Walker {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}

  varint(what: string, maxBytes = 10): number {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < maxBytes; i++) {
      if (this.pos >= this.buf.length) throw new WireError(`${what}: truncated`);
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return v; // exact below 2^53, which is all a length or tag needs
    }
    throw new WireError(`${what}: varint longer than ${maxBytes} bytes`);
  }

  /** Skips the value of an unknown field (groups included), checking that it is complete. */
  skip(wt: number, fieldNo: number, end: number, what: string, depth: number): void {
    switch (wt) {
      case VARINT:
        this.varint(what);
        return;
      case BIT64:
      case BIT32:
        this.pos += wt === BIT64 ? 8 : 4;
        break;
      case LEN:
        this.pos += this.varint(what, 5);
        break;
      case START_GROUP: {
        if (depth >= MAX_DEPTH) throw new WireError(`${what}: nested more than ${MAX_DEPTH} deep`);
        for (;;) {
          const [fn, w] = this.tag(end, what);
          if (w === END_GROUP) {
            if (fn !== fieldNo) throw new WireError(`${what}: group ${fieldNo} closed by the end of group ${fn}`);
            return;
          }
          this.skip(w, fn, end, what, depth + 1);
        }
      }
      default:
        throw new WireError(`${what}: unexpected end of group`);
    }
    if (this.pos > end) throw new WireError(`${what}: truncated`);
  }

  tag(end: number, what: string): [number, number] {
    if (this.pos >= end) throw new WireError(`${what}: truncated`);
    const tag = this.varint(what, 5);
    if (tag > 0xffffffff) throw new WireError(`${what}: tag overflows 32 bits`);
    const fieldNo = Math.floor(tag / 8);
    const wt = tag % 8;
    if (fieldNo === 0 || wt > 5) throw new WireError(`${what}: invalid tag (field ${fieldNo}, wire type ${wt})`);
    return [fieldNo, wt];
  }

  message(desc: DescMessage, end: number, path: string, depth: number): void {
    if (depth >= MAX_DEPTH) throw new WireError(`${path}: nested more than ${MAX_DEPTH} deep`);
    const counts = new Map<number, number>();
    while (this.pos < end) {
      const [fieldNo, wt] = this.tag(end, path || desc.name);
      const field = desc.fields.find((f) => f.number === fieldNo);
      if (!field) {
        this.skip(wt, fieldNo, end, `${path ? `${path}.` : ''}field ${fieldNo}`, depth);
        continue;
      }
      const n = counts.get(fieldNo) ?? 0;
      counts.set(fieldNo, n + 1);
      const where = `${path ? `${path}.` : ''}${field.name}${field.fieldKind === 'list' ? `[${n}]` : ''}`;
      this.field(field, wt, end, where, depth);
    }
    if (this.pos !== end) throw new WireError(`${path || desc.name}: a field runs past the end of its message`);
  }

  field(field: DescField, wt: number, end: number, where: string, depth: number): void {
    let expected: number;
    let packable = false;
    if (field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) expected = LEN;
    else if (field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum')) {
      expected = VARINT;
      packable = field.fieldKind === 'list';
    } else if (field.fieldKind === 'scalar' || (field.fieldKind === 'list' && field.listKind === 'scalar')) {
      expected = scalarWireType(field.scalar);
      packable = field.fieldKind === 'list' && expected !== LEN;
    } else {
      expected = LEN; // map entries (none in ONNX)
    }
    if (wt !== expected && !(packable && wt === LEN)) {
      throw new WireError(`${where}: wire type ${wt}, expected ${expected}`);
    }
    if (wt === VARINT) {
      this.varint(where);
      return;
    }
    if (wt === BIT64 || wt === BIT32) {
      this.pos += wt === BIT64 ? 8 : 4;
      if (this.pos > end) throw new WireError(`${where}: truncated`);
      return;
    }
    const len = this.varint(where, 5);
    const stop = this.pos + len;
    if (len > 0x7fffffff || stop > end) throw new WireError(`${where}: length ${len} runs past the end of its message`);
    if (field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) {
      this.message(field.message as DescMessage, stop, where, depth + 1);
      return;
    }
    if (packable) {
      if (expected === VARINT) while (this.pos < stop) this.varint(where);
      else if (len % (expected === BIT64 ? 8 : 4) !== 0) throw new WireError(`${where}: packed length ${len} is not a whole number of values`);
      this.pos = stop;
      return;
    }
    const text = (field.fieldKind === 'scalar' || field.fieldKind === 'list') && (field.scalar === ScalarType.STRING || TEXT_BYTES.has(`${field.parent.typeName}.${field.name}`));
    if (text) {
      try {
        utf8.decode(this.buf.subarray(this.pos, stop));
      } catch {
        throw new WireError(`${where}: invalid UTF-8`);
      }
    }
    this.pos = stop;
  }
}

/** Throws WireError naming the first malformed field of `bytes` as a `desc` message. */
export function checkWire(bytes: Uint8Array, desc: DescMessage): void {
  const w = new Walker(bytes);
  try {
    w.message(desc, bytes.length, '', 0);
  } catch (e) {
    if (e instanceof WireError) e.message += ` (at byte ${Math.min(w.pos, bytes.length)})`;
    throw e;
  }
}
