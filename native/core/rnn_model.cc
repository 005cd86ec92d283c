#include "rnn_model.h"

#include <string>

#include "errors.h"
#include "gemm.h"

namespace recscore {

namespace {
[[noreturn]] void bad(const std::string& what) { throw InvalidArgument("encoder model: " + what); }
}  // namespace

void EncoderModel::validate() const {
  if (vocab == 0 || emb_dim == 0) bad("empty embedding");
  const bool folded = !layers.empty() && !layers[0].dirs.empty() && !layers[0].dirs[0].table.empty();
  if (!folded && embedding.size() != vocab * emb_dim) bad("embedding size mismatch");
  if (layers.empty()) bad("no recurrent layer");
  size_t in = emb_dim;
  for (size_t l = 0; l < layers.size(); ++l) {
    const RnnLayer& L = layers[l];
    const std::string at = "layer " + std::to_string(l) + ": ";
    if (L.input != in) bad(at + "input size " + std::to_string(L.input) + ", expected " + std::to_string(in));
    if (L.hidden == 0) bad(at + "hidden size 0");
    if (L.dirs.size() != 1 && L.dirs.size() != 2) bad(at + "1 or 2 directions");
    if (L.reverse && L.dirs.size() != 1) bad(at + "a reverse layer has one direction");
    const size_t gh = L.gates() * L.hidden;
    for (const RnnDirection& d : L.dirs) {
      if (d.table.empty() ? d.w.size() != gh * L.input : d.table.size() != vocab * gh) bad(at + "W size");
      if (d.r.size() != gh * L.hidden) bad(at + "R size");
      if (d.bias_x.size() != gh) bad(at + "bias size");
      if (!d.peep.empty() && (L.kind != CellKind::kLstm || d.peep.size() != 3 * L.hidden)) bad(at + "peephole size");
      if (L.kind == CellKind::kGru && L.linear_before_reset != (d.rbh.size() == L.hidden)) bad(at + "GRU Rbh size");
      if (l > 0 && !d.table.empty()) bad(at + "only layer 0 can be folded");
    }
    in = L.width();
  }
  if (output.empty()) bad("no output segment");
  for (const OutputSegment& s : output) {
    if (s.layer >= layers.size() || s.dir >= layers[s.layer].dirs.size()) bad("output segment out of range");
    if (s.what == OutputSegment::kCFinal && layers[s.layer].kind != CellKind::kLstm) bad("cell state of a GRU");
  }
  size_t w = segment_width();
  for (const HeadOp& h : head) {
    if (h.kind == HeadOp::kDense) {
      if (h.in != w || h.w.size() != h.in * h.out || h.b.size() != h.out || h.out == 0) bad("dense layer size");
      w = h.out;
    }
  }
}

size_t EncoderModel::segment_width() const {
  size_t w = 0;
  for (const OutputSegment& s : output) w += layers[s.layer].hidden;
  return w;
}

size_t EncoderModel::out_dim() const {
  size_t w = segment_width();
  for (const HeadOp& h : head) {
    if (h.kind == HeadOp::kDense) w = h.out;
  }
  return w;
}

bool EncoderModel::unidirectional() const {
  for (const RnnLayer& L : layers) {
    if (L.dirs.size() != 1 || L.reverse) return false;
  }
  return true;
}

size_t EncoderModel::state_size() const {
  size_t s = 0;
  for (const RnnLayer& L : layers) s += L.hidden * (L.kind == CellKind::kLstm ? 2 : 1);
  return s;
}

bool EncoderModel::fold_first_layer(size_t max_bytes) {
  RnnLayer& L = layers[0];
  const size_t gh = L.gates() * L.hidden;
  if (vocab * gh * L.dirs.size() * sizeof(float) > max_bytes) return false;
  const Kernels& k = kernels_for(best_isa());
  for (RnnDirection& d : L.dirs) {
    d.table.assign(vocab * gh, 0.f);
    // The input-part chains only: the bias is added after the recurrent part (docs/arithmetic.md).
    gemm_abt(k, embedding.data(), vocab, emb_dim, d.w.data(), gh, nullptr, d.table.data(), gh);
  }
  std::vector<float>().swap(embedding);
  return true;
}

}  // namespace recscore
