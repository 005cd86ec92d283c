// Catalogue as a JS class: new Catalogue({ n, d, panels, bias?, attributes?, compressed? }) checks
// the sizes once and pins the typed arrays; topK / topKAsync take it as `catalogue`. close() drops
// the pins; calls still running keep them until the last one completes.
#pragma once
#include <napi.h>

#include <memory>
#include <mutex>
#include <vector>

#include "../core/compressed.h"
#include "../core/platform/levels.h"

namespace recscore_binding {

// What a scoring call reads from a catalogue: borrowed pointers into the pinned arrays. Shared by
// the catalogue object (until close()) and by each call holding it (until the call completes);
// the pins go when the last holder lets go, always on the JS thread.
struct CatalogueState {
  size_t n = 0, d = 0;
  const float* panels = nullptr;       // panel_count(n) * panel_floats(d) floats
  const float* bias = nullptr;         // n, or null
  const uint32_t* attributes = nullptr;  // n, or null
  bool has_compressed = false;
  recscore::CompressedView compressed;   // packed compact copy (gemm/compact.h) and n-float terms
  // [sync, any thread] The compact copy as a scan at `level` reads it: with the row terms of the
  // quantised-user kernels (compressed_approx.h) where that level has them, computed once, on
  // the first such call (from the pinned arrays, on whichever thread runs it), then shared.
  recscore::CompressedView compressed_for(recscore::Level level) const;
  struct Pin {
    Napi::ObjectReference ref;  // the typed array
    const void* data = nullptr;  // as it was checked
    size_t length = 0;
  };
  std::vector<Pin> pins;

 private:
  mutable std::once_flag terms_once_;
  mutable recscore::CompactRowTerms terms_;
};

class CatalogueWrap : public Napi::ObjectWrap<CatalogueWrap> {
 public:
  // [sync, JS thread] Defines the class; returns the constructor for the addon's instance data.
  static Napi::Function Define(Napi::Env env);
  explicit CatalogueWrap(const Napi::CallbackInfo& info);

  // [sync, JS thread] The state of the catalogue object v, for one call to hold. Throws a TypeError
  // (ERR_INVALID_ARG) when v is not a Catalogue, when it is closed ("catalogue is closed"), or
  // when one of its arrays no longer has the memory it was checked with (a detached buffer).
  static std::shared_ptr<const CatalogueState> acquire(Napi::Env env, Napi::Value v);

 private:
  Napi::Value N(const Napi::CallbackInfo& info);
  Napi::Value D(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  size_t n_ = 0, d_ = 0;
  std::shared_ptr<CatalogueState> state_;  // null once closed
};

}  // namespace recscore_binding
