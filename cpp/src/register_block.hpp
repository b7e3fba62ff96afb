// The register block shared by the direct convolution (direct_conv.cpp) and the Winograd
// convolution (winograd.cpp): P rows of an input matrix against a panel of 8V columns, the
// P x 8V results held in AVX2 registers. Internal to the kernels; AVX2 + FMA builds only.
#pragma once

#include <immintrin.h>

#include <cstddef>

namespace signcore {

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

}  // namespace signcore
