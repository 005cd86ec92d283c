// topK / topKAsync: converts arguments into a baton, runs recscore::score_topk on it.
#pragma once
#include <napi.h>

namespace recscore_binding {

// [sync, JS thread] topK(args) -> { rows: Int32Array, scores: Float32Array }; blocks the caller.
Napi::Value TopKSync(const Napi::CallbackInfo& info);

// [async] topKAsync(args) -> Promise<same>; runs on the libuv pool, never throws synchronously.
Napi::Value TopKAsync(const Napi::CallbackInfo& info);

}  // namespace recscore_binding
