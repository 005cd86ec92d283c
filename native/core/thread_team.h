// A fixed team of helper threads for short parallel regions: the caller plus helpers run one
// function together, meeting at barriers, with a spin-then-sleep handoff so that a region of a
// few microseconds costs little more than its work.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace recscore {

class ThreadTeam {
 public:
  // [sync] Starts `helpers` threads (they sleep until the first region).
  explicit ThreadTeam(size_t helpers);
  ~ThreadTeam();
  ThreadTeam(const ThreadTeam&) = delete;
  ThreadTeam& operator=(const ThreadTeam&) = delete;

  size_t size() const { return helpers_.size() + 1; }

  // [sync, any thread] Runs fn(member) on the caller (member 0) and every helper, and returns
  // when all have returned. One region at a time: returns false without running anything when
  // another thread's region is in progress (the caller then does the work alone).
  // fn must not throw; it may call barrier().
  bool try_run(const std::function<void(size_t)>& fn);

  // [inside a region] Waits until every member has arrived.
  void barrier();

 private:
  void helper_main(size_t member);

  std::vector<std::thread> helpers_;
  std::mutex busy_;  // held for the whole region by its caller
  std::mutex sleep_mu_;
  std::condition_variable wake_;
  // Each flag other threads poll lives on its own cache line: a write to one must not make the
  // pollers of another re-fetch theirs.
  alignas(64) std::atomic<uint64_t> generation_{0};
  alignas(64) std::atomic<size_t> finished_{0};
  alignas(64) std::atomic<size_t> arrived_{0};      // barrier: members arrived
  alignas(64) std::atomic<uint64_t> barrier_gen_{0};  // barrier: completed barriers
  alignas(64) std::atomic<bool> stop_{false};
  const std::function<void(size_t)>* fn_ = nullptr;
};

}  // namespace recscore
