// The environment's one team of helper threads, shared by scoring and every encoder of this
// Node environment (main thread or worker), so that idle helpers polling for work never compete
// with each other for the same cores.
#pragma once
#include <napi.h>

#include <memory>

#include "../core/thread_team.h"

namespace recscore_binding {

// [sync, JS thread] Started on first use with one helper per core beyond the first.
std::shared_ptr<recscore::ThreadTeam> env_team(Napi::Env env);

}  // namespace recscore_binding
