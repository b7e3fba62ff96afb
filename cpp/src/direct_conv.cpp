// Direct convolution forward: see direct_conv.hpp.
#include "signcore/direct_conv.hpp"

#include <algorithm>
#include <cstdint>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SIGNCORE_DIRECT_CONV 1
#include "register_block.hpp"
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
  const bool contiguous_taps = g.w.dilation == 1 && C < 8;
  for (std::size_t kd = 0; kd < g.d.kernel; ++kd) {
    const long id = tap(g.d, od, kd);
    if (!inside(g.d, id)) continue;
    for (std::size_t kh = 0; kh < g.h.kernel; ++kh) {
      const long ih = tap(g.h, oh, kh);
      if (!inside(g.h, ih)) continue;
      const float* row = x + ((n * g.d.in + static_cast<std::size_t>(id)) * g.h.in + static_cast<std::size_t>(ih)) * g.w.in * C;
      const float* w_row = Wp + (kd * g.h.kernel + kh) * g.w.kernel * C * 8 * V;
      if (contiguous_taps) {
        // Few channels (an RGB or grey input): undilated along the width and inside it, the kw
        // taps of a pixel read one stretch of KW C consecutive floats, run as one loop of 9 values
        // instead of 3 loops of 3. (With many channels the loops are long already, and the one
        // long loop measured slower.)
        const long first = tap(g.w, ow, 0), last = tap(g.w, ow + P - 1, g.w.kernel - 1);
        if (first >= 0 && inside(g.w, last)) {
          for (int p = 0; p < P; ++p) xp[p] = row + static_cast<std::size_t>(tap(g.w, ow + p, 0)) * C;
          accumulate<P, V>(xp, w_row, g.w.kernel * C, acc);
          continue;
        }
      }
      for (std::size_t kw = 0; kw < g.w.kernel; ++kw) {
        for (int p = 0; p < P; ++p) {
          const long iw = tap(g.w, ow + p, kw);
          xp[p] = inside(g.w, iw) ? row + static_cast<std::size_t>(iw) * C : zeros;
        }
        accumulate<P, V>(xp, w_row + kw * C * 8 * V, C, acc);
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

// A whole line l with 8V filters per block, written at y_line: P pixels at a time, then the rest.
// Wp: the kernel packed as (F / 8V, kd kh kw, C, 8V), so each filter block's kernel is one
// contiguous stream.
template <int P, int V>
void line(const ConvGeometry& g, const float* x, const float* Wp, const float* b, bool relu,
          std::size_t F, std::size_t l, const float* zeros, float* y_line) {
  const std::size_t per_sample = g.lines(), n = l / per_sample, r = l % per_sample;
  const std::size_t od = r / g.h.out, oh = r % g.h.out, OW = g.w.out;
  const std::size_t block_size = g.patch() * 8 * V;
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

// ----- kernel gradient ---------------------------------------------------------------------------
//
// dW(k, c, f) += sum over pixels p of x_p(k, c) dz(p, f), where x_p(k, .) is the input row that
// output pixel p reads through tap k. Per tap, a block of R channels x 8V filters is held in
// registers and runs over the pixels of a tile of lines: one kernel-row load of dz per 8 filters,
// one broadcast per channel, R V FMAs per pixel.

// Lines per tile: enough for 32 to kTilePixels pixels (fewer with more channels: 3072 / C), so the
// accumulators are loaded and stored once per tile and the tile's dz columns and input rows stay
// in L1 while every tap runs over them.
constexpr std::size_t kTilePixels = 96, kMaxTileLines = 16;
static_assert(kMaxRuns >= 2 * kMaxTileLines, "a line has at most two stretches per tap");

}  // namespace

void direct_conv_window_extremes(const float* lines, std::size_t rows, std::size_t h0, std::size_t OW,
                                 std::size_t w0, std::size_t w1, std::size_t F, const float* sign,
                                 float* values, std::int32_t* at) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (std::size_t f0 = 0; f0 < F; f0 += 8) {
    const __m256 s = _mm256_loadu_ps(sign + f0);
    __m256 best_v = _mm256_loadu_ps(lines + w0 * F + f0);
    __m256 best_t = _mm256_mul_ps(s, best_v);
    __m256i best_at =
        _mm256_add_epi32(lane, _mm256_set1_epi32(static_cast<int>((h0 * OW + w0) * F + f0)));
    for (std::size_t h = 0; h < rows; ++h)
      for (std::size_t w = h == 0 ? w0 + 1 : w0; w < w1; ++w) {
        const __m256 v = _mm256_loadu_ps(lines + (h * OW + w) * F + f0);
        const __m256 t = _mm256_mul_ps(s, v);
        // t > best, or t is a NaN (MaxPooling's rule: a NaN takes over and stays)
        const __m256 take =
            _mm256_or_ps(_mm256_cmp_ps(t, best_t, _CMP_GT_OQ), _mm256_cmp_ps(t, t, _CMP_UNORD_Q));
        best_t = _mm256_blendv_ps(best_t, t, take);
        best_v = _mm256_blendv_ps(best_v, v, take);
        const int off = static_cast<int>(((h0 + h) * OW + w) * F + f0);
        const __m256 at_here = _mm256_castsi256_ps(_mm256_add_epi32(lane, _mm256_set1_epi32(off)));
        best_at = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(best_at), at_here, take));
      }
    _mm256_storeu_ps(values + f0, best_v);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(at + f0), best_at);
  }
}

