// topK / topKAsync: converts arguments into a baton, runs recscore::score_topk on it.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/thread_team.h"

namespace recscore_binding {

// [sync, JS thread] topK(args) -> { rows: Int32Array, scores: Float32Array }; blocks the caller.
// team: the environment's scoring helpers (args.threads - 1 of them may join).
Napi::Value TopKSync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team);

// [async] topKAsync(args) -> Promise<same>; runs on the libuv pool, never throws synchronously.
Napi::Value TopKAsync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team);

}  // namespace recscore_binding
