#include "encoder_wrap.h"

#include <string>
#include <vector>

#include "../core/cpu.h"
#include "../core/rnn_encoder.h"
#include "args.h"
#include "env_team.h"
#include "errors.h"

namespace recscore_binding {
namespace {

using recscore::CellKind;
using recscore::EncoderModel;
using recscore::HeadOp;
using recscore::OutputSegment;
using recscore::RnnDirection;
using recscore::RnnLayer;

std::vector<float> floats(const Napi::Object& o, const char* name, bool optional) {
  auto v = typed_field<float>(o, name, napi_float32_array, optional, nullptr);
  return std::vector<float>(v.data, v.data + v.length);
}

std::string str_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsString()) throw_type_error(o.Env(), std::string(name) + " must be a string");
  return v.As<Napi::String>().Utf8Value();
}

double num_field(const Napi::Object& o, const char* name, double fallback) {
  Napi::Value v = o.Get(name);
  if (v.IsUndefined()) return fallback;
  if (!v.IsNumber()) throw_type_error(o.Env(), std::string(name) + " must be a number");
  return v.As<Napi::Number>().DoubleValue();
}

bool bool_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  return v.IsBoolean() && v.As<Napi::Boolean>().Value();
}

Napi::Array array_field(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  if (!v.IsArray()) throw_type_error(o.Env(), std::string(name) + " must be an array");
  return v.As<Napi::Array>();
}

recscore::Isa isa_of(const Napi::Object& o) { return level_field(o); }

std::shared_ptr<EncoderModel> parse_model(const Napi::Object& o) {
  auto m = std::make_shared<EncoderModel>();
  m->vocab = size_field(o, "vocab", 0, false);
  m->emb_dim = size_field(o, "embDim", 0, false);
  m->embedding = floats(o, "embedding", false);
  Napi::Array layers = array_field(o, "layers");
  for (uint32_t i = 0; i < layers.Length(); ++i) {
    Napi::Object lo = layers.Get(i).As<Napi::Object>();
    RnnLayer L;
    std::string kind = str_field(lo, "kind");
    if (kind != "lstm" && kind != "gru") throw_type_error(o.Env(), "layer kind must be lstm or gru");
    L.kind = kind == "lstm" ? CellKind::kLstm : CellKind::kGru;
    L.input = size_field(lo, "input", 0, false);
    L.hidden = size_field(lo, "hidden", 0, false);
    L.clip = static_cast<float>(num_field(lo, "clip", 0));
    L.input_forget = bool_field(lo, "inputForget");
    L.linear_before_reset = bool_field(lo, "linearBeforeReset");
    L.reverse = bool_field(lo, "reverse");
    Napi::Array dirs = array_field(lo, "dirs");
    for (uint32_t j = 0; j < dirs.Length(); ++j) {
      Napi::Object d = dirs.Get(j).As<Napi::Object>();
      RnnDirection rd;
      rd.w = floats(d, "w", false);
      rd.r = floats(d, "r", false);
      rd.bias_x = floats(d, "biasX", false);
      rd.rbh = floats(d, "rbh", true);
      rd.peep = floats(d, "peep", true);
      L.dirs.push_back(std::move(rd));
    }
    m->layers.push_back(std::move(L));
  }
  Napi::Array out = array_field(o, "output");
  for (uint32_t i = 0; i < out.Length(); ++i) {
    Napi::Object so = out.Get(i).As<Napi::Object>();
    OutputSegment s;
    s.layer = size_field(so, "layer", 0, false);
    s.dir = size_field(so, "dir", 0, false);
    std::string what = str_field(so, "what");
    s.what = what == "y_last" ? OutputSegment::kYLast : what == "c_final" ? OutputSegment::kCFinal : OutputSegment::kHFinal;
    m->output.push_back(s);
  }
  Napi::Array head = array_field(o, "head");
  for (uint32_t i = 0; i < head.Length(); ++i) {
    Napi::Object ho = head.Get(i).As<Napi::Object>();
    HeadOp h;
    std::string kind = str_field(ho, "kind");
    if (kind == "dense") {
      h.kind = HeadOp::kDense;
      h.in = size_field(ho, "in", 0, false);
      h.out = size_field(ho, "out", 0, false);
      h.w = floats(ho, "w", false);
      h.b = floats(ho, "b", false);
    } else if (kind == "tanh") {
      h.kind = HeadOp::kTanh;
    } else if (kind == "sigmoid") {
      h.kind = HeadOp::kSigmoid;
    } else if (kind == "relu") {
      h.kind = HeadOp::kRelu;
    } else {
      throw_type_error(o.Env(), "unknown head op " + kind);
    }
    m->head.push_back(std::move(h));
  }
  // Layers may arrive without weights for a folded layer 0; validate before folding.
  m->validate();
  size_t fold = size_field(o, "foldBytes", 0, true);
  if (fold > 0) m->fold_first_layer(fold);
  return m;
}