void direct_conv_line_sums(const float* y, std::size_t pixels, std::size_t F, const float* shift,
                           double* sums) {
  for (std::size_t f0 = 0; f0 < F; f0 += 8) {
    const __m256 k = _mm256_loadu_ps(shift + f0);
    // Four independent pairs of accumulators: one add per pixel would wait on the last.
    __m256 a1[4], a2[4];
    for (int u = 0; u < 4; ++u) a1[u] = a2[u] = _mm256_setzero_ps();
    std::size_t p = 0;
    for (; p + 4 <= pixels; p += 4)
      for (int u = 0; u < 4; ++u) {
        const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + (p + u) * F + f0), k);
        a1[u] = _mm256_add_ps(a1[u], d);
        a2[u] = _mm256_fmadd_ps(d, d, a2[u]);
      }
    for (; p < pixels; ++p) {
      const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(y + p * F + f0), k);
      a1[0] = _mm256_add_ps(a1[0], d);
      a2[0] = _mm256_fmadd_ps(d, d, a2[0]);
    }
    alignas(32) float t1[8], t2[8];
    _mm256_store_ps(t1, _mm256_add_ps(_mm256_add_ps(a1[0], a1[1]), _mm256_add_ps(a1[2], a1[3])));
    _mm256_store_ps(t2, _mm256_add_ps(_mm256_add_ps(a2[0], a2[1]), _mm256_add_ps(a2[2], a2[3])));
    for (int i = 0; i < 8; ++i) {
      sums[f0 + i] = t1[i];
      sums[F + f0 + i] = t2[i];
    }
  }
}

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
    float* y_line = y + (l - l0) * g.w.out * F;
    // 12 accumulators + the kernel vectors + one broadcast fit AVX2's 16 registers: 6 pixels x
    // 16 filters, or 12 x 8. (3 x 32 needs 17, and the compiler then re-loads the kernel for
    // every FMA: measured 30% slower.)
    if (block_width(F) == 16) line<6, 2>(g, x, W, b, relu, F, l, zeros.data(), y_line);
    else line<12, 1>(g, x, W, b, relu, F, l, zeros.data(), y_line);
  }
}

