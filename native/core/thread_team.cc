#include "thread_team.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <exception>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RS_PAUSE() _mm_pause()
#else
#define RS_PAUSE() std::this_thread::yield()
#endif

namespace recscore {

namespace {
constexpr uint64_t kOpen = uint64_t{1} << 31;
constexpr uint64_t kCount = kOpen - 1;
// Waits for members at work in the same region poll this long, then sleep.
constexpr auto kActiveSpin = std::chrono::microseconds(100);
// The idle spin window; kSpinUnset until set_spin_us or RECSCORE_SPIN_US sets it (0 then).
constexpr uint32_t kSpinUnset = UINT32_MAX;
std::atomic<uint32_t> g_spin_us{kSpinUnset};

bool parse_spin(const char* s, uint32_t* out) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  for (const char* p = s; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
    if (v > ThreadTeam::kMaxSpinUs) return false;
  }
  *out = static_cast<uint32_t>(v);
  return true;
}
}  // namespace

void ThreadTeam::set_spin_us(uint32_t us) { g_spin_us.store(std::min(us, kMaxSpinUs), std::memory_order_relaxed); }

uint32_t ThreadTeam::spin_us() {
  const uint32_t v = g_spin_us.load(std::memory_order_relaxed);
  return v == kSpinUnset ? 0 : v;
}

template <typename Pred>
void ThreadTeam::wait_short(Pred done) {
  const auto since = std::chrono::steady_clock::now();
  unsigned spins = 0;
  while (!done()) {
    if ((++spins & 63) != 0 || std::chrono::steady_clock::now() - since < kActiveSpin) {
      RS_PAUSE();
      continue;
    }
    std::unique_lock<std::mutex> lk(sync_mu_);
    sync_cv_.wait(lk, done);
    return;
  }
}

void ThreadTeam::signal() {
  // Taking the lock orders this after a waiter's last check of its condition: no lost wake-up.
  { std::lock_guard<std::mutex> lk(sync_mu_); }
  sync_cv_.notify_all();
}

ThreadTeam::ThreadTeam(size_t helpers) {
  uint32_t env_spin;
  if (parse_spin(std::getenv("RECSCORE_SPIN_US"), &env_spin)) {
    uint32_t unset = kSpinUnset;
    g_spin_us.compare_exchange_strong(unset, env_spin, std::memory_order_relaxed);
  }
  helpers_.reserve(helpers);
  for (size_t i = 0; i < helpers; ++i) helpers_.emplace_back([this, i] { helper_main(i); });
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

void ThreadTeam::helper_main(size_t) {
  uint64_t seen = 0;
  for (;;) {
    const auto idle_since = std::chrono::steady_clock::now();
    const auto window = std::chrono::microseconds(spin_us());
    unsigned spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (window.count() > 0 && ((++spins & 63) != 0 || std::chrono::steady_clock::now() - idle_since < window)) {
        RS_PAUSE();
        continue;
      }
      std::unique_lock<std::mutex> lk(sleep_mu_);
      wake_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    // Join the open region, if it is still the one this wake-up was for and has room.
    uint64_t v = ticket_.load(std::memory_order_acquire);
    size_t member = 0;
    for (;;) {
      if ((v >> 32) != (seen & 0xffffffffu) || !(v & kOpen) || (v & kCount) + 1 >= max_members_.load(std::memory_order_relaxed)) break;
      if (ticket_.compare_exchange_weak(v, v + 1, std::memory_order_acq_rel)) {
        member = static_cast<size_t>(v & kCount) + 1;
        break;
      }
    }
    if (member == 0) continue;  // too late, or no room: wait for the next region
    if (dyn_fn_) {
      (*dyn_fn_)(member);
    } else {
      wait_short([this] { return members_.load(std::memory_order_acquire) != 0; });
      (*fixed_fn_)(member, members_.load(std::memory_order_acquire));
    }
    finished_.fetch_add(1, std::memory_order_acq_rel);
    signal();
  }
}

uint64_t ThreadTeam::open_region(size_t max_members) {
  max_members_.store(max_members, std::memory_order_relaxed);
  finished_.store(0, std::memory_order_relaxed);
  members_.store(0, std::memory_order_relaxed);
  uint64_t g;
  {
    std::lock_guard<std::mutex> lk(sleep_mu_);
    // The ticket names the region by the generation that announces it, so a helper that wakes
    // late cannot join a later region by mistake.
    g = generation_.load(std::memory_order_relaxed) + 1;
    ticket_.store((g & 0xffffffffu) << 32 | kOpen, std::memory_order_release);
    generation_.store(g, std::memory_order_release);
  }
  wake_.notify_all();
  return g;
}

size_t ThreadTeam::close_region(uint64_t) {
  const uint64_t v = ticket_.fetch_and(~kOpen, std::memory_order_acq_rel);
  return static_cast<size_t>(v & kCount);
}

void ThreadTeam::run_dynamic(const std::function<void(size_t)>& fn, size_t max_members) {
  std::unique_lock<std::mutex> region(busy_, std::try_to_lock);
  if (!region.owns_lock() || helpers_.empty() || max_members < 2) {
    fn(0);
    return;
  }
  dyn_fn_ = &fn;
  fixed_fn_ = nullptr;
  const uint64_t id = open_region(max_members);
  fn(0);
  const size_t joined = close_region(id);
  wait_short([&] { return finished_.load(std::memory_order_acquire) == joined; });
  dyn_fn_ = nullptr;
}

void ThreadTeam::run_fixed(const std::function<void(size_t, size_t)>& fn, size_t max_members,
                           double wait_us) {
  std::unique_lock<std::mutex> region(busy_, std::try_to_lock);
  if (!region.owns_lock() || helpers_.empty() || max_members < 2) {
    fn(0, 1);
    return;
  }
  fixed_fn_ = &fn;
  dyn_fn_ = nullptr;
  const uint64_t id = open_region(max_members);
  const size_t want = std::min(helpers_.size(), max_members - 1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double, std::micro>(wait_us);
  while ((ticket_.load(std::memory_order_acquire) & kCount) < want && std::chrono::steady_clock::now() < until) {
    RS_PAUSE();
  }
  const size_t joined = close_region(id);
  members_.store(joined + 1, std::memory_order_release);
  signal();
  fn(0, joined + 1);
  wait_short([&] { return finished_.load(std::memory_order_acquire) == joined; });
  fixed_fn_ = nullptr;
}

void parallel_blocks(ThreadTeam* team, size_t members, size_t nblocks,
                     const std::function<void(size_t, size_t)>& body) {
  if (!team) members = 1;
  members = std::max<size_t>(1, std::min(members, team ? team->size() : 1));
  std::atomic<size_t> next{0};
  std::vector<std::exception_ptr> errors(members);
  const std::function<void(size_t)> fn = [&](size_t member) {
    try {
      for (size_t b = next++; b < nblocks; b = next++) body(member, b);
    } catch (...) {
      errors[member] = std::current_exception();
      next = nblocks;
    }
  };
  if (members > 1 && nblocks > 1) {
    team->run_dynamic(fn, members);
  } else {
    fn(0);
  }
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

void ThreadTeam::barrier() {
  const size_t n = members_.load(std::memory_order_acquire);
  if (n <= 1) return;
  const uint64_t gen = barrier_gen_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
    arrived_.store(0, std::memory_order_relaxed);
    barrier_gen_.fetch_add(1, std::memory_order_acq_rel);
    signal();
    return;
  }
  wait_short([&] { return barrier_gen_.load(std::memory_order_acquire) != gen; });
}

}  // namespace recscore
