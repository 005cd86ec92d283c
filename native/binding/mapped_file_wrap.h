// MappedFile as a JS class: new MappedFile(path, fd?) maps a file (the one open on fd, if given);
// mapping (no copy); .close() detaches that buffer and unmaps once nothing else holds it.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/mapped_file.h"

namespace recscore_binding {

class MappedFileWrap : public Napi::ObjectWrap<MappedFileWrap> {
 public:
  // [sync, JS thread] Defines the class; returns the constructor for the addon's instance data.
  static Napi::Function Define(Napi::Env env);
  explicit MappedFileWrap(const Napi::CallbackInfo& info);

 private:
  Napi::Value Buffer(const Napi::CallbackInfo& info);
  Napi::Value Size(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  // Shared with the ArrayBuffer's finalizer: the mapping lives until both let go.
  std::shared_ptr<recscore::MappedFile> file_;
  Napi::Reference<Napi::ArrayBuffer> buffer_;
};

}  // namespace recscore_binding
