// One recurrent step of an LSTM/GRU layer direction (the cell), shared by batched encoding and
// incremental stepping (rnn_encoder.cc).
#pragma once
#include <cstddef>
#include <vector>

#include "gemm.h"
#include "kernels.h"
#include "rnn_model.h"
#include "thread_team.h"

namespace recscore {

// One member's share of a parallel region. Units [u0, u1) of each layer are its own in
// unit-parallel work; `sync` is a barrier of all members (a no-op alone).
struct Par {
  size_t t = 0, nt = 1;
  ThreadTeam* team = nullptr;
  void sync() const {
    if (nt > 1) team->barrier();
  }
  size_t lo(size_t n) const { return n * t / nt; }
  size_t hi(size_t n) const { return n * (t + 1) / nt; }
};

// Per-member scratch.
struct Scratch {
  std::vector<float> gates, tmp;
};

// [sync; every member of the region calls it with its own Par] See rnn_cell.cc.
void layer_step(const Kernels& k, const RnnLayer& L, const RnnDirection& d, const float* const* xs,
                size_t a, const float* h, float* h_next, float* c, float* rec, float* shared,
                const Par& p, Scratch& s, PackCache* packs);

}  // namespace recscore
