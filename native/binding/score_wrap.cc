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
#include "catalogue_wrap.h"
#include "errors.h"

namespace recscore_binding {
namespace {

// Everything one call needs, read on the JS thread. execute() touches nothing else.
struct TopKBaton {
  recscore::ScoreRequest req;
  std::shared_ptr<recscore::ThreadTeam> team;  // kept alive while the work runs
  // The catalogue's arrays stay pinned while this share is held (released on the JS thread, with
  // the baton); the object itself is kept too.
  std::shared_ptr<const CatalogueState> catalogue;
  Napi::ObjectReference catalogue_pin;
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
  bool use_compressed = false;  // scan the catalogue's compact copy
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
      if (use_compressed) {
        candidates.resize(req.b);
        // The row terms of the quantised-user kernels are computed on the first call that uses them.
        const recscore::CompressedView view = catalogue->compressed_for(req.isa);
        recscore::score_topk_compressed(req, view, rows.data(), scores.data(), candidates.data());
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

bool given(const Napi::Object& o, const char* name) {
  Napi::Value v = o.Get(name);
  return !v.IsUndefined() && !v.IsNull();
}

std::unique_ptr<TopKBaton> parse(const Napi::CallbackInfo& info, std::shared_ptr<recscore::ThreadTeam> team) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throw_type_error(env, "topK expects an options object");
  Napi::Object o = info[0].As<Napi::Object>();
  auto bt = std::make_unique<TopKBaton>();
  auto& r = bt->req;

  Napi::Value cat = o.Get("catalogue");
  bt->catalogue = CatalogueWrap::acquire(env, cat);
  bt->catalogue_pin = Napi::Persistent(cat.As<Napi::Object>());
  const CatalogueState& c = *bt->catalogue;
  r.n = c.n;
  r.d = c.d;
  r.panels = c.panels;  // items stay null: every path reads the panels
  r.bias = c.bias;

  auto users = typed_field<float>(o, "users", napi_float32_array, false, nullptr);
  if (users.length % r.d != 0) throw_type_error(env, "users length is not a multiple of d");
  if (users.length) bt->users.assign(users.data, users.data + users.length);
  r.users = bt->users.data();
  r.b = users.length / r.d;
  r.k = size_field(o, "k", 0, false);
  if (r.k == 0 || r.k > r.n) {
    throw make_js_error(env, {ErrorKind::kRange, "k must be in 1..n"});
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
  // An attribute filter: a word that is not zero needs the catalogue's attributes (all three zero
  // let every row pass, attributes or not).
  bt->all = u32_field(o, "filterAll");
  bt->any = u32_field(o, "filterAny");
  bt->none = u32_field(o, "filterNone");
  if ((bt->all | bt->any | bt->none) != 0) {
    if (!c.attributes && c.n > 0) throw_type_error(env, "filterAll/filterAny/filterNone: the catalogue has no attributes");
    bt->attributes = c.attributes;
  }

  if (given(o, "useCompressed")) {
    Napi::Value uc = o.Get("useCompressed");
    if (!uc.IsBoolean()) throw_type_error(env, "useCompressed must be a boolean");
    bt->use_compressed = uc.As<Napi::Boolean>().Value();
    if (bt->use_compressed && !c.has_compressed) throw_type_error(env, "useCompressed: the catalogue has no compressed copy");
  }
  // Batches of >= 16 users on the VNNI path scan together through the int8 GEMM (compressed
  // scans only; the same results either way).
  if (given(o, "compressedGemm")) {
    Napi::Value cg = o.Get("compressedGemm");
    if (!cg.IsBoolean()) throw_type_error(env, "compressedGemm must be a boolean");
    r.compressed_gemm = cg.As<Napi::Boolean>().Value();
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
