#include "rnn_encoder.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "errors.h"
#include "gemm.h"
#include "kernels.h"

namespace recscore {
namespace {

constexpr size_t kChunkRows = 64;  // rows encoded together: bounds memory, keeps data in cache

// Pre-activations x (input projection + biases) and r (recurrent projection) of one row, in
// ONNX gate order; updates c and h in place. scratch holds 4H floats.
void lstm_cell(const Kernels& k, const RnnLayer& L, const RnnDirection& d, const float* x,
               const float* r, float* c, float* h, float* scratch) {
  const size_t H = L.hidden;
  float* gi = scratch;
  float* go = scratch + H;
  float* gf = scratch + 2 * H;
  float* gc = scratch + 3 * H;
  for (size_t q = 0; q < 4 * H; ++q) scratch[q] = x[q] + r[q];
  const float* P = d.peep.empty() ? nullptr : d.peep.data();
  if (P) {
    for (size_t q = 0; q < H; ++q) {
      gi[q] += P[q] * c[q];
      gf[q] += P[2 * H + q] * c[q];
    }
  }
  const float clip = L.clip;
  if (clip > 0) {
    for (size_t q = 0; q < H; ++q) {
      gi[q] = std::min(clip, std::max(-clip, gi[q]));
      gf[q] = std::min(clip, std::max(-clip, gf[q]));
      gc[q] = std::min(clip, std::max(-clip, gc[q]));
    }
  }
  k.sigmoid(gi, H);
  if (L.input_forget) {
    for (size_t q = 0; q < H; ++q) gf[q] = 1.0f - gi[q];
  } else {
    k.sigmoid(gf, H);
  }
  k.tanh(gc, H);
  for (size_t q = 0; q < H; ++q) c[q] = gf[q] * c[q] + gi[q] * gc[q];
  if (P) {
    for (size_t q = 0; q < H; ++q) go[q] += P[H + q] * c[q];
  }
  if (clip > 0) {
    for (size_t q = 0; q < H; ++q) go[q] = std::min(clip, std::max(-clip, go[q]));
  }
  k.sigmoid(go, H);
  std::memcpy(gc, c, H * sizeof(float));
  k.tanh(gc, H);
  for (size_t q = 0; q < H; ++q) h[q] = go[q] * gc[q];
}

float clampf(float v, float clip) { return clip > 0 ? std::min(clip, std::max(-clip, v)) : v; }

// One recurrent step of `a` rows of a layer direction: xs[i] is row i's input pre-activation
// (G*H), h/c hold the rows' states (a x H). Advances them in place.
struct StepScratch {
  std::vector<float> rec, gates, tmp;
};

void layer_step(const Kernels& k, const RnnLayer& L, const RnnDirection& d,
                const float* const* xs, size_t a, float* h, float* c, StepScratch& s) {
  const size_t H = L.hidden;
  const size_t gh = L.gates() * H;
  s.rec.resize(a * gh);
  s.gates.resize(std::max<size_t>(4 * H, 3 * H));
  if (L.kind == CellKind::kLstm) {
    gemm_abt(k, h, a, H, d.r.data(), gh, nullptr, s.rec.data(), gh);
    for (size_t i = 0; i < a; ++i) {
      lstm_cell(k, L, d, xs[i], s.rec.data() + i * gh, c + i * H, h + i * H, s.gates.data());
    }
    return;
  }
  // GRU, gates z, r, h.
  if (L.linear_before_reset) {
    gemm_abt(k, h, a, H, d.r.data(), gh, nullptr, s.rec.data(), gh);
  } else {
    gemm_abt(k, h, a, H, d.r.data(), 2 * H, nullptr, s.rec.data(), gh);  // z, r parts only
  }
  s.tmp.resize(a * H);
  std::vector<float>& zr = s.gates;
  zr.resize(a * 2 * H > zr.size() ? a * 2 * H : zr.size());
  for (size_t i = 0; i < a; ++i) {
    float* g = zr.data() + i * 2 * H;
    const float* x = xs[i];
    const float* r = s.rec.data() + i * gh;
    for (size_t q = 0; q < 2 * H; ++q) g[q] = clampf(x[q] + r[q], L.clip);
    k.sigmoid(g, 2 * H);
  }
  if (!L.linear_before_reset) {
    // (r ⊙ h) · Rhᵀ
    for (size_t i = 0; i < a; ++i) {
      const float* rg = zr.data() + i * 2 * H + H;
      for (size_t q = 0; q < H; ++q) s.tmp[i * H + q] = rg[q] * h[i * H + q];
    }
    gemm_abt(k, s.tmp.data(), a, H, d.r.data() + 2 * H * H, H, nullptr, s.rec.data() + 2 * H, gh);
  }
  for (size_t i = 0; i < a; ++i) {
    const float* z = zr.data() + i * 2 * H;
    const float* rg = z + H;
    const float* x = xs[i] + 2 * H;
    const float* rh = s.rec.data() + i * gh + 2 * H;
    float* n = s.tmp.data() + i * H;
    if (L.linear_before_reset) {
      for (size_t q = 0; q < H; ++q) n[q] = clampf(x[q] + rg[q] * (rh[q] + d.rbh[q]), L.clip);
    } else {
      for (size_t q = 0; q < H; ++q) n[q] = clampf(x[q] + rh[q], L.clip);
    }
    k.tanh(n, H);
    float* hi = h + i * H;
    for (size_t q = 0; q < H; ++q) hi[q] = (1.0f - z[q]) * n[q] + z[q] * hi[q];
  }
}

void check_id(int32_t id, size_t vocab, size_t row, size_t pos) {
  if (id < 0 || static_cast<size_t>(id) >= vocab) {
    throw OutOfRange("histories[" + std::to_string(row) + "][" + std::to_string(pos) + "] = " +
                     std::to_string(id) + " is not an item index of the model (0.." +
                     std::to_string(vocab - 1) + ")");
  }
}

// Applies the head to n rows of segment features (n x segment_width) into out (row stride ldo).
void apply_head(const EncoderModel& m, const Kernels& k, std::vector<float>& feat, size_t n,
                float* const* outs) {
  size_t w = m.segment_width();
  std::vector<float> next;
  for (const HeadOp& op : m.head) {
    switch (op.kind) {
      case HeadOp::kDense:
        next.assign(n * op.out, 0.f);
        gemm_abt(k, feat.data(), n, w, op.w.data(), op.out, op.b.data(), next.data(), op.out);
        feat.swap(next);
        w = op.out;
        break;
      case HeadOp::kTanh:
        k.tanh(feat.data(), n * w);
        break;
      case HeadOp::kSigmoid:
        k.sigmoid(feat.data(), n * w);
        break;
      case HeadOp::kRelu:
        for (size_t i = 0; i < n * w; ++i) feat[i] = feat[i] > 0 ? feat[i] : 0.f;
        break;
    }
  }
  for (size_t i = 0; i < n; ++i) std::memcpy(outs[i], feat.data() + i * w, w * sizeof(float));
}

// Encodes one chunk of rows (indices into the batch).
void encode_chunk(const EncoderModel& m, const Kernels& k, const int32_t* ids, const int32_t* offsets,
                  std::vector<size_t> rows, float* out) {
  const size_t n = rows.size();
  std::stable_sort(rows.begin(), rows.end(), [&](size_t a, size_t b) {
    return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
  });
  std::vector<size_t> len(n), tok(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    len[i] = static_cast<size_t>(offsets[rows[i] + 1] - offsets[rows[i]]);
    tok[i + 1] = tok[i] + len[i];
  }
  const size_t total = tok[n];
  const size_t tmax = n ? len[0] : 0;
  std::vector<int32_t> chunk_ids(total);
  for (size_t i = 0; i < n; ++i) {
    std::memcpy(chunk_ids.data() + tok[i], ids + offsets[rows[i]], len[i] * sizeof(int32_t));
  }

  // Per layer and direction: final h (and c) of each row, and the full output sequence.
  std::vector<std::vector<std::vector<float>>> hfin(m.layers.size()), cfin(m.layers.size());
  // y[:, -1] of backward directions: their state after their first step.
  std::vector<std::vector<std::vector<float>>> ylast_rev(m.layers.size());
  std::vector<float> y_prev, y;
  std::vector<float> xp;
  std::vector<const float*> xs(n);
  StepScratch scratch;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const RnnLayer& L = m.layers[l];
    const size_t H = L.hidden, gh = L.gates() * H, width = L.width();
    y.assign(total * width, 0.f);
    hfin[l].resize(L.dirs.size());
    cfin[l].resize(L.dirs.size());
    ylast_rev[l].resize(L.dirs.size());
    std::vector<float> gathered;
    const float* x_in = y_prev.data();
    size_t in_dim = L.input;
    if (l == 0 && L.dirs[0].table.empty()) {
      gathered.resize(total * m.emb_dim);
      for (size_t t = 0; t < total; ++t) {
        std::memcpy(gathered.data() + t * m.emb_dim,
                    m.embedding.data() + static_cast<size_t>(chunk_ids[t]) * m.emb_dim,
                    m.emb_dim * sizeof(float));
      }
      x_in = gathered.data();
    }
    for (size_t di = 0; di < L.dirs.size(); ++di) {
      const RnnDirection& d = L.dirs[di];
      const bool table = !d.table.empty();
      const bool back = L.backwards(di);
      if (!table) {
        xp.assign(total * gh, 0.f);
        gemm_abt(k, x_in, total, in_dim, d.w.data(), gh, d.bias_x.data(), xp.data(), gh);
      }
      std::vector<float> h(n * H, 0.f), c(L.kind == CellKind::kLstm ? n * H : 0, 0.f);
      for (size_t s = 0; s < tmax; ++s) {
        size_t a = 0;
        while (a < n && len[a] > s) ++a;
        for (size_t i = 0; i < a; ++i) {
          const size_t pos = back ? len[i] - 1 - s : s;
          const size_t t = tok[i] + pos;
          xs[i] = table ? d.table.data() + static_cast<size_t>(chunk_ids[t]) * gh : xp.data() + t * gh;
        }
        layer_step(k, L, d, xs.data(), a, h.data(), c.data(), scratch);
        // A reverse scan starts at the last position: its first state is y[:, -1] there.
        if (back && s == 0) ylast_rev[l][di].assign(h.begin(), h.end());
        for (size_t i = 0; i < a; ++i) {
          const size_t pos = back ? len[i] - 1 - s : s;
          std::memcpy(y.data() + (tok[i] + pos) * width + di * H, h.data() + i * H, H * sizeof(float));
        }
      }
      hfin[l][di] = std::move(h);
      cfin[l][di] = std::move(c);
    }
    y_prev.swap(y);  // this layer's output sequence is the next layer's input
  }

