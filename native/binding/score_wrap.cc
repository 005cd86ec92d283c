#include "score_wrap.h"

#include <memory>
#include <string>
#include <vector>

#include "../core/compressed.h"
#include "../core/gemm/contract.h"
#include "../core/cpu.h"
#include "../core/errors.h"
#include "../core/scorer.h"
#include "args.h"
#include "errors.h"

namespace recscore_binding {
namespace {

// Everything one call needs, read on the JS thread. execute() touches nothing else.
struct TopKBaton {
  recscore::ScoreRequest req;
  std::shared_ptr<recscore::ThreadTeam> team;  // kept alive while the work runs
  Napi::ObjectReference items_pin, bias_pin, attributes_pin, panels_pin;
  // Copied: a caller could transfer (detach) its buffer while the work runs; B x d is small.
  std::vector<float> users;
  std::vector<int32_t> excl_offsets, excl_rows;  // copied: sorted in place
  std::vector<int32_t> allow;
  bool has_allow = false;
  const uint32_t* attributes = nullptr;
  uint32_t all = 0, any = 0, none = 0;
  std::vector<uint64_t> eligible;
  std::vector<int32_t> rows;
  std::vector<float> scores;
  // Compressed catalogue (int8/bf16): the compact rows and bound terms, pinned.
  recscore::CompressedView compressed;
  Napi::ObjectReference comp_data_pin, comp_scale_pin, comp_err_pin, comp_err_bias_pin;
  std::vector<int32_t> candidates;
  CapturedError error;

  void execute() {
    try {
      if (!excl_offsets.empty()) {
        recscore::prepare_exclusions(excl_offsets.data(), excl_rows.data(), req.b, req.n);
        req.excl_offsets = excl_offsets.data();
        req.excl_rows = excl_rows.data();
      }
      if (has_allow || attributes) {
        eligible = recscore::build_eligibility(req.n, has_allow, allow.data(), allow.size(),
                                               attributes, all, any, none);
        req.eligible = eligible.data();
      }
      rows.resize(req.b * req.k);
      scores.resize(req.b * req.k);
      if (compressed.precision != recscore::Precision::kF32) {
        candidates.resize(req.b);
        recscore::score_topk_compressed(req, compressed, rows.data(), scores.data(), candidates.data());
      } else {
        recscore::score_topk(req, rows.data(), scores.data());
      }
    } catch (...) {
      error = capture_current_exception();
    }
  }

