// The register blocks shared by the direct convolution (direct_conv.cpp) and the Winograd
// convolution (winograd.cpp), their results held in AVX2 registers: `accumulate`, P rows of an
// input matrix against a panel of 8V columns; `gradient_tap`, a (channels x filters) product summed
// over pixels (or tiles), R channels x 8V filters at a time. Internal to the kernels; AVX2 + FMA
// builds only.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace signcore {
// Internal linkage: each kernel file compiles its own copies, specialised and inlined for its
// callers (shared inline functions measured 1.7 times slower in the direct kernel gradient).
namespace {

// acc[p][v] += x_p[c] * w[c, 8v .. 8v + 8) for c in [0, C): P pixels (their input rows xp, or a
// row of zeros in the padding) against 8V filters of the packed kernel rows w (8V apart).
template <int P, int V>
inline void accumulate(const float* const* xp, const float* w, std::size_t C, __m256 (&acc)[P][V]) {
  // A local copy the compiler can keep in registers: `acc` itself might alias the loads.
  __m256 a[P][V];
  const float* r[P];
  for (int p = 0; p < P; ++p) {
    r[p] = xp[p];
    for (int v = 0; v < V; ++v) a[p][v] = acc[p][v];
  }
  for (std::size_t c = 0; c < C; ++c) {
    __m256 wv[V];
    for (int v = 0; v < V; ++v) wv[v] = _mm256_loadu_ps(w + c * 8 * V + 8 * v);
    for (int p = 0; p < P; ++p) {
      const __m256 xb = _mm256_broadcast_ss(r[p] + c);
      for (int v = 0; v < V; ++v) a[p][v] = _mm256_fmadd_ps(xb, wv[v], a[p][v]);
    }
  }
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v) acc[p][v] = a[p][v];
}

// The most runs gradient_tap takes at once.
constexpr std::size_t kMaxRuns = 32;

// One stretch of pixels of a line that tap k reads inside the input: `count` pixels, starting at
// input row x (channel 0) and dz row dz; successive pixels are x_step and F floats apart. (For
// Winograd: `count` tiles of the transformed input and output gradient at one position.)
struct Run {
  const float* x;
  const float* dz;
  std::size_t count;
};

// dW[0 .. R)[0 .. 8V) (rows F apart) += sum over the runs' pixels of x[c0 + r] dz[f0 + 8v ...].
template <int R, int V>
void gradient_block(const Run* runs, std::size_t n_runs, std::size_t x_step, std::size_t F,
                    float* dW) {
  __m256 acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = _mm256_loadu_ps(dW + r * F + 8 * v);
  for (std::size_t i = 0; i < n_runs; ++i) {
    const float* xp = runs[i].x;
    const float* dp = runs[i].dz;
    for (std::size_t q = runs[i].count; q > 0; --q, xp += x_step, dp += F) {
      __m256 d[V];
      for (int v = 0; v < V; ++v) d[v] = _mm256_loadu_ps(dp + 8 * v);
      for (int r = 0; r < R; ++r) {
        const __m256 xb = _mm256_broadcast_ss(xp + r);
        for (int v = 0; v < V; ++v) acc[r][v] = _mm256_fmadd_ps(xb, d[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) _mm256_storeu_ps(dW + r * F + 8 * v, acc[r][v]);
}

// gradient_block<r, V> for a run-time r in [1, R).
template <int R, int V, int r = 1>
void gradient_remainder(std::size_t rest, const Run* runs, std::size_t n_runs, std::size_t x_step,
                        std::size_t F, float* dW) {
  if constexpr (r < R) {
    if (rest == r) return gradient_block<r, V>(runs, n_runs, x_step, F, dW);
    gradient_remainder<R, V, r + 1>(rest, runs, n_runs, x_step, F, dW);
  }
}

// All channels of one tap against the filters [f0, f0 + 8V) over a tile's runs, R channels at a
// time (runs[i].dz points at filter 0).
template <int R, int V>
void gradient_tap(const Run* runs, std::size_t n_runs, std::size_t x_step, std::size_t C,
                  std::size_t F, std::size_t f0, float* dW_tap) {
  Run shifted[kMaxRuns];
  std::size_t c0 = 0;
  for (; c0 + R <= C; c0 += R) {
    for (std::size_t i = 0; i < n_runs; ++i) shifted[i] = {runs[i].x + c0, runs[i].dz + f0, runs[i].count};
    gradient_block<R, V>(shifted, n_runs, x_step, F, dW_tap + c0 * F + f0);
  }
  if (c0 < C) {
    for (std::size_t i = 0; i < n_runs; ++i) shifted[i] = {runs[i].x + c0, runs[i].dz + f0, runs[i].count};
    gradient_remainder<R, V>(C - c0, shifted, n_runs, x_step, F, dW_tap + c0 * F + f0);
  }
}

}  // namespace
}  // namespace signcore
