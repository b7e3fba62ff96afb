#pragma once
#include <omp.h>

#include <algorithm>

namespace signcore {

template <class Fn>
void parallel_for(std::size_t n, std::size_t grain, Fn&& fn) {
  const int threads = get_num_threads();
  if (threads <= 1 || n < 2 * std::max<std::size_t>(grain, 1)) {
    if (n > 0) fn(std::size_t{0}, n);
    return;
  }
  const std::size_t chunks = std::min<std::size_t>(threads, n / std::max<std::size_t>(grain, 1));
#pragma omp parallel for num_threads(threads) schedule(static)
  for (std::ptrdiff_t c = 0; c < static_cast<std::ptrdiff_t>(chunks); ++c) {
    const std::size_t b = n * c / chunks, e = n * (c + 1) / chunks;
    fn(b, e);
  }
}

}  // namespace signcore
