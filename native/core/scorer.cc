#include "scorer.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <atomic>
#include <exception>

#include "errors.h"
#include "gemm/contract.h"
#include "gemm/pack.h"
#include "kernels.h"
#include "topk.h"

namespace recscore {
namespace {

constexpr size_t kUserGroup = 12;         // users per micro-kernel call (scores stay in L1)
constexpr size_t kTileBytes = 128 << 10;  // item tile, packed, kept in L2 while every user passes

size_t tile_items(size_t d) {
  size_t t = kTileBytes / (d * sizeof(float));
  t = std::max<size_t>(kPanel, std::min<size_t>(2048, t));
  return t & ~(kPanel - 1);
}

bool range_has_eligible(const uint64_t* bits, size_t lo, size_t hi) {
  for (size_t j = lo; j < hi;) {
    size_t w = j >> 6;
    size_t bit = j & 63;
    uint64_t word = bits[w] >> bit;
    size_t span = std::min<size_t>(64 - bit, hi - j);
    if (span < 64) word &= (uint64_t{1} << span) - 1;
    if (word) return true;
    j += span;
  }
  return false;
}

// One team member's share: the blocks of rows it claims, in ascending order, for every user.
struct Worker {
  const ScoreRequest* req = nullptr;
  const Kernels* kern = nullptr;
  size_t cap = 0;                 // per-user buffer capacity
  std::vector<Scored> arena;      // b * cap
  std::vector<TopK> heaps;        // b
  std::vector<size_t> kept;       // b, filled by finish()
  std::vector<float> scores;      // kUserGroup x tile
  std::vector<float> packed;      // the tile's items in panels (gemm/contract.h)
  std::vector<uint32_t> idx;      // tile
  std::vector<size_t> excl_pos;   // b
  bool started = false;

  void start() {
    const ScoreRequest& r = *req;
    heaps.reserve(r.b);
    arena.resize(r.b * cap);
    for (size_t u = 0; u < r.b; ++u) heaps.emplace_back(r.k, arena.data() + u * cap, cap);
    const size_t tile = tile_items(r.d);
    scores.resize(kUserGroup * tile);
    if (!r.panels) packed.resize(panel_count(tile) * panel_floats(r.d));
    idx.resize(tile);
    if (r.excl_offsets) excl_pos.resize(r.b);
    started = true;
  }

  // Rows [lo, hi), after every row below lo this member has seen.
  void run(size_t lo, size_t hi) {
    if (!started) start();
    const ScoreRequest& r = *req;
    const size_t b = r.b, d = r.d;
    const size_t tile = tile_items(d);
    if (r.excl_offsets) {
      for (size_t u = 0; u < b; ++u) {
        const int32_t* first = r.excl_rows + r.excl_offsets[u];
        const int32_t* last = r.excl_rows + r.excl_offsets[u + 1];
        excl_pos[u] = static_cast<size_t>(std::lower_bound(first, last, static_cast<int32_t>(lo)) - r.excl_rows);
      }
    }
    const float neg_inf = -INFINITY;
    for (size_t t0 = lo; t0 < hi; t0 += tile) {
      const size_t nt = std::min(tile, hi - t0);
      if (r.eligible && !range_has_eligible(r.eligible, t0, t0 + nt)) continue;
      const float* bias = r.bias ? r.bias + t0 : nullptr;
      // Packed panels stream as they lie (tiles start at multiples of kPanel); without them,
      // the tile is packed once for every user of the call.
      const float* tile_panels = r.panels ? r.panels + (t0 / kPanel) * panel_floats(d) : packed.data();
      if (!r.panels) pack_panels(kern->isa, r.items + t0 * d, nt, d, d, packed.data());
      for (size_t g = 0; g < b; g += kUserGroup) {
        const size_t nu = std::min(kUserGroup, b - g);
        kern->gemm_panels(r.users + g * d, d, nu, tile_panels, d, nt, nullptr, 0, bias, scores.data(), tile);
        if (r.eligible) {
          for (size_t j = 0; j < nt; ++j) {
            size_t row = t0 + j;
            if (!((r.eligible[row >> 6] >> (row & 63)) & 1)) {
              for (size_t q = 0; q < nu; ++q) scores[q * tile + j] = neg_inf;
            }
          }
        }
        for (size_t q = 0; q < nu; ++q) {
          const size_t u = g + q;
          float* s = scores.data() + q * tile;
          if (r.excl_offsets) {
            size_t& pos = excl_pos[u];
            const size_t end = static_cast<size_t>(r.excl_offsets[u + 1]);
            // Tiles skipped for having no eligible row leave rows below t0 behind the cursor.
            while (pos < end && static_cast<size_t>(r.excl_rows[pos]) < t0 + nt) {
              const size_t row = static_cast<size_t>(r.excl_rows[pos]);
              if (row >= t0) s[row - t0] = neg_inf;
              ++pos;
            }
          }
          TopK& h = heaps[u];
          size_t c = kern->select_gt(s, nt, h.threshold(), idx.data());
          for (size_t i = 0; i < c; ++i) {
            h.push(s[idx[i]], static_cast<int32_t>(t0 + idx[i]));
          }
        }
      }
    }
  }

