// native/core tests: gemm and activations against float64, and the recurrent encoder (LSTM,
// GRU) against a float64 reference of the ONNX equations. Run by core_tests.cc's main.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "../errors.h"
#include "../gemm.h"
#include "../kernels.h"
#include "../rnn_encoder.h"
#include "../rnn_model.h"
#include "../thread_team.h"
#include "core_tests_common.h"

using namespace recscore;
using namespace core_tests;

namespace {

// ---- recurrent encoder: a float64 reference of the ONNX LSTM/GRU equations ----

double sigm(double x) { return 1.0 / (1.0 + std::exp(-x)); }

std::vector<float> rand_vec(size_t n, std::mt19937& g, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = u(g);
  return v;
}

EncoderModel random_model(CellKind kind, size_t layers, size_t dirs, bool reverse, bool peep, float clip,
                          bool input_forget, bool lbr, uint32_t seed) {
  std::mt19937 g(seed);
  EncoderModel m;
  m.vocab = 23;
  m.emb_dim = 5;
  m.embedding = rand_vec(m.vocab * m.emb_dim, g, 1.f);
  size_t in = m.emb_dim;
  for (size_t l = 0; l < layers; ++l) {
    RnnLayer L;
    L.kind = kind;
    L.input = in;
    L.hidden = 6 + l;
    L.clip = clip;
    L.input_forget = input_forget;
    L.linear_before_reset = lbr;
    L.reverse = reverse;
    const size_t gh = L.gates() * L.hidden;
    for (size_t d = 0; d < dirs; ++d) {
      RnnDirection rd;
      rd.w = rand_vec(gh * in, g, 0.6f);
      rd.r = rand_vec(gh * L.hidden, g, 0.6f);
      rd.bias_x = rand_vec(gh, g, 0.3f);
      if (kind == CellKind::kGru && lbr) rd.rbh = rand_vec(L.hidden, g, 0.3f);
      if (peep) rd.peep = rand_vec(3 * L.hidden, g, 0.5f);
      L.dirs.push_back(rd);
    }
    in = L.width();
    m.layers.push_back(L);
  }
  const RnnLayer& last = m.layers.back();
  for (size_t d = 0; d < dirs; ++d) m.output.push_back({layers - 1, d, OutputSegment::kYLast});
  m.output.push_back({0, 0, OutputSegment::kHFinal});
  if (kind == CellKind::kLstm) m.output.push_back({0, 0, OutputSegment::kCFinal});
  size_t w = m.segment_width();
  HeadOp dense;
  dense.kind = HeadOp::kDense;
  dense.in = w;
  dense.out = 4;
  dense.w = rand_vec(4 * w, g, 0.5f);
  dense.b = rand_vec(4, g, 0.2f);
  m.head.push_back(dense);
  HeadOp act;
  act.kind = HeadOp::kTanh;
  m.head.push_back(act);
  (void)last;
  return m;
}

// One history through the model in float64, straight from the equations.
std::vector<double> reference_encode(const EncoderModel& m, const std::vector<int32_t>& ids) {
  const size_t T = ids.size();
  std::vector<std::vector<double>> x(T);
  for (size_t t = 0; t < T; ++t) x[t].assign(m.embedding.begin() + ids[t] * static_cast<long>(m.emb_dim),
                                             m.embedding.begin() + (ids[t] + 1) * static_cast<long>(m.emb_dim));
  std::vector<std::vector<std::vector<double>>> hfin(m.layers.size()), cfin(m.layers.size()), ylast(m.layers.size());
  for (size_t l = 0; l < m.layers.size(); ++l) {
    const RnnLayer& L = m.layers[l];
    const size_t H = L.hidden, in = L.input;
    std::vector<std::vector<double>> y(T, std::vector<double>(L.width(), 0.0));
    for (size_t d = 0; d < L.dirs.size(); ++d) {
      const RnnDirection& D = L.dirs[d];
      std::vector<double> h(H, 0.0), c(H, 0.0);
      auto clipv = [&](double v) { return L.clip > 0 ? std::min<double>(L.clip, std::max<double>(-L.clip, v)) : v; };
      auto proj = [&](size_t gate, size_t q, const std::vector<double>& xv, const std::vector<double>& hv) {
        double s = D.bias_x[gate * H + q];
        for (size_t p = 0; p < in; ++p) s += static_cast<double>(D.w[(gate * H + q) * in + p]) * xv[p];
        double r = 0;
        for (size_t p = 0; p < H; ++p) r += static_cast<double>(D.r[(gate * H + q) * H + p]) * hv[p];
        return std::make_pair(s, r);
      };
      for (size_t s = 0; s < T; ++s) {
        const size_t t = L.backwards(d) ? T - 1 - s : s;
        std::vector<double> hn(H), cn(H);
        if (L.kind == CellKind::kLstm) {
          for (size_t q = 0; q < H; ++q) {
            auto pi = proj(0, q, x[t], h), po = proj(1, q, x[t], h), pf = proj(2, q, x[t], h), pc = proj(3, q, x[t], h);
            double Pi = D.peep.empty() ? 0 : D.peep[q], Po = D.peep.empty() ? 0 : D.peep[H + q], Pf = D.peep.empty() ? 0 : D.peep[2 * H + q];
            double i = sigm(clipv(pi.first + pi.second + Pi * c[q]));
            double f = L.input_forget ? 1 - i : sigm(clipv(pf.first + pf.second + Pf * c[q]));
            double gg = std::tanh(clipv(pc.first + pc.second));
            cn[q] = f * c[q] + i * gg;
            double o = sigm(clipv(po.first + po.second + Po * cn[q]));
            hn[q] = o * std::tanh(cn[q]);
          }
        } else {
          std::vector<double> z(H), r(H);
          for (size_t q = 0; q < H; ++q) {
            auto pz = proj(0, q, x[t], h), pr = proj(1, q, x[t], h);
            z[q] = sigm(clipv(pz.first + pz.second));
            r[q] = sigm(clipv(pr.first + pr.second));
          }
          std::vector<double> rh(H);
          for (size_t q = 0; q < H; ++q) rh[q] = r[q] * h[q];
          for (size_t q = 0; q < H; ++q) {
            double nn;
            if (L.linear_before_reset) {
              auto ph = proj(2, q, x[t], h);
              nn = std::tanh(clipv(ph.first + r[q] * (ph.second + D.rbh[q])));
            } else {
              auto ph = proj(2, q, x[t], rh);
              nn = std::tanh(clipv(ph.first + ph.second));
            }
            hn[q] = (1 - z[q]) * nn + z[q] * h[q];
          }
        }
        h = hn;
        c = cn;
        for (size_t q = 0; q < H; ++q) y[t][d * H + q] = h[q];
        if (s == 0) ylast[l].resize(L.dirs.size());
        if (s == 0 && L.backwards(d)) ylast[l][d] = h;
      }
      hfin[l].push_back(h);
      cfin[l].push_back(c);
      if (T == 0) ylast[l].resize(L.dirs.size());
      if (!L.backwards(d)) ylast[l][d] = h;
      if (T == 0) ylast[l][d] = std::vector<double>(H, 0.0);
    }
    x = y;
  }
  std::vector<double> feat;
  for (const OutputSegment& sg : m.output) {
    const auto& v = sg.what == OutputSegment::kCFinal ? cfin[sg.layer][sg.dir]
                    : sg.what == OutputSegment::kHFinal ? hfin[sg.layer][sg.dir] : ylast[sg.layer][sg.dir];
    feat.insert(feat.end(), v.begin(), v.end());
  }
  for (const HeadOp& op : m.head) {
    if (op.kind == HeadOp::kDense) {
      std::vector<double> o(op.out);
      for (size_t j = 0; j < op.out; ++j) {
        double s = op.b[j];
        for (size_t p = 0; p < op.in; ++p) s += static_cast<double>(op.w[j * op.in + p]) * feat[p];
        o[j] = s;
      }
      feat = o;
    } else if (op.kind == HeadOp::kTanh) {
      for (auto& v : feat) v = std::tanh(v);
    }
  }
  return feat;
}

// ref: the same model unfolded (the float64 reference reads the embedding).
void check_model(EncoderModel m, uint32_t seed, const EncoderModel* ref = nullptr) {
  m.validate();
  if (!ref) ref = &m;
  std::mt19937 g(seed);
  std::vector<std::vector<int32_t>> hs;
  for (size_t u = 0; u < 70; ++u) {  // more than one chunk of rows
    std::vector<int32_t> h(g() % 9);
    for (auto& id : h) id = static_cast<int32_t>(g() % m.vocab);
    hs.push_back(h);
  }
  std::vector<int32_t> ids, offsets{0};
  for (const auto& h : hs) {
    ids.insert(ids.end(), h.begin(), h.end());
    offsets.push_back(static_cast<int32_t>(ids.size()));
  }
  const size_t od = m.out_dim();
  ThreadTeam team2(1), team3(2);
  for (Isa isa : isas()) {
    for (ThreadTeam* team : {static_cast<ThreadTeam*>(nullptr), &team2, &team3}) {
      std::vector<float> out(hs.size() * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), hs.size(), team, 8, out.data());
      // A few rows take the unit-parallel path: the same numbers.
      std::vector<float> few(2 * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), 2, team, 8, few.data());
      CHECK(std::memcmp(few.data(), out.data(), few.size() * sizeof(float)) == 0);
      for (size_t u = 0; u < hs.size(); ++u) {
        auto expect = reference_encode(*ref, hs[u]);
        for (size_t j = 0; j < od; ++j) CHECK(std::fabs(expect[j] - out[u * od + j]) < 2e-6);
      }
    }
    if (m.unidirectional()) {  // step through every history: the same vectors, bit for bit
      std::vector<float> enc(hs.size() * od);
      rnn_encode(m, isa, ids.data(), offsets.data(), hs.size(), nullptr, 1, enc.data());
      for (size_t u = 0; u < hs.size(); ++u) {
        std::vector<float> state(m.state_size(), 0.f), out(od);
        rnn_output(m, isa, state.data(), 1, out.data());
        for (int32_t id : hs[u]) rnn_step(m, isa, state.data(), &id, 1, u % 2 ? &team2 : nullptr, 2, out.data());
        CHECK(std::memcmp(out.data(), enc.data() + u * od, od * sizeof(float)) == 0);
      }
    }
  }
}

}  // namespace

