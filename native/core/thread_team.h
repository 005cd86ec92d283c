// A fixed team of helper threads for short parallel regions. The caller always works; helpers
// join a region only if they are awake in time, so a helper whose CPU was idle (and whose wake-up
// can take milliseconds on a virtual machine) never delays the caller. Idle helpers sleep at
// once, unless a spin window is set (set_spin_us, or RECSCORE_SPIN_US): then they poll that long
// after each region first. Waits for members working in the same region (a region's end, a
// barrier) poll for a bounded time, then sleep; nothing depends on spinning for progress.
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

  // [any thread] The process-wide idle spin window of every team, in microseconds (0: idle
  // helpers sleep at once; at most kMaxSpinUs). Takes effect at each helper's next idle period.
  // Until it is set, the first team created reads RECSCORE_SPIN_US (an integer 0..kMaxSpinUs;
  // anything else is ignored).
  static constexpr uint32_t kMaxSpinUs = 100000;
  static void set_spin_us(uint32_t us);
  static uint32_t spin_us();

  // Most members a region can have: the caller and every helper.
  size_t size() const { return helpers_.size() + 1; }

  // [sync, any thread] Runs fn(member) on the caller (member 0) and on the helpers (members
  // 1..) that join while the caller is still in its own fn, at most max_members in all; returns
  // when all who joined have returned. fn must take its work from a shared queue: any number of
  // helpers, none included, may join. One region at a time per team: a caller that finds the
  // team busy runs fn(0) alone. fn must not throw.
  void run_dynamic(const std::function<void(size_t)>& fn, size_t max_members);

  // [sync, any thread] Runs fn(member, members) on a team fixed at the start: the caller plus
  // the helpers that join within wait_us microseconds (at most max_members in all); members may
  // call barrier(). A busy team gives fn(0, 1) on the caller. fn must not throw.
  void run_fixed(const std::function<void(size_t, size_t)>& fn, size_t max_members, double wait_us);

  // [inside a run_fixed region] Waits until every member of the region has arrived.
  void barrier();

 private:
  void helper_main(size_t index);
  // Polls done() for a bounded time, then sleeps until signal() finds it true.
  template <typename Pred>
  void wait_short(Pred done);
  void signal();  // after making a wait_short condition true
  uint64_t open_region(size_t max_members);  // returns the region id
  size_t close_region(uint64_t region);       // returns how many helpers joined

  std::vector<std::thread> helpers_;
  std::mutex busy_;  // held by the caller for the whole region
  std::mutex sleep_mu_;
  std::condition_variable wake_;
  std::mutex sync_mu_;  // wait_short / signal
  std::condition_variable sync_cv_;
  const std::function<void(size_t)>* dyn_fn_ = nullptr;
  const std::function<void(size_t, size_t)>* fixed_fn_ = nullptr;
  std::atomic<size_t> max_members_{1};  // read by helpers while the next region may be opening
  // Each word other threads poll lives on its own cache line.
  alignas(64) std::atomic<uint64_t> generation_{0};  // bumped to wake helpers for a region
  alignas(64) std::atomic<uint64_t> ticket_{0};      // region id << 32 | open bit | helpers joined
  alignas(64) std::atomic<size_t> finished_{0};
  alignas(64) std::atomic<size_t> members_{0};       // run_fixed: the team size, once fixed
  alignas(64) std::atomic<size_t> arrived_{0};       // barrier: members arrived
  alignas(64) std::atomic<uint64_t> barrier_gen_{0};  // barrier: completed barriers
  alignas(64) std::atomic<bool> stop_{false};
};

// [sync] Runs body(member, block) for every block in [0, nblocks): the caller and up to
// members - 1 helpers of `team` (null: the caller alone) claim blocks in ascending order from a
// shared counter, so each member sees its blocks in ascending order and a late helper delays
// nobody. The first exception a body throws stops the claiming and is rethrown here.
void parallel_blocks(ThreadTeam* team, size_t members, size_t nblocks,
                     const std::function<void(size_t member, size_t block)>& body);

}  // namespace recscore
