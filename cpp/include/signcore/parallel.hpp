// Threading policy: one thread count for OpenBLAS and for signcore's own OpenMP loops. A BLAS call
// made from inside a parallel loop runs under SingleThreadedBlas (each OpenMP thread its own
// single-threaded product), so the two pools never work at once. Dense and the convolutions go
// further and never use OpenBLAS's pool at all (gemm.hpp); the recurrent layers still do.
#pragma once

#include <cstddef>
#include <string>

namespace signcore {

void set_num_threads(int n);
int get_num_threads();

// Name and version of the BLAS actually linked (from OpenBLAS itself).
std::string blas_info();

// OpenBLAS runs single-threaded while one of these lives (each of signcore's threads then makes its
// own single-threaded BLAS calls), and goes back to the configured thread count afterwards.
struct SingleThreadedBlas {
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;
};

// Run fn(begin, end) over [0, n) split into contiguous chunks across the configured threads.
// Falls back to a single call when n is small (grain) or one thread is configured.
template <class Fn>
void parallel_for(std::size_t n, std::size_t grain, Fn&& fn);

}  // namespace signcore

#include "signcore/parallel_impl.hpp"
