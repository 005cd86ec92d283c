#include "topk.h"

#include <algorithm>
#include <limits>

namespace recscore {

void TopK::compact() {
  if (size_ <= k_) return;
  std::nth_element(buf_, buf_ + (k_ - 1), buf_ + size_, ranks_before);
  size_ = k_;
  // Everything kept now ranks at or before element k-1, so a later candidate (higher row) must
  // beat its score strictly to enter.
  threshold_ = buf_[k_ - 1].score;
}

size_t TopK::finish() {
  compact();
  std::sort(buf_, buf_ + size_, ranks_before);
  return size_;
}

void merge_topk(const std::vector<std::pair<const Scored*, size_t>>& parts, size_t k, int32_t* rows,
                float* scores) {
  std::vector<Scored> all;
  size_t total = 0;
  for (const auto& p : parts) total += p.second;
  all.reserve(total);
  for (const auto& p : parts) all.insert(all.end(), p.first, p.first + p.second);
  size_t n = std::min(k, all.size());
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(n), all.end(),
                    ranks_before);
  for (size_t i = 0; i < n; ++i) {
    rows[i] = all[i].row;
    scores[i] = all[i].score;
  }
  for (size_t i = n; i < k; ++i) {
    rows[i] = -1;
    scores[i] = -std::numeric_limits<float>::infinity();
  }
}

}  // namespace recscore