void direct_conv_kernel_gradient(const ConvGeometry& g, const float* x, const float* dz,
                                 std::size_t F, std::size_t l0, std::size_t l1, float* dW) {
  const std::size_t C = g.channels, OW = g.w.out, KW = g.w.kernel, per_sample = g.lines();
  const std::size_t tile_pixels = std::clamp<std::size_t>(3072 / C, 32, kTilePixels);
  const std::size_t tile = std::min(kMaxTileLines, std::max<std::size_t>(1, (tile_pixels + OW - 1) / OW));
  const std::size_t x_step = g.w.stride * C;
  // The output pixels [lo[kw], hi[kw]) whose tap kw falls inside the input width.
  std::vector<std::size_t> lo(KW), hi(KW);
  for (std::size_t kw = 0; kw < KW; ++kw) {
    const long off = static_cast<long>(kw * g.w.dilation) - static_cast<long>(g.w.pad_before);
    const long s = static_cast<long>(g.w.stride), in = static_cast<long>(g.w.in);
    const long first = off >= 0 ? 0 : (-off + s - 1) / s;
    const long last = in - 1 - off < 0 ? -1 : (in - 1 - off) / s;  // the last pixel inside
    lo[kw] = static_cast<std::size_t>(std::min<long>(first, static_cast<long>(OW)));
    hi[kw] = static_cast<std::size_t>(std::clamp<long>(last + 1, static_cast<long>(lo[kw]), static_cast<long>(OW)));
  }
  // Undilated along the width, the pixels [full_lo, full_hi) read all KW taps inside the input,
  // as one stretch of KW C consecutive floats against KW C consecutive rows of dW: those run as
  // one tap of KW C channels (3 x 3 = 9 for an RGB input instead of 3), the rest tap by tap.
  std::size_t full_lo = 0, full_hi = 0;
  if (g.w.dilation == 1) {
    full_lo = lo[0];
    full_hi = std::max(full_lo, hi[KW - 1]);
  }
  // The input row a line reads through (kd, kh), or null in the padding.
  auto input_row = [&](std::size_t l, std::size_t kd, std::size_t kh) -> const float* {
    const std::size_t n = l / per_sample, r = l % per_sample;
    const long id = tap(g.d, r / g.h.out, kd), ih = tap(g.h, r % g.h.out, kh);
    if (!inside(g.d, id) || !inside(g.h, ih)) return nullptr;
    return x + ((n * g.d.in + static_cast<std::size_t>(id)) * g.h.in + static_cast<std::size_t>(ih)) * g.w.in * C;
  };
  // Filter blocks of B = 8V: 3 channels x 32 filters when the channels are few, else 6 x 16 or
  // 12 x 8 (12 accumulators each).
  const bool few = F % 32 == 0 && (full_lo < full_hi ? KW * C : C) < 6;
  const std::size_t B = few ? 32 : F % 16 == 0 ? 16 : 8;
  std::size_t f0 = 0;
  auto run_tap = [&](const Run* runs, std::size_t n_runs, std::size_t channels, float* dW_tap) {
    if (n_runs == 0) return;
    if (B == 32) gradient_tap<3, 4>(runs, n_runs, x_step, channels, F, f0, dW_tap);
    else if (B == 16) gradient_tap<6, 2>(runs, n_runs, x_step, channels, F, f0, dW_tap);
    else gradient_tap<12, 1>(runs, n_runs, x_step, channels, F, f0, dW_tap);
  };
  Run runs[kMaxRuns];
  // Per tile, one filter block at a time over every tap: the tile's dz columns of that block
  // (tile pixels x B floats) stay in L1 while all the taps and channels run over them.
  for (std::size_t t0 = l0; t0 < l1; t0 += tile) {
    const std::size_t t1 = std::min(l1, t0 + tile);
    for (f0 = 0; f0 < F; f0 += B) {
      for (std::size_t kd = 0; kd < g.d.kernel; ++kd)
        for (std::size_t kh = 0; kh < g.h.kernel; ++kh) {
          float* dW_row = dW + (kd * g.h.kernel + kh) * KW * C * F;  // taps (kd, kh, 0 .. KW)
          std::size_t n_runs = 0;
          if (full_lo < full_hi) {
            const std::size_t iw = static_cast<std::size_t>(tap(g.w, full_lo, 0));
            for (std::size_t l = t0; l < t1; ++l)
              if (const float* row = input_row(l, kd, kh))
                runs[n_runs++] = {row + iw * C, dz + ((l - l0) * OW + full_lo) * F, full_hi - full_lo};
            run_tap(runs, n_runs, KW * C, dW_row);
          }
          // Tap by tap, the pixels outside [full_lo, full_hi) (all of them when dilated).
          for (std::size_t kw = 0; kw < KW; ++kw) {
            const std::size_t stretch[2][2] = {{lo[kw], std::min(hi[kw], full_lo)},
                                               {std::max(lo[kw], full_hi), hi[kw]}};
            n_runs = 0;
            for (std::size_t l = t0; l < t1; ++l) {
              const float* row = input_row(l, kd, kh);
              if (!row) continue;
              for (const auto& [a, e] : stretch)
                if (a < e)
                  runs[n_runs++] = {row + static_cast<std::size_t>(tap(g.w, a, kw)) * C,
                                    dz + ((l - l0) * OW + a) * F, e - a};
            }
            run_tap(runs, n_runs, C, dW_row + kw * C * F);
          }
        }
    }
  }
}

void direct_conv_pack_transposed(const ConvGeometry& g, const float* W, std::size_t F, float* packed) {
  thread_local std::vector<float> flipped;  // (taps, F, C)
  flipped.resize(g.patch() * F);
  flip_transposed_kernel(g, W, F, flipped.data());
  direct_conv_pack(transposed_geometry(g, F), flipped.data(), g.channels, packed);
}

#else  // no AVX2 + FMA: callers keep im2col + SGEMM

bool direct_conv_supported(const ConvGeometry&, std::size_t) { return false; }
void direct_conv_window_extremes(const float*, std::size_t, std::size_t, std::size_t, std::size_t,
                                 std::size_t, std::size_t, const float*, float*, std::int32_t*) {}
void direct_conv_line_sums(const float*, std::size_t, std::size_t, const float*, double*) {}
void direct_conv_pack(const ConvGeometry&, const float*, std::size_t, float*) {}
void direct_conv_lines(const ConvGeometry&, const float*, const float*, const float*, bool,
                       std::size_t, std::size_t, std::size_t, float*) {}
void direct_conv_pack_transposed(const ConvGeometry&, const float*, std::size_t, float*) {}
void direct_conv_kernel_gradient(const ConvGeometry&, const float*, const float*, std::size_t,
                                 std::size_t, std::size_t, float*) {}

#endif

void flip_transposed_kernel(const ConvGeometry& g, const float* W, std::size_t F, float* flipped) {
  const std::size_t taps = g.d.kernel * g.h.kernel * g.w.kernel, C = g.channels;
  // Reversing the flat tap index flips every spatial axis at once.
  for (std::size_t t = 0; t < taps; ++t) {
    const float* src = W + t * C * F;
    float* dst = flipped + (taps - 1 - t) * F * C;
    for (std::size_t c = 0; c < C; ++c)
      for (std::size_t f = 0; f < F; ++f) dst[f * C + c] = src[c * F + f];
  }
}

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