void core_tests::encoder_tests() {
  run("gemm_abt_matches_float64", [] {
    for (Isa isa : isas()) {
      auto a = random_matrix(7, 19, 1), b = random_matrix(45, 19, 2), bias = random_matrix(45, 1, 3);
      std::vector<float> c(7 * 50, -1.f);
      gemm_abt(kernels_for(isa), a.data(), 7, 19, b.data(), 45, bias.data(), c.data(), 50);
      for (size_t i = 0; i < 7; ++i) {
        for (size_t j = 0; j < 45; ++j) {
          double s = bias[j];
          for (size_t p = 0; p < 19; ++p) s += static_cast<double>(a[i * 19 + p]) * b[j * 19 + p];
          CHECK(std::fabs(s - c[i * 50 + j]) < 1e-5);
        }
        CHECK(c[i * 50 + 49] == -1.f);  // beyond n: untouched
      }
    }
  });

  run("activations_sigmoid_tanh_accuracy", [] {
    for (Isa isa : isas()) {
      std::vector<float> xs;
      for (float x = -100.f; x <= 100.f; x += 0.0137f) xs.push_back(x);
      xs.push_back(0.f);
      xs.push_back(-0.f);
      xs.push_back(1e-30f);
      std::vector<float> s = xs, t = xs;
      kernels_for(isa).sigmoid(s.data(), s.size());
      kernels_for(isa).tanh(t.data(), t.size());
      for (size_t i = 0; i < xs.size(); ++i) {
        CHECK(std::fabs(s[i] - sigm(xs[i])) < 1e-6);
        CHECK(std::fabs(t[i] - std::tanh(static_cast<double>(xs[i]))) < 1e-6);
      }
    }
  });

  run("lstm_encode_matches_float64_reference", [] {
    check_model(random_model(CellKind::kLstm, 2, 1, false, false, 0, false, false, 1), 11);
    check_model(random_model(CellKind::kLstm, 2, 2, false, false, 0, false, false, 2), 12);  // bidirectional
    check_model(random_model(CellKind::kLstm, 1, 1, true, true, 0.9f, false, false, 3), 13);  // reverse, peepholes, clip
    check_model(random_model(CellKind::kLstm, 2, 1, false, true, 0, true, false, 4), 14);     // input_forget
  });

  run("gru_encode_matches_float64_reference", [] {
    check_model(random_model(CellKind::kGru, 2, 1, false, false, 0, false, true, 5), 15);
    check_model(random_model(CellKind::kGru, 2, 1, false, false, 0, false, false, 6), 16);  // linear_before_reset 0
    check_model(random_model(CellKind::kGru, 1, 2, false, false, 0.7f, false, true, 7), 17);
  });

  run("folded_first_layer_matches", [] {
    EncoderModel m = random_model(CellKind::kLstm, 2, 1, false, false, 0, false, false, 8);
    const EncoderModel m_ref = m;
    CHECK(m.fold_first_layer(1 << 20));
    CHECK(m.embedding.empty());
    check_model(m, 18, &m_ref);
    EncoderModel g = random_model(CellKind::kGru, 1, 2, false, false, 0, false, true, 9);
    const EncoderModel g_ref = g;
    CHECK(!g.fold_first_layer(16));  // too small a budget: stays unfolded
    CHECK(g.fold_first_layer(1 << 20));
    check_model(g, 19, &g_ref);
  });

  run("encoder_bad_input", [] {
    EncoderModel m = random_model(CellKind::kLstm, 1, 1, false, false, 0, false, false, 10);
    std::vector<int32_t> ids{1, 23}, offsets{0, 1, 2};
    std::vector<float> out(2 * m.out_dim()), state(m.state_size());
    ThreadTeam team(1);
    CHECK(throws<OutOfRange>([&] { rnn_encode(m, best_isa(), ids.data(), offsets.data(), 2, nullptr, 1, out.data()); }));
    ids[1] = -1;
    CHECK(throws<OutOfRange>([&] { rnn_encode(m, best_isa(), ids.data(), offsets.data(), 2, &team, 2, out.data()); }));
    CHECK(throws<OutOfRange>([&] { rnn_step(m, best_isa(), state.data(), &ids[1], 1, &team, 2, out.data()); }));
    EncoderModel bi = random_model(CellKind::kLstm, 1, 2, false, false, 0, false, false, 11);
    CHECK(throws<InvalidArgument>([&] { rnn_step(bi, best_isa(), state.data(), ids.data(), 1, nullptr, 1, out.data()); }));
    EncoderModel broken = m;
    broken.layers[0].dirs[0].r.pop_back();
    CHECK(throws<InvalidArgument>([&] { broken.validate(); }));
  });
}
