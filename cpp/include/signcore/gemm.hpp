// Matrix products on signcore's own threads.
//
// OpenBLAS (Debian's pthread build) runs a product on its own thread pool, whose workers then spin
// (sched_yield) for about 0.1 s waiting for the next product. In a convolutional network those
// spinning workers compete for the cores with signcore's OpenMP loops for the rest of the step:
// profiled on the ASL model (2 cores), an OpenBLAS worker spent 11% of all CPU samples spinning.
// `sgemm` keeps image models on one pool: it cuts the output into one block of whole rows or whole
// columns per OpenMP thread, along the longer side (so the operand along that side is read once in
// all), and each block is one single-threaded OpenBLAS call.
#pragma once

#include <cstddef>

namespace signcore {

// C (m x n, row-major, leading dimension ldc) = alpha op(A) op(B) + beta C, where op(A) is m x k
// and op(B) is k x n; trans_a / trans_b say that A is stored k x m / B is stored n x k (cblas's
// CblasRowMajor conventions). Must not be called from inside a parallel region.
void sgemm(bool trans_a, bool trans_b, std::size_t m, std::size_t n, std::size_t k, float alpha,
           const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta, float* c,
           std::size_t ldc);

}  // namespace signcore
