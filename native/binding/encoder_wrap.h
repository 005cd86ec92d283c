// Encoder as a JS class over recscore::EncoderModel: built from a lowered plan (plain objects and
// typed arrays, copied in), then encode/step synchronously or on the libuv pool.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/rnn_model.h"
#include "../core/thread_team.h"

namespace recscore_binding {

class EncoderWrap : public Napi::ObjectWrap<EncoderWrap> {
 public:
  // What async work shares with the wrapper: both live until the last user lets go.
  struct Shared {
    std::shared_ptr<const recscore::EncoderModel> model;
    std::shared_ptr<recscore::ThreadTeam> team;  // the environment's; null for one thread
    size_t threads = 1;                          // at most this many members per call
  };

  static Napi::Function Define(Napi::Env env);
  explicit EncoderWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Encode(const Napi::CallbackInfo& info);       // [sync]
  Napi::Value EncodeAsync(const Napi::CallbackInfo& info);  // [async]
  Napi::Value Step(const Napi::CallbackInfo& info);         // [sync]
  Napi::Value StepAsync(const Napi::CallbackInfo& info);    // [async]
  Napi::Value Output(const Napi::CallbackInfo& info);       // [sync]
  Napi::Value Info(const Napi::CallbackInfo& info);

  Shared shared_;
};

}  // namespace recscore_binding
