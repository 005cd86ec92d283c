// Bounded top-k selection for one user over a stream of (score, row) candidates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace recscore {

struct Scored {
  float score;
  int32_t row;
};

// The result order: higher score first, then the lower row. A strict weak order on
// finite scores, which are all the scorer ever produces.
inline bool ranks_before(const Scored& a, const Scored& b) {
  return a.score > b.score || (a.score == b.score && a.row < b.row);
}

// Keeps the best k of the candidates pushed. Rows must be pushed in ascending order: then a
// candidate whose score equals the current threshold can be rejected outright, because every
// kept candidate with that score has a lower row and so ranks before it.
// Not thread-safe: one instance per (user, thread).
class TopK {
 public:
  // capacity >= 2k keeps compactions rare; storage is taken from the caller's arena.
  TopK(size_t k, Scored* storage, size_t capacity)
      : k_(k), cap_(capacity), buf_(storage), size_(0), threshold_(-INFINITY_F) {}

  float threshold() const { return threshold_; }

  // [sync] Considers one candidate; rows ascending across calls.
  void push(float score, int32_t row) {
    if (!(score > threshold_)) return;
    buf_[size_++] = Scored{score, row};
    if (size_ == cap_) compact();
  }

  // [sync] Sorts the kept candidates (best first) and returns how many there are (<= k).
  size_t finish();
  const Scored* data() const { return buf_; }

 private:
  static constexpr float INFINITY_F = __builtin_inff();
  void compact();

  size_t k_;
  size_t cap_;
  Scored* buf_;
  size_t size_;
  float threshold_;
};

// [sync] Merges per-thread sorted lists into the best k, best first, written to rows/scores
// (k entries; unfilled positions get row -1 and score -Infinity).
void merge_topk(const std::vector<std::pair<const Scored*, size_t>>& parts, size_t k, int32_t* rows,
                float* scores);

}  // namespace recscore
