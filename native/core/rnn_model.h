// A session encoder lowered from ONNX: item embedding -> LSTM/GRU layers -> a selection of
// final/last-step states -> dense head. Plain data; validate() checks it is consistent.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "gemm.h"

namespace recscore {

enum class CellKind { kLstm, kGru };

// One direction of one layer, weights in ONNX gate order (LSTM i,o,f,c; GRU z,r,h).
struct RnnDirection {
  std::vector<float> w;       // G*H x input
  std::vector<float> r;       // G*H x H
  std::vector<float> bias_x;  // G*H, added after a gate's chain (LSTM: Wb+Rb; GRU: see below)
  std::vector<float> rbh;     // GRU with linear_before_reset: Rb of the h gate (H), else empty
  std::vector<float> peep;    // LSTM peepholes P (3H: i, o, f), or empty
  // Layer 0 only, when folded: vocab x G*H = embedding · wᵀ, the input-part chains (one lookup
  // per event; the bias comes after the recurrent part).
  std::vector<float> table;
};

struct RnnLayer {
  CellKind kind = CellKind::kLstm;
  size_t input = 0;
  size_t hidden = 0;
  std::vector<RnnDirection> dirs;  // 1 (forward, or reverse when `reverse`) or 2 (forward, reverse)
  float clip = 0;                  // > 0: pre-activations clamped to [-clip, clip]
  bool input_forget = false;       // LSTM: f = 1 - i
  bool linear_before_reset = false;  // GRU
  bool reverse = false;  // one direction, scanning from the last event to the first
  size_t gates() const { return kind == CellKind::kLstm ? 4 : 3; }
  size_t width() const { return dirs.size() * hidden; }  // features per step of its output
  bool backwards(size_t dir) const { return dir == 1 || reverse; }
};

// One piece of the vector handed to the head, taken from a layer's direction after the last
// event: its output at the last position (y[:, -1]), its final hidden state or final cell.
struct OutputSegment {
  enum What { kYLast, kHFinal, kCFinal };
  size_t layer = 0;
  size_t dir = 0;
  What what = kHFinal;
};

struct HeadOp {
  enum Kind { kDense, kTanh, kSigmoid, kRelu };
  Kind kind = kDense;
  size_t in = 0, out = 0;  // kDense
  std::vector<float> w;    // out x in
  std::vector<float> b;    // out (zeros when the model has none)
};

struct EncoderModel {
  size_t vocab = 0;
  size_t emb_dim = 0;
  std::vector<float> embedding;  // vocab x emb_dim; emptied when layer 0 is folded
  std::vector<RnnLayer> layers;
  std::vector<OutputSegment> output;
  std::vector<HeadOp> head;
  // Packed panels of the weights, made on first use (gemm.h). A copy of the model starts with an
  // empty cache of its own: entries are keyed by the addresses of this model's weights.
  struct Packs {
    Packs() = default;
    Packs(const Packs&) : cache(std::make_unique<PackCache>()) {}
    Packs& operator=(const Packs&) {
      cache = std::make_unique<PackCache>();
      return *this;
    }
    PackCache* get() const { return cache.get(); }
    std::unique_ptr<PackCache> cache = std::make_unique<PackCache>();
  } packs;

  // [sync] Throws InvalidArgument naming the first inconsistency.
  void validate() const;
  size_t segment_width() const;  // sum of the output segments' widths
  size_t out_dim() const;        // the head's output width
  bool unidirectional() const;
  // Floats of incremental state per user: h (and c for LSTM) of every layer.
  size_t state_size() const;

  // [sync] Replaces the embedding lookup + layer 0 input projection by one table when it takes
  // at most max_bytes; returns whether it did.
  bool fold_first_layer(size_t max_bytes);
};

}  // namespace recscore
