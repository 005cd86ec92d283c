#include "thread_team.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RS_PAUSE() _mm_pause()
#else
#define RS_PAUSE() std::this_thread::yield()
#endif

namespace recscore {

namespace {
constexpr int kSpinBeforeSleep = 1 << 15;  // ~100 µs of polling before a helper sleeps
}

ThreadTeam::ThreadTeam(size_t helpers) {
  helpers_.reserve(helpers);
  for (size_t i = 0; i < helpers; ++i) helpers_.emplace_back([this, i] { helper_main(i + 1); });
}

ThreadTeam::~ThreadTeam() {
  {
    std::lock_guard<std::mutex> lk(sleep_mu_);
    stop_ = true;
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : helpers_) t.join();
}

void ThreadTeam::helper_main(size_t member) {
  uint64_t seen = 0;
  for (;;) {
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (++spins < kSpinBeforeSleep) {
        RS_PAUSE();
        continue;
      }
      std::unique_lock<std::mutex> lk(sleep_mu_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    (*fn_)(member);
    finished_.fetch_add(1, std::memory_order_acq_rel);
  }
}

bool ThreadTeam::try_run(const std::function<void(size_t)>& fn) {
  std::unique_lock<std::mutex> region(busy_, std::try_to_lock);
  if (!region.owns_lock()) return false;
  fn_ = &fn;
  finished_.store(0, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lk(sleep_mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  wake_.notify_all();
  fn(0);
  while (finished_.load(std::memory_order_acquire) != helpers_.size()) RS_PAUSE();
  fn_ = nullptr;
  return true;
}

void ThreadTeam::barrier() {
  const size_t n = size();
  if (n == 1) return;
  const uint64_t gen = barrier_gen_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
    arrived_.store(0, std::memory_order_relaxed);
    barrier_gen_.fetch_add(1, std::memory_order_acq_rel);
    return;
  }
  int spins = 0;
  while (barrier_gen_.load(std::memory_order_acquire) == gen) {
    if (++spins < (1 << 20)) {
      RS_PAUSE();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace recscore