  void finish() {
    kept.assign(req->b, 0);
    if (!started) return;
    for (size_t u = 0; u < req->b; ++u) kept[u] = heaps[u].finish();
  }
};

}  // namespace

void score_topk(const ScoreRequest& r, int32_t* out_rows, float* out_scores) {
  if (r.b == 0) return;
  if (r.d == 0) throw InvalidArgument("dim must be positive");
  if (r.n == 0) throw OutOfRange("the catalogue has no items");
  if (r.k == 0 || r.k > r.n) throw OutOfRange("k must be in 1..n, got " + std::to_string(r.k));
  if (r.n > static_cast<size_t>(INT32_MAX)) throw OutOfRange("catalogue larger than 2^31-1 rows");
  if (!r.panels && !r.items) throw InvalidArgument("the request has neither panels nor items");
  const Kernels& kern = kernels_for(r.isa);

  // Rows are cut into blocks that members claim in ascending order from a shared counter: the
  // caller starts at once, helpers join when they wake, and nobody waits for a late one. Blocks
  // are a few tiles at least, and several per thread so that work evens out.
  const size_t tile = tile_items(r.d);
  size_t threads = static_cast<size_t>(std::max(1, r.threads));
  if (r.team) threads = std::min(threads, r.team->size());
  else threads = 1;
  size_t block = std::max<size_t>(4 * tile, (r.n + 8 * threads - 1) / (8 * threads));
  block = (block + kPanel - 1) & ~(kPanel - 1);  // blocks and tiles start on panel boundaries
  const size_t nblocks = (r.n + block - 1) / block;
  if (nblocks < 2) threads = 1;
  const size_t cap = std::max<size_t>(2 * r.k, r.k + 16);

  std::vector<Worker> workers(threads);
  for (Worker& w : workers) {
    w.req = &r;
    w.kern = &kern;
    w.cap = cap;
  }
  parallel_blocks(r.team, threads, nblocks, [&](size_t member, size_t bi) {
    workers[member].run(bi * block, std::min(r.n, (bi + 1) * block));
  });
  for (Worker& w : workers) w.finish();

  std::vector<std::pair<const Scored*, size_t>> parts(threads);
  for (size_t u = 0; u < r.b; ++u) {
    for (size_t t = 0; t < threads; ++t) {
      parts[t] = {workers[t].started ? workers[t].heaps[u].data() : nullptr, workers[t].kept[u]};
    }
    merge_topk(parts, r.k, out_rows + u * r.k, out_scores + u * r.k);
  }
}

std::vector<uint64_t> build_eligibility(size_t n, bool use_allow, const int32_t* allow,
                                        size_t allow_count, const uint32_t* attributes, uint32_t all,
                                        uint32_t any, uint32_t none) {
  const size_t words = (n + 63) / 64;
  std::vector<uint64_t> bits(words, use_allow ? 0 : ~uint64_t{0});
  if (!use_allow && words) {
    size_t rem = n & 63;
    if (rem) bits[words - 1] = (uint64_t{1} << rem) - 1;
  }
  if (use_allow) {
    for (size_t i = 0; i < allow_count; ++i) {
      int32_t row = allow[i];
      if (row < 0 || static_cast<size_t>(row) >= n) {
        throw OutOfRange("allow[" + std::to_string(i) + "] = " + std::to_string(row) +
                         " is not a row of the catalogue (0.." + std::to_string(n - 1) + ")");
      }
      bits[static_cast<size_t>(row) >> 6] |= uint64_t{1} << (row & 63);
    }
  }
  if (attributes) {
    for (size_t j = 0; j < n; ++j) {
      uint32_t a = attributes[j];
      bool ok = (a & all) == all && (any == 0 || (a & any) != 0) && (a & none) == 0;
      if (!ok) bits[j >> 6] &= ~(uint64_t{1} << (j & 63));
    }
  }
  return bits;
}

void prepare_exclusions(const int32_t* offsets, int32_t* rows, size_t b, size_t n) {
  for (size_t u = 0; u < b; ++u) {
    int32_t* first = rows + offsets[u];
    int32_t* last = rows + offsets[u + 1];
    for (int32_t* p = first; p != last; ++p) {
      if (*p < 0 || static_cast<size_t>(*p) >= n) {
        throw OutOfRange("exclude[" + std::to_string(u) + "][" + std::to_string(p - first) +
                         "] = " + std::to_string(*p) + " is not a row of the catalogue (0.." +
                         std::to_string(n - 1) + ")");
      }
    }
    std::sort(first, last);
  }
}

}  // namespace recscore