  const size_t sw = m.segment_width();
  std::vector<float> feat(n * sw, 0.f);
  for (size_t i = 0; i < n; ++i) {
    size_t off = 0;
    for (const OutputSegment& sg : m.output) {
      const RnnLayer& L = m.layers[sg.layer];
      const size_t H = L.hidden;
      float* dst = feat.data() + i * sw + off;
      if (sg.what == OutputSegment::kCFinal) {
        std::memcpy(dst, cfin[sg.layer][sg.dir].data() + i * H, H * sizeof(float));
      } else if (sg.what == OutputSegment::kHFinal || !L.backwards(sg.dir)) {
        std::memcpy(dst, hfin[sg.layer][sg.dir].data() + i * H, H * sizeof(float));
      } else if (len[i] > 0) {  // y[:, -1] of a backward direction (zeros for an empty history)
        std::memcpy(dst, ylast_rev[sg.layer][sg.dir].data() + i * H, H * sizeof(float));
      }
      off += H;
    }
  }
  std::vector<float*> outs(n);
  const size_t od = m.out_dim();
  for (size_t i = 0; i < n; ++i) outs[i] = out + rows[i] * od;
  apply_head(m, k, feat, n, outs.data());
}

}  // namespace

void rnn_encode(const EncoderModel& m, Isa isa, const int32_t* ids, const int32_t* offsets, size_t b,
                int threads, float* out) {
  if (b == 0) return;
  const Kernels& k = kernels_for(isa);
  for (size_t u = 0; u < b; ++u) {
    if (offsets[u + 1] < offsets[u]) throw InvalidArgument("offsets must be non-decreasing");
  }
  for (size_t u = 0; u < b; ++u) {
    for (int32_t p = offsets[u]; p < offsets[u + 1]; ++p) {
      check_id(ids[p], m.vocab, u, static_cast<size_t>(p - offsets[u]));
    }
  }
  // Rows are independent: split them so every thread gets work, at most kChunkRows at a time.
  const size_t want = static_cast<size_t>(std::max(1, threads));
  const size_t chunk_rows = std::max<size_t>(1, std::min(kChunkRows, (b + want - 1) / want));
  const size_t chunks = (b + chunk_rows - 1) / chunk_rows;
  const size_t nthreads = std::min(want, chunks);
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(nthreads);
  auto work = [&](size_t t) {
    try {
      for (size_t c = next++; c < chunks; c = next++) {
        std::vector<size_t> rows;
        for (size_t u = c * chunk_rows; u < std::min(b, (c + 1) * chunk_rows); ++u) rows.push_back(u);
        encode_chunk(m, k, ids, offsets, std::move(rows), out);
      }
    } catch (...) {
      errors[t] = std::current_exception();
      next = chunks;  // stop the others early
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < nthreads; ++t) pool.emplace_back(work, t);
  work(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void rnn_step(const EncoderModel& m, Isa isa, float* state, const int32_t* ids, size_t b, float* out) {
  if (!m.unidirectional()) {
    throw InvalidArgument("step needs a unidirectional model: a reverse direction must re-read the whole history");
  }
  if (b == 0) return;
  const Kernels& k = kernels_for(isa);
  for (size_t u = 0; u < b; ++u) check_id(ids[u], m.vocab, u, 0);
  const size_t ss = m.state_size();
  StepScratch scratch;
  std::vector<const float*> xs(b);
  std::vector<float> xp, h, c, below, gathered;
  size_t off = 0;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const RnnLayer& L = m.layers[l];
    const RnnDirection& d = L.dirs[0];
    const size_t H = L.hidden, gh = L.gates() * H;
    const bool lstm = L.kind == CellKind::kLstm;
    h.resize(b * H);
    c.resize(lstm ? b * H : 0);
    for (size_t u = 0; u < b; ++u) {
      std::memcpy(h.data() + u * H, state + u * ss + off, H * sizeof(float));
      if (lstm) std::memcpy(c.data() + u * H, state + u * ss + off + H, H * sizeof(float));
    }
    if (l == 0 && !d.table.empty()) {
      for (size_t u = 0; u < b; ++u) xs[u] = d.table.data() + static_cast<size_t>(ids[u]) * gh;
    } else {
      const float* x_in = below.data();
      if (l == 0) {
        gathered.resize(b * m.emb_dim);
        for (size_t u = 0; u < b; ++u) {
          std::memcpy(gathered.data() + u * m.emb_dim, m.embedding.data() + static_cast<size_t>(ids[u]) * m.emb_dim,
                      m.emb_dim * sizeof(float));
        }
        x_in = gathered.data();
      }
      xp.assign(b * gh, 0.f);
      gemm_abt(k, x_in, b, L.input, d.w.data(), gh, d.bias_x.data(), xp.data(), gh);
      for (size_t u = 0; u < b; ++u) xs[u] = xp.data() + u * gh;
    }
    layer_step(k, L, d, xs.data(), b, h.data(), c.data(), scratch);
    for (size_t u = 0; u < b; ++u) {
      std::memcpy(state + u * ss + off, h.data() + u * H, H * sizeof(float));
      if (lstm) std::memcpy(state + u * ss + off + H, c.data() + u * H, H * sizeof(float));
    }
    below.swap(h);
    off += lstm ? 2 * H : H;
  }
  rnn_output(m, isa, state, b, out);
}

void rnn_output(const EncoderModel& m, Isa isa, const float* state, size_t b, float* out) {
  if (!m.unidirectional()) throw InvalidArgument("incremental state needs a unidirectional model");
  if (b == 0) return;
  const Kernels& k = kernels_for(isa);
  const size_t ss = m.state_size(), sw = m.segment_width(), od = m.out_dim();
  std::vector<size_t> layer_off(m.layers.size());
  size_t off = 0;
  for (size_t l = 0; l < m.layers.size(); ++l) {
    layer_off[l] = off;
    off += m.layers[l].hidden * (m.layers[l].kind == CellKind::kLstm ? 2 : 1);
  }
  std::vector<float> feat(b * sw);
  for (size_t u = 0; u < b; ++u) {
    size_t o = 0;
    for (const OutputSegment& sg : m.output) {
      const size_t H = m.layers[sg.layer].hidden;
      const size_t src = layer_off[sg.layer] + (sg.what == OutputSegment::kCFinal ? H : 0);
      std::memcpy(feat.data() + u * sw + o, state + u * ss + src, H * sizeof(float));
      o += H;
    }
  }
  std::vector<float*> outs(b);
  for (size_t u = 0; u < b; ++u) outs[u] = out + u * od;
  apply_head(m, k, feat, b, outs.data());
}

}  // namespace recscore
