#include "rnn_encoder.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "errors.h"
#include "gemm.h"
#include "kernels.h"
#include "rnn_cell.h"

namespace recscore {
namespace {

constexpr size_t kChunkRows = 64;  // rows encoded together: bounds memory, keeps data in cache

void check_id(int32_t id, size_t vocab, size_t row, size_t pos) {
  if (id < 0 || static_cast<size_t>(id) >= vocab) {
    throw OutOfRange("histories[" + std::to_string(row) + "][" + std::to_string(pos) + "] = " +
                     std::to_string(id) + " is not an item index of the model (0.." +
                     std::to_string(vocab - 1) + ")");
  }
}

// Applies the head to n rows of segment features (n x segment_width) into outs[i].
void apply_head(const EncoderModel& m, const Kernels& k, std::vector<float>& feat, size_t n,
                float* const* outs) {
  size_t w = m.segment_width();
  std::vector<float> next;
  for (const HeadOp& op : m.head) {
    switch (op.kind) {
      case HeadOp::kDense:
        next.assign(n * op.out, 0.f);
        gemm_abt(k, feat.data(), n, w, op.w.data(), op.out, op.b.data(), next.data(), op.out, m.packs.get());
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

size_t max_hidden(const EncoderModel& m) {
  size_t h = 0;
  for (const RnnLayer& L : m.layers) h = std::max(h, L.hidden);
  return h;
}
size_t max_gates(const EncoderModel& m) {
  size_t g = 0;
  for (const RnnLayer& L : m.layers) g = std::max(g, L.gates() * L.hidden);
  return g;
}

// Encodes one chunk of rows; buffers are shared by the members of a unit-parallel region.
class ChunkEncoder {
 public:
  ChunkEncoder(const EncoderModel& m, const Kernels& k, const int32_t* ids, const int32_t* offsets,
               std::vector<size_t> rows, float* out)
      : m_(m), k_(k), rows_(std::move(rows)), out_(out) {
    const size_t n = rows_.size();
    std::stable_sort(rows_.begin(), rows_.end(), [&](size_t a, size_t b) {
      return offsets[a + 1] - offsets[a] > offsets[b + 1] - offsets[b];
    });
    len_.resize(n);
    tok_.assign(n + 1, 0);
    for (size_t i = 0; i < n; ++i) {
      len_[i] = static_cast<size_t>(offsets[rows_[i] + 1] - offsets[rows_[i]]);
      tok_[i + 1] = tok_[i] + len_[i];
    }
    total_ = tok_[n];
    tmax_ = n ? len_[0] : 0;
    ids_.resize(total_);
    for (size_t i = 0; i < n; ++i) {
      std::memcpy(ids_.data() + tok_[i], ids + offsets[rows_[i]], len_[i] * sizeof(int32_t));
    }
    size_t width = m.emb_dim;
    for (const RnnLayer& L : m.layers) width = std::max(width, L.width());
    buf_[0].assign(total_ * width, 0.f);
    buf_[1].assign(total_ * width, 0.f);
    xp_.assign(total_ * max_gates(m), 0.f);
    const size_t H = max_hidden(m);
    h_[0].assign(n * H, 0.f);
    h_[1].assign(n * H, 0.f);
    c_.assign(n * H, 0.f);
    rec_.assign(n * max_gates(m), 0.f);
    shared_.assign(n * H, 0.f);
    fin_.resize(m.layers.size());
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const RnnLayer& L = m.layers[l];
      fin_[l].resize(L.dirs.size());
      for (auto& f : fin_[l]) {
        f.h.assign(n * L.hidden, 0.f);
        f.c.assign(L.kind == CellKind::kLstm ? n * L.hidden : 0, 0.f);
        f.ylast.assign(n * L.hidden, 0.f);
      }
    }
    if (!m.layers[0].dirs[0].table.empty()) return;
    for (size_t t = 0; t < total_; ++t) {  // unfolded layer 0 reads gathered embeddings
      std::memcpy(buf_[0].data() + t * m.emb_dim, m.embedding.data() + static_cast<size_t>(ids_[t]) * m.emb_dim,
                  m.emb_dim * sizeof(float));
    }
  }

  // Every member of the region calls run() with its own Par; member 0 writes the outputs.
  void run(const Par& p) {
    // Everything this member allocates, allocated before the first barrier.
    const size_t n = rows_.size();
    Scratch s;
    s.gates.reserve(4 * max_hidden(m_));
    s.tmp.reserve(n * 2 * max_hidden(m_));
    std::vector<const float*> xs(n);
    for (size_t l = 0; l < m_.layers.size(); ++l) {
      const RnnLayer& L = m_.layers[l];
      // Layer l reads buf_[l % 2] (the embeddings or the layer below) and writes the other.
      const float* x_in = buf_[l % 2].data();
      float* y = buf_[(l + 1) % 2].data();
      const size_t H = L.hidden, gh = L.gates() * H, width = L.width();
      const size_t u0 = p.lo(H), u1 = p.hi(H);
      for (size_t di = 0; di < L.dirs.size(); ++di) {
        const RnnDirection& d = L.dirs[di];
        const bool table = !d.table.empty();
        const bool back = L.backwards(di);
        if (!table) {
          // Input projection of every event at once. Few events: split by units, so each member
          // reads only its share of W (it stays in its cache); many: split by events.
          if (p.nt > 1 && total_ < 64 * p.nt) {
            for (size_t g = 0; g < L.gates(); ++g) {
              gemm_abt(k_, x_in, total_, L.input, d.w.data() + (g * H + u0) * L.input, u1 - u0,
                       nullptr, xp_.data() + g * H + u0, gh, m_.packs.get());
            }
          } else {
            const size_t r0 = p.lo(total_), r1 = p.hi(total_);
            gemm_abt(k_, x_in + r0 * L.input, r1 - r0, L.input, d.w.data(), gh, nullptr, xp_.data() + r0 * gh, gh,
                     m_.packs.get());
          }
        }
        for (size_t i = 0; i < n; ++i) {
          std::fill(h_[0].data() + i * H + u0, h_[0].data() + i * H + u1, 0.f);
          std::fill(c_.data() + i * H + u0, c_.data() + i * H + u1, 0.f);
        }
        p.sync();
        Fin& f = fin_[l][di];
        int cur = 0;
        for (size_t st = 0; st < tmax_; ++st) {
          size_t a = 0;
          while (a < n && len_[a] > st) ++a;
          for (size_t i = 0; i < a; ++i) {
            const size_t pos = back ? len_[i] - 1 - st : st;
            const size_t t = tok_[i] + pos;
            xs[i] = table ? d.table.data() + static_cast<size_t>(ids_[t]) * gh : xp_.data() + t * gh;
          }
          layer_step(k_, L, d, xs.data(), a, h_[cur].data(), h_[1 - cur].data(), c_.data(), rec_.data(),
                     shared_.data(), p, s, m_.packs.get());
          const float* hn = h_[1 - cur].data();
          for (size_t i = 0; i < a; ++i) {
            const size_t pos = back ? len_[i] - 1 - st : st;
            std::memcpy(y + (tok_[i] + pos) * width + di * H + u0, hn + i * H + u0, (u1 - u0) * sizeof(float));
            // A backward scan starts at the last position: its first state is y[:, -1] there.
            if (back && st == 0) std::memcpy(f.ylast.data() + i * H + u0, hn + i * H + u0, (u1 - u0) * sizeof(float));
            if (len_[i] == st + 1) {  // the row's last event: keep its final state
              std::memcpy(f.h.data() + i * H + u0, hn + i * H + u0, (u1 - u0) * sizeof(float));
              if (!f.c.empty()) std::memcpy(f.c.data() + i * H + u0, c_.data() + i * H + u0, (u1 - u0) * sizeof(float));
            }
          }
          p.sync();  // all of h_next is written before anyone reads it as h
          cur = 1 - cur;
        }
      }
    }
    if (p.t != 0) return;
    const size_t sw = m_.segment_width();
    std::vector<float> feat(n * sw, 0.f);
    for (size_t i = 0; i < n; ++i) {
      size_t off = 0;
      for (const OutputSegment& sg : m_.output) {
        const RnnLayer& L = m_.layers[sg.layer];
        const Fin& f = fin_[sg.layer][sg.dir];
        const float* src = sg.what == OutputSegment::kCFinal ? f.c.data()
                           : (sg.what == OutputSegment::kYLast && L.backwards(sg.dir)) ? f.ylast.data()
                                                                                        : f.h.data();
        std::memcpy(feat.data() + i * sw + off, src + i * L.hidden, L.hidden * sizeof(float));
        off += L.hidden;
      }
    }
    std::vector<float*> outs(n);
    const size_t od = m_.out_dim();
    for (size_t i = 0; i < n; ++i) outs[i] = out_ + rows_[i] * od;
    apply_head(m_, k_, feat, n, outs.data());
  }

 private:
  struct Fin {
    std::vector<float> h, c, ylast;
  };
  const EncoderModel& m_;
  const Kernels& k_;
  std::vector<size_t> rows_;
  float* out_;
  std::vector<size_t> len_, tok_;
  size_t total_ = 0, tmax_ = 0;
  std::vector<int32_t> ids_;
  std::vector<float> buf_[2], xp_, h_[2], c_, rec_, shared_;
  std::vector<std::vector<Fin>> fin_;
};

// Helpers that are not awake within this long sit out a unit-parallel region (their wake-up
// after idle time can take milliseconds on a virtual machine; the region is a few hundred µs).
constexpr double kJoinWaitUs = 20;

// Below this much work (multiply-adds, ~0.5 ms on one core) a unit-parallel region whose helpers
// sleep runs on the caller alone: waking a helper and a barrier per step would cost more than it
// saves (one step of a few users is ~10-20 us). With spinning helpers (opt-in) the team joins.
constexpr double kTeamFmas = 8e6;

// Whether `events` steps of every layer (the recurrent and input parts) are worth the team.
bool team_pays(const EncoderModel& m, size_t events) {
  if (ThreadTeam::spin_us() > 0) return true;
  double per = 0;
  for (const RnnLayer& L : m.layers) per += static_cast<double>(L.dirs.size() * L.gates() * L.hidden * (L.hidden + L.input));
  return per * static_cast<double>(events) >= kTeamFmas;
}

}  // namespace

void rnn_encode(const EncoderModel& m, Isa isa, const int32_t* ids, const int32_t* offsets, size_t b,
                ThreadTeam* team, size_t max_threads, float* out) {
  if (b == 0) return;
  const Kernels& k = kernels_for(isa);
  for (size_t u = 0; u < b; ++u) {
    if (offsets[u + 1] < offsets[u]) throw InvalidArgument("offsets must be non-decreasing");
    for (int32_t p = offsets[u]; p < offsets[u + 1]; ++p) {
      check_id(ids[p], m.vocab, u, static_cast<size_t>(p - offsets[u]));
    }
  }
  const size_t nt = team ? std::max<size_t>(1, std::min(max_threads, team->size())) : 1;
  if (b < 4 * nt) {
    // Few rows: every member works on every step, each on its share of the hidden units.
    std::vector<size_t> rows(b);
    for (size_t u = 0; u < b; ++u) rows[u] = u;
    ChunkEncoder chunk(m, k, ids, offsets, std::move(rows), out);
    if (nt > 1 && team_pays(m, static_cast<size_t>(offsets[b]))) {
      team->run_fixed([&](size_t t, size_t n) { chunk.run(Par{t, n, team}); }, nt, kJoinWaitUs);
    } else {
      chunk.run(Par{});
    }
    return;
  }
  // Many rows: members take chunks of rows from a queue; a few chunks per member, so that a
  // helper that joins late still finds work.
  const size_t chunk_rows = std::max<size_t>(8, std::min(kChunkRows, (b + 2 * nt - 1) / (2 * nt)));
  const size_t chunks = (b + chunk_rows - 1) / chunk_rows;
  parallel_blocks(team, nt, chunks, [&](size_t, size_t c) {
    std::vector<size_t> rows;
    for (size_t u = c * chunk_rows; u < std::min(b, (c + 1) * chunk_rows); ++u) rows.push_back(u);
    ChunkEncoder(m, k, ids, offsets, std::move(rows), out).run(Par{});
  });
}

void rnn_step(const EncoderModel& m, Isa isa, float* state, const int32_t* ids, size_t b,
              ThreadTeam* team, size_t max_threads, float* out) {
  if (!m.unidirectional()) {
    throw InvalidArgument("step needs a unidirectional model: a reverse direction must re-read the whole history");
  }
  if (b == 0) return;
  const Kernels& k = kernels_for(isa);
  for (size_t u = 0; u < b; ++u) check_id(ids[u], m.vocab, u, 0);
  const size_t ss = m.state_size();
  const size_t H = max_hidden(m), G = max_gates(m);
  // Shared buffers: per layer the states (two h buffers), the input projection, scratch.
  std::vector<float> h[2] = {std::vector<float>(b * H), std::vector<float>(b * H)};
  std::vector<float> c(b * H), xp(b * G), rec(b * G), shared(b * H), below(b * H), gathered;
  if (m.layers[0].dirs[0].table.empty()) {
    gathered.resize(b * m.emb_dim);
    for (size_t u = 0; u < b; ++u) {
      std::memcpy(gathered.data() + u * m.emb_dim, m.embedding.data() + static_cast<size_t>(ids[u]) * m.emb_dim,
                  m.emb_dim * sizeof(float));
    }
  }
  const size_t nt = team ? std::max<size_t>(1, std::min(max_threads, team->size())) : 1;
  const std::function<void(size_t, size_t)> body = [&](size_t t, size_t n) {
    const Par p{t, n, team};
    Scratch s;
    std::vector<const float*> xs(b);
    size_t off = 0;
    for (size_t l = 0; l < m.layers.size(); ++l) {
      const RnnLayer& L = m.layers[l];
      const RnnDirection& d = L.dirs[0];
      const size_t Hl = L.hidden, gh = L.gates() * Hl, u0 = p.lo(Hl), u1 = p.hi(Hl);
      const bool lstm = L.kind == CellKind::kLstm;
      for (size_t u = 0; u < b; ++u) {  // own units of the stored state
        std::memcpy(h[0].data() + u * Hl + u0, state + u * ss + off + u0, (u1 - u0) * sizeof(float));
        if (lstm) std::memcpy(c.data() + u * Hl + u0, state + u * ss + off + Hl + u0, (u1 - u0) * sizeof(float));
      }
      if (l == 0 && !d.table.empty()) {
        for (size_t u = 0; u < b; ++u) xs[u] = d.table.data() + static_cast<size_t>(ids[u]) * gh;
      } else {
        // Own units' columns of every gate: no other member reads them.
        const float* x_in = l == 0 ? gathered.data() : below.data();
        for (size_t g = 0; g < L.gates(); ++g) {
          gemm_abt(k, x_in, b, L.input, d.w.data() + (g * Hl + u0) * L.input, u1 - u0, nullptr, xp.data() + g * Hl + u0,
                   gh, m.packs.get());
        }
        for (size_t u = 0; u < b; ++u) xs[u] = xp.data() + u * gh;
      }
      p.sync();  // every member's share of h is loaded
      layer_step(k, L, d, xs.data(), b, h[0].data(), h[1].data(), c.data(), rec.data(), shared.data(), p, s,
                 m.packs.get());
      for (size_t u = 0; u < b; ++u) {
        std::memcpy(state + u * ss + off + u0, h[1].data() + u * Hl + u0, (u1 - u0) * sizeof(float));
        if (lstm) std::memcpy(state + u * ss + off + Hl + u0, c.data() + u * Hl + u0, (u1 - u0) * sizeof(float));
        std::memcpy(below.data() + u * Hl + u0, h[1].data() + u * Hl + u0, (u1 - u0) * sizeof(float));
      }
      p.sync();  // the layer's new h is complete: the next layer's input
      off += lstm ? 2 * Hl : Hl;
    }
  };
  // (The same bits either way: each unit's chains are the same whoever computes them.)
  if (nt > 1 && b < 4 * nt && team_pays(m, b)) {
    team->run_fixed(body, nt, kJoinWaitUs);
  } else {
    body(0, 1);
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
