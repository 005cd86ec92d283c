/**
 * A small seeded PRNG (xorshift128) with the helpers the generators use. A case's generator is
 * seeded from (run seed, family, case number) alone, so every case can be re-run by itself.
 */

/** 32-bit mix (splitmix32 finaliser). */
function mix32(x) {
  x = (x + 0x9e3779b9) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

export class Rng {
  constructor(...seeds) {
    let h = 0x1234567;
    for (const s of seeds) {
      const str = String(s);
      for (let i = 0; i < str.length; i++) h = mix32(h ^ str.charCodeAt(i));
      h = mix32(h ^ 0xabcdef);
    }
    this.x = mix32(h ^ 1) || 1;
    this.y = mix32(h ^ 2) || 2;
    this.z = mix32(h ^ 3) || 3;
    this.w = mix32(h ^ 4) || 4;
  }

  /** A uint32. */
  u32() {
    const t = this.x ^ (this.x << 11);
    this.x = this.y;
    this.y = this.z;
    this.z = this.w;
    this.w = (this.w ^ (this.w >>> 19) ^ (t ^ (t >>> 8))) >>> 0;
    return this.w;
  }

  /** Uniform in [0, 1). */
  float() {
    return this.u32() / 4294967296;
  }

  /** Integer in [lo, hi] (inclusive). */
  int(lo, hi) {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  bool(p = 0.5) {
    return this.float() < p;
  }

  pick(a) {
    return a[Math.floor(this.float() * a.length)];
  }

  /** Picks from [[weight, value], ...]. */
  weighted(pairs) {
    const total = pairs.reduce((s, [w]) => s + w, 0);
    let r = this.float() * total;
    for (const [w, v] of pairs) {
      r -= w;
      if (r < 0) return v;
    }
    return pairs[pairs.length - 1][1];
  }

  /** Standard normal (Box-Muller). */
  normal() {
    const u = 1 - this.float();
    const v = this.float();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  bytes(n) {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }

  shuffle(a) {
    for (let i = a.length - 1; i > 0; i--) {
      const j = Math.floor(this.float() * (i + 1));
      [a[i], a[j]] = [a[j], a[i]];
    }
    return a;
  }
}

export const FAMILIES = { a: 'catalogue files', b: 'ONNX models', c: 'API arguments', d: 'CLI inputs' };

/** The generator of one case. */
export function caseRng(seed, family, index) {
  return new Rng('recscore-fuzz', seed, family, index);
}
