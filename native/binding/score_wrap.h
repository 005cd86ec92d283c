// topK / topKAsync: converts arguments into a baton, runs recscore::score_topk on it.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/thread_team.h"

namespace recscore_binding {

// args: { catalogue: Catalogue (catalogue_wrap.h), users: Float32Array (b x d), k, threads?,
// isa?, exclOffsets?, exclRows?, allow?, filterAll?, filterAny?, filterNone?, useCompressed? }.
// [sync, JS thread] topK(args) -> { rows: Int32Array, scores: Float32Array, candidates?:
// Int32Array (useCompressed) }; blocks the caller. team: the environment's scoring helpers
// (args.threads - 1 of them may join).
Napi::Value TopKSync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team);

// [async] topKAsync(args) -> Promise<same>; runs on the libuv pool, never throws synchronously.
// The call holds the catalogue (object and pinned arrays) until it completes.
Napi::Value TopKAsync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team);

}  // namespace recscore_binding