  Napi::Object result(Napi::Env env) const {
    auto r = Napi::Int32Array::New(env, rows.size());
    auto s = Napi::Float32Array::New(env, scores.size());
    if (!rows.empty()) {
      std::copy(rows.begin(), rows.end(), r.Data());
      std::copy(scores.begin(), scores.end(), s.Data());
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("rows", r);
    out.Set("scores", s);
    if (!candidates.empty()) {
      auto c = Napi::Int32Array::New(env, candidates.size());
      std::copy(candidates.begin(), candidates.end(), c.Data());
      out.Set("candidates", c);
    }
    return out;
  }
};

uint32_t u32_field(const Napi::Object& o, const char* name) {
  size_t v = size_field(o, name, 0, true);
  if (v > 0xFFFFFFFFu) throw_type_error(o.Env(), std::string(name) + " must fit in 32 bits");
  return static_cast<uint32_t>(v);
}

std::unique_ptr<TopKBaton> parse(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "topK expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto bt = std::make_unique<TopKBaton>();
  auto& r = bt->req;

  auto items = typed_field<float>(o, "items", napi_float32_array, false, &bt->items_pin);
  r.n = size_field(o, "n", 0, false);
  r.d = size_field(o, "d", 0, false);
  if (r.d == 0) throw_type_error(env, "d must be positive");
  if (r.n > items.length / r.d) throw_type_error(env, "items holds fewer than n x d values");
  r.items = items.data;

  auto users = typed_field<float>(o, "users", napi_float32_array, false, nullptr);
  if (users.length % r.d != 0) throw_type_error(env, "users length is not a multiple of d");
  if (users.length) bt->users.assign(users.data, users.data + users.length);
  r.users = bt->users.data();
  r.b = users.length / r.d;
  r.k = size_field(o, "k", 0, false);
  if (r.k == 0 || r.k > r.n) {
    throw make_js_error(env, {ErrorKind::kRange, "k must be in 1..n"});
  }

  auto bias = typed_field<float>(o, "bias", napi_float32_array, true, &bt->bias_pin);
  if (bias.data && bias.length < r.n) throw_type_error(env, "bias holds fewer than n values");
  r.bias = bias.data;

  auto panels = typed_field<float>(o, "panels", napi_float32_array, true, &bt->panels_pin);
  if (panels.present) {
    if (panels.length != recscore::panel_count(r.n) * recscore::panel_floats(r.d)) throw_type_error(env, "panels do not hold n x d packed values");
    r.panels = panels.data;
  }

  auto offs = typed_field<int32_t>(o, "exclOffsets", napi_int32_array, true, nullptr);
  auto excl = typed_field<int32_t>(o, "exclRows", napi_int32_array, true, nullptr);
  if (offs.data) {
    if (offs.length != r.b + 1) throw_type_error(env, "exclOffsets must hold b + 1 entries");
    for (size_t u = 0; u < r.b; ++u) {
      if (offs.data[u] < 0 || offs.data[u + 1] < offs.data[u]) {
        throw_type_error(env, "exclOffsets must be non-decreasing from 0");
      }
    }
    if (offs.data[0] != 0 || static_cast<size_t>(offs.data[r.b]) != excl.length) {
      throw_type_error(env, "exclOffsets must span exclRows exactly");
    }
    bt->excl_offsets.assign(offs.data, offs.data + offs.length);
    bt->excl_rows.assign(excl.data, excl.data + excl.length);
  }

  auto allow = typed_field<int32_t>(o, "allow", napi_int32_array, true, nullptr);
  if (allow.present) {  // an empty allow-list allows nothing
    bt->has_allow = true;
    if (allow.length) bt->allow.assign(allow.data, allow.data + allow.length);
  }
  auto attrs = typed_field<uint32_t>(o, "attributes", napi_uint32_array, true, &bt->attributes_pin);
  if (attrs.data) {
    if (attrs.length < r.n) throw_type_error(env, "attributes holds fewer than n values");
    bt->attributes = attrs.data;
    bt->all = u32_field(o, "filterAll");
    bt->any = u32_field(o, "filterAny");
    bt->none = u32_field(o, "filterNone");
  }

  Napi::Value cv = o.Get("compressed");
  if (cv.IsObject()) {
    Napi::Object c = cv.As<Napi::Object>();
    Napi::Value pv = c.Get("precision");
    const std::string prec = pv.IsString() ? pv.As<Napi::String>().Utf8Value() : "";
    auto& v = bt->compressed;
    if (prec == "int8") {
      auto q = typed_field<int8_t>(c, "data", napi_int8_array, false, &bt->comp_data_pin);
      auto sc = typed_field<float>(c, "scale", napi_float32_array, false, &bt->comp_scale_pin);
      if (q.length < r.n * r.d || sc.length < r.n) throw_type_error(env, "compressed int8 data is too short");
      v.precision = recscore::Precision::kInt8;
      v.data = q.data;
      v.scale = sc.data;
    } else if (prec == "bf16") {
      auto h = typed_field<uint16_t>(c, "data", napi_uint16_array, false, &bt->comp_data_pin);
      if (h.length < r.n * r.d) throw_type_error(env, "compressed bf16 data is too short");
      v.precision = recscore::Precision::kBf16;
      v.data = h.data;
    } else {
      throw_type_error(env, "compressed.precision must be int8 or bf16");
    }
    auto err = typed_field<float>(c, "err", napi_float32_array, false, &bt->comp_err_pin);
    auto eb = typed_field<float>(c, "errBias", napi_float32_array, true, &bt->comp_err_bias_pin);
    if (err.length < r.n || (eb.present && eb.length < r.n) || (r.bias && !eb.present)) {
      throw_type_error(env, "compressed bound terms do not match the catalogue");
    }
    v.err = err.data;
    v.err_bias = eb.present ? eb.data : nullptr;
  }

  r.threads = static_cast<int>(std::min<size_t>(size_field(o, "threads", 1, true), 256));
  bt->team = std::move(team);
  r.team = bt->team.get();
  r.isa = level_field(o);
  return bt;
}

class TopKWorker : public Napi::AsyncWorker {
 public:
  TopKWorker(Napi::Env env, std::unique_ptr<TopKBaton> baton)
      : Napi::AsyncWorker(env, "recscore.topK"), baton_(std::move(baton)), deferred_(env) {}
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { baton_->execute(); }
  void OnOK() override {
    Napi::Env env = Env();
    if (baton_->error) {
      deferred_.Reject(make_js_error(env, baton_->error).Value());
    } else {
      deferred_.Resolve(baton_->result(env));
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  std::unique_ptr<TopKBaton> baton_;
  Napi::Promise::Deferred deferred_;
};

}  // namespace

Napi::Value TopKSync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team) {
  auto baton = parse(info, std::move(team));
  baton->execute();
  if (baton->error) throw make_js_error(info.Env(), baton->error);
  return baton->result(info.Env());
}

Napi::Value TopKAsync(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team) {
  Napi::Env env = info.Env();
  std::unique_ptr<TopKBaton> baton;
  try {
    baton = parse(info, std::move(team));
  } catch (const Napi::Error& e) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(e.Value());
    return d.Promise();
  }
  auto* worker = new TopKWorker(env, std::move(baton));
  Napi::Promise p = worker->promise();
  worker->Queue();
  return p;
}

}  // namespace recscore_binding
