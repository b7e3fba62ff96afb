// Direct convolution forward: see direct_conv.hpp.
#include "signcore/direct_conv.hpp"

#include <algorithm>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SIGNCORE_DIRECT_CONV 1
#endif

namespace signcore {

#ifdef SIGNCORE_DIRECT_CONV

namespace {

// The input position that output position o reads through kernel tap k along axis a; outside
// [0, a.in) it falls in the padding.
long tap(const ConvAxis& a, std::size_t o, std::size_t k) {
  return static_cast<long>(o * a.stride + k * a.dilation) - static_cast<long>(a.pad_before);
}
bool inside(const ConvAxis& a, long i) { return i >= 0 && i < static_cast<long>(a.in); }

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

// One block: output pixels [ow, ow + P) of line (n, od, oh), filters [f0, f0 + 8V); Wp is the
// kernel packed for this filter block: (kd kh kw, C, 8V).
template <int P, int V>
void block(const ConvGeometry& g, const float* x, const float* Wp, const float* b, bool relu,
           std::size_t F, std::size_t n, std::size_t od, std::size_t oh, std::size_t ow,
           std::size_t f0, const float* zeros, float* y_line) {
  const std::size_t C = g.channels;
  __m256 acc[P][V];
  for (int v = 0; v < V; ++v) {
    const __m256 init = b ? _mm256_loadu_ps(b + f0 + 8 * v) : _mm256_setzero_ps();
    for (int p = 0; p < P; ++p) acc[p][v] = init;
  }
  const float* xp[P];
  for (std::size_t kd = 0; kd < g.d.kernel; ++kd) {
    const long id = tap(g.d, od, kd);
    if (!inside(g.d, id)) continue;
    for (std::size_t kh = 0; kh < g.h.kernel; ++kh) {
      const long ih = tap(g.h, oh, kh);
      if (!inside(g.h, ih)) continue;
      const float* row = x + ((n * g.d.in + static_cast<std::size_t>(id)) * g.h.in + static_cast<std::size_t>(ih)) * g.w.in * C;
      for (std::size_t kw = 0; kw < g.w.kernel; ++kw) {
        for (int p = 0; p < P; ++p) {
          const long iw = tap(g.w, ow + p, kw);
          xp[p] = inside(g.w, iw) ? row + static_cast<std::size_t>(iw) * C : zeros;
        }
        const float* w = Wp + ((kd * g.h.kernel + kh) * g.w.kernel + kw) * C * 8 * V;
        accumulate<P, V>(xp, w, C, acc);
      }
    }
  }
  const __m256 zero = _mm256_setzero_ps();
  for (int p = 0; p < P; ++p)
    for (int v = 0; v < V; ++v)
      _mm256_storeu_ps(y_line + (ow + p) * F + f0 + 8 * v, relu ? _mm256_max_ps(acc[p][v], zero) : acc[p][v]);
}

// block<R, V> for a run-time R in [1, 11].
template <int V, int R = 1>
void remainder(std::size_t r, const ConvGeometry& g, const float* x, const float* wp, const float* b,
               bool relu, std::size_t F, std::size_t n, std::size_t od, std::size_t oh,
               std::size_t ow, std::size_t f0, const float* zeros, float* y_line) {
  if constexpr (R < 12) {
    if (r == R) return block<R, V>(g, x, wp, b, relu, F, n, od, oh, ow, f0, zeros, y_line);
    remainder<V, R + 1>(r, g, x, wp, b, relu, F, n, od, oh, ow, f0, zeros, y_line);
  }
}

// A whole line with 8V filters per block: P pixels at a time, then the rest. Wp: the kernel
// packed as (F / 8V, kd kh kw, C, 8V), so each filter block's kernel is one contiguous stream.
template <int P, int V>
void line(const ConvGeometry& g, const float* x, const float* Wp, const float* b, bool relu,
          std::size_t F, std::size_t l, const float* zeros, float* y) {
  const std::size_t per_sample = g.lines(), n = l / per_sample, r = l % per_sample;
  const std::size_t od = r / g.h.out, oh = r % g.h.out, OW = g.w.out;
  const std::size_t block_size = g.patch() * 8 * V;
  float* y_line = y + l * OW * F;
  for (std::size_t f0 = 0; f0 < F; f0 += 8 * V) {
    const float* wp = Wp + (f0 / (8 * V)) * block_size;
    std::size_t ow = 0;
    for (; ow + P <= OW; ow += P) block<P, V>(g, x, wp, b, relu, F, n, od, oh, ow, f0, zeros, y_line);
    // The remaining pixels as one narrower block (one pixel at a time would leave the FMA
    // pipelines waiting on each accumulator's latency).
    if (ow < OW) remainder<V>(OW - ow, g, x, wp, b, relu, F, n, od, oh, ow, f0, zeros, y_line);
  }
}

// The filter-block width 8V for F filters.
std::size_t block_width(std::size_t F) { return F % 16 == 0 ? 16 : 8; }

}  // namespace

bool direct_conv_supported(const ConvGeometry& g, std::size_t filters) {
  return filters > 0 && filters % 8 == 0 && g.channels > 0;
}

void direct_conv_pack(const ConvGeometry& g, const float* W, std::size_t F, float* packed) {
  const std::size_t K = g.patch(), B = block_width(F);
  for (std::size_t f0 = 0; f0 < F; f0 += B)
    for (std::size_t k = 0; k < K; ++k)
      std::copy(W + k * F + f0, W + k * F + f0 + B, packed + (f0 / B) * K * B + k * B);
}

void direct_conv_lines(const ConvGeometry& g, const float* x, const float* W, const float* b,
                       bool relu, std::size_t F, std::size_t l0, std::size_t l1, float* y) {
  thread_local std::vector<float> zeros;  // one input row's worth of padding
  if (zeros.size() < g.channels) zeros.assign(g.channels, 0.f);
  for (std::size_t l = l0; l < l1; ++l) {
    // 12 accumulators + the kernel vectors + one broadcast fit AVX2's 16 registers: 6 pixels x
    // 16 filters, or 12 x 8. (3 x 32 needs 17, and the compiler then re-loads the kernel for
    // every FMA: measured 30% slower.)
    if (block_width(F) == 16) line<6, 2>(g, x, W, b, relu, F, l, zeros.data(), y);
    else line<12, 1>(g, x, W, b, relu, F, l, zeros.data(), y);
  }
}

void direct_conv_pack_transposed(const ConvGeometry& g, const float* W, std::size_t F, float* packed) {
  const std::size_t taps = g.d.kernel * g.h.kernel * g.w.kernel, C = g.channels;
  thread_local std::vector<float> flipped;  // (taps, F, C)
  flipped.resize(taps * F * C);
  // Reversing the flat tap index flips every spatial axis at once.
  for (std::size_t t = 0; t < taps; ++t) {
    const float* src = W + t * C * F;
    float* dst = flipped.data() + (taps - 1 - t) * F * C;
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t f = 0; f < F; ++f) dst[f * C + c] = src[c * F + f];
  }
  direct_conv_pack(transposed_geometry(g, F), flipped.data(), C, packed);
}

#else  // no AVX2 + FMA: callers keep im2col + SGEMM

bool direct_conv_supported(const ConvGeometry&, std::size_t) { return false; }
void direct_conv_pack(const ConvGeometry&, const float*, std::size_t, float*) {}
void direct_conv_lines(const ConvGeometry&, const float*, const float*, const float*, bool,
                       std::size_t, std::size_t, std::size_t, float*) {}
void direct_conv_pack_transposed(const ConvGeometry&, const float*, std::size_t, float*) {}

#endif

ConvGeometry transposed_geometry(const ConvGeometry& g, std::size_t filters) {
  ConvGeometry t;
  ConvAxis* to[3] = {&t.d, &t.h, &t.w};
  const ConvAxis* from[3] = {&g.d, &g.h, &g.w};
  for (int a = 0; a < 3; ++a) {
    const ConvAxis& f = *from[a];
    ConvAxis& r = *to[a];
    r.in = f.out;
    r.out = f.in;
    r.kernel = f.kernel;
    r.stride = 1;
    r.dilation = f.dilation;
    r.pad_before = f.span() - 1 - f.pad_before;  // pad_before <= span - 1 for valid and same
  }
  t.channels = filters;
  return t;
}

}  // namespace signcore