// Arguments of encode, read on the JS thread.
struct EncodeBaton {
  std::shared_ptr<const EncoderModel> model;
  std::shared_ptr<recscore::ThreadTeam> team;
  size_t threads = 1;
  std::vector<int32_t> ids, offsets;
  recscore::Isa isa = recscore::Isa::kAvx2;
  std::vector<float> out;
  CapturedError error;
  void execute() {
    try {
      const size_t b = offsets.empty() ? 0 : offsets.size() - 1;
      out.assign(b * model->out_dim(), 0.f);
      recscore::rnn_encode(*model, isa, ids.data(), offsets.data(), b, team.get(), threads, out.data());
    } catch (...) {
      error = capture_current_exception();
    }
  }
};

struct StepBaton {
  std::shared_ptr<const EncoderModel> model;
  std::shared_ptr<recscore::ThreadTeam> team;
  size_t threads = 1;
  std::vector<float> state;  // a copy: written back to the caller's array only on success
  std::vector<int32_t> ids;
  Napi::ObjectReference state_pin;  // the caller's state array, written back on success
  float* state_dst = nullptr;       // sync step only: valid while the call runs
  recscore::Isa isa = recscore::Isa::kAvx2;
  std::vector<float> out;
  CapturedError error;
  void execute() {
    try {
      out.assign(ids.size() * model->out_dim(), 0.f);
      recscore::rnn_step(*model, isa, state.data(), ids.data(), ids.size(), team.get(), threads, out.data());
    } catch (...) {
      error = capture_current_exception();
    }
  }
};

Napi::Float32Array to_js(Napi::Env env, const std::vector<float>& v) {
  auto a = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

std::unique_ptr<EncodeBaton> parse_encode(const Napi::CallbackInfo& info, const EncoderWrap::Shared& sh) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "encode expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto bt = std::make_unique<EncodeBaton>();
  bt->model = sh.model;
  bt->team = sh.team;
  bt->threads = sh.threads;
  auto ids = typed_field<int32_t>(o, "ids", napi_int32_array, false, nullptr);
  auto offs = typed_field<int32_t>(o, "offsets", napi_int32_array, false, nullptr);
  if (offs.length < 1 || offs.data[0] != 0 || static_cast<size_t>(offs.data[offs.length - 1]) != ids.length) {
    throw_type_error(env, "offsets must start at 0 and end at ids.length");
  }
  for (size_t i = 1; i < offs.length; ++i) {
    if (offs.data[i] < offs.data[i - 1]) throw_type_error(env, "offsets must be non-decreasing");
  }
  bt->ids.assign(ids.data, ids.data + ids.length);
  bt->offsets.assign(offs.data, offs.data + offs.length);
  bt->isa = isa_of(o);
  return bt;
}

std::unique_ptr<StepBaton> parse_step(const Napi::CallbackInfo& info, const EncoderWrap::Shared& sh) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "step expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto bt = std::make_unique<StepBaton>();
  bt->model = sh.model;
  bt->team = sh.team;
  bt->threads = sh.threads;
  const auto& model = sh.model;
  Napi::Value sv = o.Get("state");
  auto st = typed_field<float>(o, "state", napi_float32_array, false, nullptr);
  auto ids = typed_field<int32_t>(o, "ids", napi_int32_array, false, nullptr);
  if (st.length != ids.length * model->state_size()) throw_type_error(env, "state has the wrong size for ids");
  bt->state.assign(st.data, st.data + st.length);
  bt->state_pin = Napi::Persistent(sv.As<Napi::Object>());
  bt->state_dst = const_cast<float*>(st.data);
  bt->ids.assign(ids.data, ids.data + ids.length);
  bt->isa = isa_of(o);
  return bt;
}

template <typename Baton>
class BatonWorker : public Napi::AsyncWorker {
 public:
  BatonWorker(Napi::Env env, std::unique_ptr<Baton> b, const char* name)
      : Napi::AsyncWorker(env, name), baton_(std::move(b)), deferred_(env) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { baton_->execute(); }
  void OnOK() override;
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<Baton> baton_;
  Napi::Promise::Deferred deferred_;
};

