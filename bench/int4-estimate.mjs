// Estimate for issue #13 item 5 (int4): the candidate sets an int4 compact copy would leave, on the
// benchmark's data (N=1M d=64 with bias, k=20), computed in float64 with the float path's bound
// (compressed.h: e_j = R_j + g(2X_j + R_j), f_j = 2g|b_j|; the user not quantized, so the VNNI
// route would leave more). int8 is computed the same way as a check against the measured scan.
//   node bench/int4-estimate.mjs      (about a minute; nothing is written)
import { uniform } from '/work/main/bench/lib.mjs';
const D = 64, N = 1_000_000, K = 20;
const items = uniform(N * D, 31), bias = uniform(N, 32);
const g = (D + 32) * 2 ** -23;
for (const bits of [8, 4]) {
  const qmax = bits === 8 ? 127 : 7;
  const X = new Float64Array(N), R = new Float64Array(N), xh = new Float32Array(N * D);
  for (let j = 0; j < N; j++) {
    let mx = 0; for (let p = 0; p < D; p++) mx = Math.max(mx, Math.abs(items[j * D + p]));
    const s = mx / qmax; let xx = 0, rr = 0;
    for (let p = 0; p < D; p++) { const v = items[j * D + p]; const q = s > 0 ? Math.max(-qmax, Math.min(qmax, Math.round(v / s))) : 0; const h = s * q; xh[j * D + p] = h; xx += v * v; rr += (v - h) ** 2; }
    X[j] = Math.sqrt(xx); R[j] = Math.sqrt(rr);
  }
  const cands = [];
  for (let t = 0; t < 4; t++) {
    const u = uniform(D, 41 + t); let nu = 0; for (let p = 0; p < D; p++) nu += u[p] * u[p]; nu = Math.sqrt(nu);
    const lo = new Float64Array(N), hi = new Float64Array(N);
    for (let j = 0; j < N; j++) { let a = bias[j]; for (let p = 0; p < D; p++) a += u[p] * xh[j * D + p]; const e = nu * (R[j] + g * (2 * X[j] + R[j])) + 2 * g * Math.abs(bias[j]); lo[j] = a - e; hi[j] = a + e; }
    const T = Float64Array.from(lo).sort().reverse()[K - 1];
    let c = 0; for (let j = 0; j < N; j++) if (hi[j] >= T) c++;
    cands.push(c);
  }
  console.log(`int${bits} (float user, per-row scale max/${qmax}): candidates at k=20 for 4 users: ${cands.join(', ')}`);
}
