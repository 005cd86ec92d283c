// Batched encoding and incremental stepping of an EncoderModel.
#pragma once
#include <cstddef>
#include <cstdint>

#include "cpu.h"
#include "rnn_model.h"
#include "thread_team.h"

namespace recscore {

// [sync; runs on the caller and, when given, up to max_threads - 1 of the team's helpers] Encodes b histories: row u is
// ids[offsets[u] .. offsets[u+1]), run alone (its own length; no padding). An empty history
// gives the head applied to the zero state. Writes b x model.out_dim() floats. Large batches are
// split by rows across the team; small ones by hidden units within every step. Either way each
// row's arithmetic is the same, so results do not depend on b, the team or its size.
// Throws OutOfRange naming the row and position of an id outside [0, vocab).
void rnn_encode(const EncoderModel& model, Isa isa, const int32_t* ids, const int32_t* offsets,
                size_t b, ThreadTeam* team, size_t max_threads, float* out);

// [sync; team as above] Advances b users' states (b x model.state_size(), in place) by one
// event each and writes their outputs (b x out_dim). Unidirectional models only
// (InvalidArgument otherwise). Stepping through a history from the zero state gives exactly
// rnn_encode's output for it.
void rnn_step(const EncoderModel& model, Isa isa, float* state, const int32_t* ids, size_t b,
              ThreadTeam* team, size_t max_threads, float* out);

// [sync] Outputs for b states without advancing them (the zero state gives the empty-history
// output).
void rnn_output(const EncoderModel& model, Isa isa, const float* state, size_t b, float* out);

}  // namespace recscore
