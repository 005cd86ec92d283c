#include "rnn_cell.h"

#include <algorithm>
#include <cstring>

namespace recscore {
namespace {

float clampf(float v, float clip) { return clip > 0 ? std::min(clip, std::max(-clip, v)) : v; }

}  // namespace

// One recurrent step of rows [0, a) of a layer direction, for this member's units [u0, u1).
// xs[i]: row i's input-part chains (G*H, ONNX gate order, no bias: the contract's partial
// values); h: current states (a x H, read whole), h_next: written for own units; c: cell states,
// own units updated in place; rec: a x G*H scratch shared by the team (own columns written).
// Each gate's pre-activation continues its input-part chain over the recurrent part, then adds
// the summed biases (docs/arithmetic.md); GRU with linear_before_reset keeps the formula's two
// sums. GRU with linear_before_reset = 0 needs (r ⊙ h) of every unit: `shared` (a x H) carries it
// between two barriers.
void layer_step(const Kernels& k, const RnnLayer& L, const RnnDirection& d, const float* const* xs,
                size_t a, const float* h, float* h_next, float* c, float* rec, float* shared,
                const Par& p, Scratch& s, PackCache* packs) {
  const size_t H = L.hidden, gh = L.gates() * H;
  const size_t u0 = p.lo(H), u1 = p.hi(H), nu = u1 - u0;
  if (nu == 0 || a == 0) {
    if (L.kind == CellKind::kGru && !L.linear_before_reset) p.sync();
    return;
  }
  const size_t G = L.gates();
  const bool gru = L.kind == CellKind::kGru;
  const bool gru_split = gru && !L.linear_before_reset;
  // The own columns of every gate start as the input part; the recurrent chain continues them.
  for (size_t i = 0; i < a; ++i) {
    for (size_t g = 0; g < G; ++g) std::memcpy(rec + i * gh + g * H + u0, xs[i] + g * H + u0, nu * sizeof(float));
  }
  auto continue_gate = [&](size_t g, const float* src) {
    gemm_abt(k, src, a, H, d.r.data() + (g * H + u0) * H, nu, d.bias_x.data() + g * H + u0, rec + g * H + u0, gh, packs,
             rec + g * H + u0, gh);
  };
  for (size_t g = 0; g < (gru ? 2 : G); ++g) continue_gate(g, h);
  if (gru && L.linear_before_reset) {
    // n = tanh((Wn x + Wbn) + r ⊙ (Rn h + Rbn)): the recurrent sum is its own chain.
    s.tmp.resize(a * nu);
    gemm_abt(k, h, a, H, d.r.data() + (2 * H + u0) * H, nu, d.rbh.data() + u0, s.tmp.data(), nu, packs);
  }
  s.gates.resize(4 * nu);
  const float clip = L.clip;
  if (L.kind == CellKind::kLstm) {
    const float* P = d.peep.empty() ? nullptr : d.peep.data();
    float* gi = s.gates.data();
    float* go = gi + nu;
    float* gf = gi + 2 * nu;
    float* gc = gi + 3 * nu;
    for (size_t i = 0; i < a; ++i) {
      const float* r = rec + i * gh;
      float* ci = c + i * H + u0;
      for (size_t g = 0; g < 4; ++g) std::memcpy(gi + g * nu, r + g * H + u0, nu * sizeof(float));
      if (P) {
        for (size_t q = 0; q < nu; ++q) {
          gi[q] += P[u0 + q] * ci[q];
          gf[q] += P[2 * H + u0 + q] * ci[q];
        }
      }
      if (clip > 0) {
        for (size_t q = 0; q < nu; ++q) {
          gi[q] = clampf(gi[q], clip);
          gf[q] = clampf(gf[q], clip);
          gc[q] = clampf(gc[q], clip);
        }
      }
      k.sigmoid(gi, nu);
      if (L.input_forget) {
        for (size_t q = 0; q < nu; ++q) gf[q] = 1.0f - gi[q];
      } else {
        k.sigmoid(gf, nu);
      }
      k.tanh(gc, nu);
      for (size_t q = 0; q < nu; ++q) ci[q] = gf[q] * ci[q] + gi[q] * gc[q];
      if (P) {
        for (size_t q = 0; q < nu; ++q) go[q] += P[H + u0 + q] * ci[q];
      }
      if (clip > 0) {
        for (size_t q = 0; q < nu; ++q) go[q] = clampf(go[q], clip);
      }
      k.sigmoid(go, nu);
      std::memcpy(gc, ci, nu * sizeof(float));
      k.tanh(gc, nu);
      float* hn = h_next + i * H + u0;
      for (size_t q = 0; q < nu; ++q) hn[q] = go[q] * gc[q];
    }
    return;
  }
  // GRU, gates z, r, h: z and r in place in rec.
  for (size_t i = 0; i < a; ++i) {
    float* zi = rec + i * gh + u0;
    float* ri = rec + i * gh + H + u0;
    for (size_t q = 0; q < nu; ++q) {
      zi[q] = clampf(zi[q], clip);
      ri[q] = clampf(ri[q], clip);
    }
    k.sigmoid(zi, nu);
    k.sigmoid(ri, nu);
  }
  if (gru_split) {
    for (size_t i = 0; i < a; ++i) {
      const float* ri = rec + i * gh + H + u0;
      for (size_t q = 0; q < nu; ++q) shared[i * H + u0 + q] = ri[q] * h[i * H + u0 + q];
    }
    p.sync();  // every unit's r ⊙ h is needed below
    continue_gate(2, shared);
  }
  float* n = s.gates.data();
  for (size_t i = 0; i < a; ++i) {
    const float* z = rec + i * gh + u0;
    const float* rg = rec + i * gh + H + u0;
    const float* pre = rec + i * gh + 2 * H + u0;
    if (L.linear_before_reset) {
      const float* rh = s.tmp.data() + i * nu;
      for (size_t q = 0; q < nu; ++q) n[q] = clampf((pre[q] + d.bias_x[2 * H + u0 + q]) + rg[q] * rh[q], clip);
    } else {
      for (size_t q = 0; q < nu; ++q) n[q] = clampf(pre[q], clip);
    }
    k.tanh(n, nu);
    const float* hi = h + i * H + u0;
    float* hn = h_next + i * H + u0;
    for (size_t q = 0; q < nu; ++q) hn[q] = (1.0f - z[q]) * n[q] + z[q] * hi[q];
  }
}

}  // namespace recscore
