#include "signcore/gemm.hpp"

#include <cblas.h>

#include <algorithm>

#include "signcore/parallel.hpp"

namespace signcore {

namespace {

// One single call for the rows [r0, r1) and columns [c0, c1) of C.
void block(bool ta, bool tb, std::size_t r0, std::size_t r1, std::size_t c0, std::size_t c1, std::size_t k,
           float alpha, const float* a, std::size_t lda, const float* b, std::size_t ldb, float beta,
           float* c, std::size_t ldc) {
  const float* ab = ta ? a + r0 : a + r0 * lda;  // op(A)'s rows r0..: columns of a stored A^T
  const float* bb = tb ? b + c0 * ldb : b + c0;  // op(B)'s columns c0..: rows of a stored B^T
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              static_cast<int>(r1 - r0), static_cast<int>(c1 - c0), static_cast<int>(k), alpha, ab,
              static_cast<int>(lda), bb, static_cast<int>(ldb), beta, c + r0 * ldc + c0,
              static_cast<int>(ldc));
}

// Blocks are whole multiples of this many rows or columns (a multiple of OpenBLAS's register tiles
// on AVX2), so no thread gets a ragged tile that another could have finished in the same pass.
constexpr std::size_t kStep = 16;
// Below this many multiply-adds a product is one call on one thread: waking a second costs more.
constexpr std::size_t kMinParallelMacs = std::size_t{1} << 18;

}  // namespace

void sgemm(bool ta, bool tb, std::size_t m, std::size_t n, std::size_t k, float alpha, const float* a,
           std::size_t lda, const float* b, std::size_t ldb, float beta, float* c, std::size_t ldc) {
  if (m == 0 || n == 0) return;
  SingleThreadedBlas single;
  const bool by_columns = n >= m;
  const std::size_t side = by_columns ? n : m, steps = (side + kStep - 1) / kStep;
  if (get_num_threads() <= 1 || steps < 2 || m * n * k < kMinParallelMacs) {
    block(ta, tb, 0, m, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  parallel_for(steps, 1, [&](std::size_t s0, std::size_t s1) {
    const std::size_t lo = s0 * kStep, hi = std::min(side, s1 * kStep);
    if (by_columns) block(ta, tb, 0, m, lo, hi, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else block(ta, tb, lo, hi, 0, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  });
}

}  // namespace signcore