template <>
void BatonWorker<EncodeBaton>::OnOK() {
  if (baton_->error) return deferred_.Reject(make_js_error(Env(), baton_->error).Value());
  deferred_.Resolve(to_js(Env(), baton_->out));
}

template <>
void BatonWorker<StepBaton>::OnOK() {
  if (baton_->error) return deferred_.Reject(make_js_error(Env(), baton_->error).Value());
  // Write back through the pinned array, as it is now: its buffer may have been detached.
  auto arr = baton_->state_pin.Value().As<Napi::Float32Array>();
  if (arr.ElementLength() != baton_->state.size()) {
    return deferred_.Reject(make_js_error(Env(), {ErrorKind::kType, "the state's buffer was detached during step"}).Value());
  }
  std::copy(baton_->state.begin(), baton_->state.end(), arr.Data());
  deferred_.Resolve(to_js(Env(), baton_->out));
}

template <typename Baton, typename Parse>
Napi::Value run_async(const Napi::CallbackInfo& info, const EncoderWrap::Shared& m, Parse parse,
                      const char* name) {
  Napi::Env env = info.Env();
  std::unique_ptr<Baton> bt;
  try {
    bt = parse(info, m);
  } catch (const Napi::Error& e) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* w = new BatonWorker<Baton>(env, std::move(bt), name);
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace

Napi::Function EncoderWrap::Define(Napi::Env env) {
  return DefineClass(env, "NativeEncoder",
                     {InstanceMethod<&EncoderWrap::Encode>("encode"),
                      InstanceMethod<&EncoderWrap::EncodeAsync>("encodeAsync"),
                      InstanceMethod<&EncoderWrap::Step>("step"),
                      InstanceMethod<&EncoderWrap::StepAsync>("stepAsync"),
                      InstanceMethod<&EncoderWrap::Output>("output"),
                      InstanceAccessor<&EncoderWrap::Info>("info")});
}

EncoderWrap::EncoderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<EncoderWrap>(info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(info.Env(), "NativeEncoder expects a plan");
  try {
    Napi::Object plan = info[0].As<Napi::Object>();
    shared_.model = parse_model(plan);
    shared_.threads = std::max<size_t>(1, std::min<size_t>(size_field(plan, "threads", 1, true), 256));
    if (shared_.threads > 1) shared_.team = env_team(info.Env());
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    throw make_js_error(info.Env(), capture_current_exception());
  }
}

Napi::Value EncoderWrap::Encode(const Napi::CallbackInfo& info) {
  auto bt = parse_encode(info, shared_);
  bt->execute();
  if (bt->error) throw make_js_error(info.Env(), bt->error);
  return to_js(info.Env(), bt->out);
}

Napi::Value EncoderWrap::EncodeAsync(const Napi::CallbackInfo& info) {
  return run_async<EncodeBaton>(info, shared_, parse_encode, "recscore.encode");
}

Napi::Value EncoderWrap::Step(const Napi::CallbackInfo& info) {
  auto bt = parse_step(info, shared_);
  bt->execute();
  if (bt->error) throw make_js_error(info.Env(), bt->error);
  std::copy(bt->state.begin(), bt->state.end(), bt->state_dst);
  return to_js(info.Env(), bt->out);
}

Napi::Value EncoderWrap::StepAsync(const Napi::CallbackInfo& info) {
  return run_async<StepBaton>(info, shared_, parse_step, "recscore.step");
}

Napi::Value EncoderWrap::Output(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "output expects an object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto st = typed_field<float>(o, "state", napi_float32_array, false, nullptr);
  const size_t ss = shared_.model->state_size();
  if (ss == 0 || st.length % ss != 0) throw_type_error(env, "state has the wrong size");
  std::vector<float> out(st.length / ss * shared_.model->out_dim());
  try {
    recscore::rnn_output(*shared_.model, isa_of(o), st.data, st.length / ss, out.data());
  } catch (...) {
    throw make_js_error(env, capture_current_exception());
  }
  return to_js(env, out);
}

Napi::Value EncoderWrap::Info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("outDim", Napi::Number::New(env, static_cast<double>(shared_.model->out_dim())));
  o.Set("stateSize", Napi::Number::New(env, static_cast<double>(shared_.model->state_size())));
  o.Set("unidirectional", Napi::Boolean::New(env, shared_.model->unidirectional()));
  o.Set("folded", Napi::Boolean::New(env, !shared_.model->layers[0].dirs[0].table.empty()));
  o.Set("vocab", Napi::Number::New(env, static_cast<double>(shared_.model->vocab)));
  return o;
}

}  // namespace recscore_binding
