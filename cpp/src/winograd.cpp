// Winograd convolution F(2x2, 3x3): see winograd.hpp.
#include "signcore/winograd.hpp"

#include <algorithm>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define SIGNCORE_WINOGRAD 1
#include "register_block.hpp"
#endif

namespace signcore {

std::size_t winograd_packed_size(const ConvGeometry& g, std::size_t filters) {
  return 16 * g.channels * filters;
}

std::size_t winograd_tile_rows(const ConvGeometry& g) { return (g.h.out + 1) / 2; }

std::size_t winograd_first_line(const ConvGeometry& g, std::size_t r) {
  const std::size_t rows = winograd_tile_rows(g);
  return r / rows * g.h.out + 2 * (r % rows);
}

namespace {
// The filter-panel width 8V for F filters (as the direct kernel's).
std::size_t panel_width(std::size_t F) { return F % 16 == 0 ? 16 : 8; }
}  // namespace

void winograd_pack(const ConvGeometry& g, const float* W, std::size_t F, float* packed) {
  const std::size_t C = g.channels, B = panel_width(F), panels = F / B;
  for (std::size_t c = 0; c < C; ++c)
    for (std::size_t f = 0; f < F; ++f) {
      // w(kh, kw) = W(kh, kw, c, f); t = G w (4 x 3), u = t G^T (4 x 4).
      float w[3][3], t[4][3];
      for (int kh = 0; kh < 3; ++kh)
        for (int kw = 0; kw < 3; ++kw) w[kh][kw] = W[((kh * 3 + kw) * C + c) * F + f];
      for (int k = 0; k < 3; ++k) {
        t[0][k] = w[0][k];
        t[1][k] = 0.5f * (w[0][k] + w[1][k] + w[2][k]);
        t[2][k] = 0.5f * (w[0][k] - w[1][k] + w[2][k]);
        t[3][k] = w[2][k];
      }
      for (int a = 0; a < 4; ++a) {
        const float u[4] = {t[a][0], 0.5f * (t[a][0] + t[a][1] + t[a][2]),
                            0.5f * (t[a][0] - t[a][1] + t[a][2]), t[a][2]};
        for (int b = 0; b < 4; ++b) {
          // Position p = 4a + b: one (C, B) panel per filter block, as the register block reads it.
          const std::size_t p = static_cast<std::size_t>(4 * a + b);
          packed[((p * panels + f / B) * C + c) * B + f % B] = u[b];
        }
      }
    }
}

void winograd_kernel_gradient_finish(const ConvGeometry& g, const float* acc, std::size_t F,
                                     float* dW) {
  const std::size_t CF = g.channels * F;
  for (std::size_t e = 0; e < CF; ++e) {  // e = c F + f
    // dW(., ., c, f) += G^T m G, m the 4 x 4 gradient of (G w G^T)
    float m[4][4], t[3][4];
    for (std::size_t p = 0; p < 16; ++p) m[p / 4][p % 4] = acc[p * CF + e];
    for (int b = 0; b < 4; ++b) {
      t[0][b] = m[0][b] + 0.5f * (m[1][b] + m[2][b]);
      t[1][b] = 0.5f * (m[1][b] - m[2][b]);
      t[2][b] = 0.5f * (m[1][b] + m[2][b]) + m[3][b];
    }
    for (std::size_t k = 0; k < 3; ++k) {
      dW[(3 * k) * CF + e] += t[k][0] + 0.5f * (t[k][1] + t[k][2]);
      dW[(3 * k + 1) * CF + e] += 0.5f * (t[k][1] - t[k][2]);
      dW[(3 * k + 2) * CF + e] += 0.5f * (t[k][1] + t[k][2]) + t[k][3];
    }
  }
}

#ifdef SIGNCORE_WINOGRAD

bool winograd_supported(const ConvGeometry& g, std::size_t filters) {
  return g.d.kernel == 1 && g.d.in == 1 && g.h.kernel == 3 && g.w.kernel == 3 && g.h.stride == 1 &&
         g.w.stride == 1 && g.h.dilation == 1 && g.w.dilation == 1 && g.channels > 0 &&
         g.channels % 8 == 0 && filters > 0 && filters % 8 == 0 && g.h.out > 0 && g.w.out > 0;
}

namespace {

// Transformed tiles and products of one block stay within about this many floats (192 KB, well
// inside the 512 KB L2 of the CPUs this was tuned on), so the 16 products read them from cache.
constexpr std::size_t kBlockFloats = 49152;

// V = B^T d B for the tile whose 4 x 4 input rows start at src[a][b] (null: padding), every
// channel, 8 at a time; position p = 4a + b goes to v + p * stride.
void input_transform(const float* const (&src)[4][4], std::size_t C, float* v, std::size_t stride) {
  const __m256 zero = _mm256_setzero_ps();
  for (std::size_t c = 0; c < C; c += 8) {
    __m256 d[4][4], e[4][4];
    for (int a = 0; a < 4; ++a)
      for (int b = 0; b < 4; ++b) d[a][b] = src[a][b] ? _mm256_loadu_ps(src[a][b] + c) : zero;
    for (int b = 0; b < 4; ++b) {  // B^T d: combinations of rows
      e[0][b] = _mm256_sub_ps(d[0][b], d[2][b]);
      e[1][b] = _mm256_add_ps(d[1][b], d[2][b]);
      e[2][b] = _mm256_sub_ps(d[2][b], d[1][b]);
      e[3][b] = _mm256_sub_ps(d[1][b], d[3][b]);
    }
    for (int a = 0; a < 4; ++a) {  // (B^T d) B: combinations of columns
      float* row = v + static_cast<std::size_t>(4 * a) * stride + c;
      _mm256_storeu_ps(row, _mm256_sub_ps(e[a][0], e[a][2]));
      _mm256_storeu_ps(row + stride, _mm256_add_ps(e[a][1], e[a][2]));
      _mm256_storeu_ps(row + 2 * stride, _mm256_sub_ps(e[a][2], e[a][1]));
      _mm256_storeu_ps(row + 3 * stride, _mm256_sub_ps(e[a][1], e[a][3]));
    }
  }
}

// m[i, 0 .. 8V) = sum over c of v[i, c] u[c, 0 .. 8V) for the R rows of v (C apart); m rows F apart.
template <int R, int V>
void product_block(const float* v, const float* u, std::size_t C, std::size_t F, float* m) {
  __m256 acc[R][V];
  const float* rows[R];
  for (int i = 0; i < R; ++i) {
    rows[i] = v + static_cast<std::size_t>(i) * C;
    for (int k = 0; k < V; ++k) acc[i][k] = _mm256_setzero_ps();
  }
  accumulate<R, V>(rows, u, C, acc);
  for (int i = 0; i < R; ++i)
    for (int k = 0; k < V; ++k) _mm256_storeu_ps(m + static_cast<std::size_t>(i) * F + 8 * k, acc[i][k]);
}

// product_block<r, V> for a run-time r in [1, R).
template <int R, int V, int r = 1>
void product_rest(std::size_t rest, const float* v, const float* u, std::size_t C, std::size_t F,
                  float* m) {
  if constexpr (r < R) {
    if (rest == r) return product_block<r, V>(v, u, C, F, m);
    product_rest<R, V, r + 1>(rest, v, u, C, F, m);
  }
}

// The 16 products of a block of `tiles` tiles: M[p] (tiles, F) = V[p] (tiles, C) U[p] (C, F),
// V[p] at v + p T C, M[p] at m + p T F, U[p] packed in (C, 8V) panels.
template <int P, int V>
void products(const float* v, const float* U, std::size_t tiles, std::size_t T, std::size_t C,
              std::size_t F, float* m) {
  const std::size_t B = 8 * V, panels = F / B;
  for (std::size_t p = 0; p < 16; ++p)
    for (std::size_t j = 0; j < panels; ++j) {
      const float* u = U + (p * panels + j) * C * B;
      const float* vp = v + p * T * C;
      float* mp = m + p * T * F + j * B;
      std::size_t t = 0;
      for (; t + P <= tiles; t += P) product_block<P, V>(vp + t * C, u, C, F, mp + t * F);
      if (t < tiles) product_rest<P, V>(tiles - t, vp + t * C, u, C, F, mp + t * F);
    }
}

// Tiles per block for C channels and F filters, a multiple of the P rows of the register block:
// the block's transformed tiles (16 T C floats) and products (16 T F) within kBlockFloats.
std::size_t block_tiles(std::size_t C, std::size_t F, std::size_t P) {
  return std::max(P, kBlockFloats / (16 * (C + F)) / P * P);
}

// Tiles per row of tiles: ceil(OW / 2).
std::size_t tile_columns(const ConvGeometry& g) { return (g.w.out + 1) / 2; }

// Tile q of the batch, counted row by row: sample n, tile row i, tile column j; its output cells
// start at pixel `first` of the output lines from base_line on (first = line OW + column), and
// `two_rows` / `two_cols` say whether its second row / column lies inside OH / OW.
struct Tile {
  std::size_t n, i, j, first;
  bool two_rows, two_cols;
};
Tile tile_at(const ConvGeometry& g, std::size_t q, std::size_t base_line) {
  const std::size_t OH = g.h.out, OW = g.w.out, rows = winograd_tile_rows(g);
  const std::size_t r = q / tile_columns(g), j = q % tile_columns(g), n = r / rows, i = r % rows;
  return {n, i, j, (n * OH + 2 * i - base_line) * OW + 2 * j, 2 * i + 1 < OH, 2 * j + 1 < OW};
}

// V = B^T d B for the tiles [q0, q0 + tiles) of the batch (counted row by row), tile q0 + t at
// v + t C, positions T C apart.
void transform_input_tiles(const ConvGeometry& g, const float* x, std::size_t q0, std::size_t tiles,
                           std::size_t T, float* v) {
  const std::size_t C = g.channels, H = g.h.in, W = g.w.in;
  const long pad_top = static_cast<long>(g.h.pad_before), pad_left = static_cast<long>(g.w.pad_before);
  for (std::size_t t = 0; t < tiles; ++t) {
    const Tile tile = tile_at(g, q0 + t, 0);
    const float* sample = x + tile.n * H * W * C;
    const float* src[4][4];
    for (int a = 0; a < 4; ++a) {
      const long ih = static_cast<long>(2 * tile.i) - pad_top + a;
      for (int c = 0; c < 4; ++c) {
        const long iw = static_cast<long>(2 * tile.j) - pad_left + c;
        const bool in = ih >= 0 && ih < static_cast<long>(H) && iw >= 0 && iw < static_cast<long>(W);
        src[a][c] = in ? sample + (static_cast<std::size_t>(ih) * W + static_cast<std::size_t>(iw)) * C : nullptr;
      }
    }
    input_transform(src, C, v + t * C, T * C);
  }
}

// This thread's block buffers: transformed tiles (16 T C floats) and products (16 T F).
struct BlockBuffers {
  float* v;
  float* m;
};
BlockBuffers block_buffers(std::size_t T, std::size_t C, std::size_t F) {
  thread_local std::vector<float> vbuf, mbuf;
  if (vbuf.size() < 16 * T * C) vbuf.resize(16 * T * C);
  if (mbuf.size() < 16 * T * F) mbuf.resize(16 * T * F);
  return {vbuf.data(), mbuf.data()};
}

}  // namespace

void winograd_conv_rows(const ConvGeometry& g, const float* x, const float* U, const float* b,
                        bool relu, std::size_t F, std::size_t row_begin, std::size_t row_end,
                        float* y) {
  const std::size_t C = g.channels, OW = g.w.out, TW = tile_columns(g);
  const bool wide = panel_width(F) == 16;
  const std::size_t T = block_tiles(C, F, wide ? 6 : 12);
  const auto [v, m] = block_buffers(T, C, F);
  const std::size_t base_line = winograd_first_line(g, row_begin);
  const __m256 zero = _mm256_setzero_ps();

  const std::size_t first = row_begin * TW, last = row_end * TW;  // tiles, counted over the batch
  for (std::size_t q0 = first; q0 < last; q0 += T) {
    const std::size_t tiles = std::min(T, last - q0);
    transform_input_tiles(g, x, q0, tiles, T, v);
    if (wide) products<6, 2>(v, U, tiles, T, C, F, m);
    else products<12, 1>(v, U, tiles, T, C, F, m);
    // Y = A^T M A per tile, plus the bias, then the relu; the cells past OH or OW are dropped.
    for (std::size_t t = 0; t < tiles; ++t) {
      const Tile tile = tile_at(g, q0 + t, base_line);
      float* y00 = y + tile.first * F;
      float* y10 = y00 + OW * F;
      const float* mt = m + t * F;
      for (std::size_t f = 0; f < F; f += 8) {
        __m256 s0[4], s1[4];
        for (int c = 0; c < 4; ++c) {  // A^T M: rows 0 + 1 + 2 and 1 - 2 - 3
          const __m256 m0 = _mm256_loadu_ps(mt + static_cast<std::size_t>(c) * T * F + f);
          const __m256 m1 = _mm256_loadu_ps(mt + static_cast<std::size_t>(4 + c) * T * F + f);
          const __m256 m2 = _mm256_loadu_ps(mt + static_cast<std::size_t>(8 + c) * T * F + f);
          const __m256 m3 = _mm256_loadu_ps(mt + static_cast<std::size_t>(12 + c) * T * F + f);
          s0[c] = _mm256_add_ps(_mm256_add_ps(m0, m1), m2);
          s1[c] = _mm256_sub_ps(_mm256_sub_ps(m1, m2), m3);
        }
        const __m256 bias = b ? _mm256_loadu_ps(b + f) : zero;
        auto out = [&](const __m256* s, float* dst, bool second) {
          __m256 o0 = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(s[0], s[1]), s[2]), bias);
          __m256 o1 = _mm256_add_ps(_mm256_sub_ps(_mm256_sub_ps(s[1], s[2]), s[3]), bias);
          if (relu) {
            o0 = _mm256_max_ps(o0, zero);
            o1 = _mm256_max_ps(o1, zero);
          }
          _mm256_storeu_ps(dst + f, o0);
          if (second) _mm256_storeu_ps(dst + F + f, o1);
        };
        out(s0, y00, tile.two_cols);
        if (tile.two_rows) out(s1, y10, tile.two_cols);
      }
    }
  }
}

void winograd_kernel_gradient_rows(const ConvGeometry& g, const float* x, const float* dz,
                                   std::size_t F, std::size_t row_begin, std::size_t row_end,
                                   float* acc) {
  const std::size_t C = g.channels, OW = g.w.out, TW = tile_columns(g);
  const std::size_t B = panel_width(F);
  const std::size_t T = block_tiles(C, F, B == 16 ? 6 : 12);
  const auto [v, m] = block_buffers(T, C, F);
  const std::size_t base_line = winograd_first_line(g, row_begin);
  const __m256 zero = _mm256_setzero_ps();

  const std::size_t first = row_begin * TW, last = row_end * TW;
  for (std::size_t q0 = first; q0 < last; q0 += T) {
    const std::size_t tiles = std::min(T, last - q0);
    transform_input_tiles(g, x, q0, tiles, T, v);
    // D = A dz A^T per tile (the adjoint of the output transform), the cells past OH or OW zero.
    for (std::size_t t = 0; t < tiles; ++t) {
      const Tile tile = tile_at(g, q0 + t, base_line);
      const bool two_rows = tile.two_rows, two_cols = tile.two_cols;
      const float* d0 = dz + tile.first * F;
      const float* d1 = d0 + OW * F;
      for (std::size_t f = 0; f < F; f += 8) {
        const __m256 u00 = _mm256_loadu_ps(d0 + f);
        const __m256 u01 = two_cols ? _mm256_loadu_ps(d0 + F + f) : zero;
        const __m256 u10 = two_rows ? _mm256_loadu_ps(d1 + f) : zero;
        const __m256 u11 = two_rows && two_cols ? _mm256_loadu_ps(d1 + F + f) : zero;
        // A dz: rows 0, 0 + 1, 0 - 1, -1; then the same combinations of its two columns.
        const __m256 rows[4][2] = {{u00, u01},
                                   {_mm256_add_ps(u00, u10), _mm256_add_ps(u01, u11)},
                                   {_mm256_sub_ps(u00, u10), _mm256_sub_ps(u01, u11)},
                                   {_mm256_sub_ps(zero, u10), _mm256_sub_ps(zero, u11)}};
        for (std::size_t a = 0; a < 4; ++a) {
          float* out = m + 4 * a * T * F + t * F + f;
          _mm256_storeu_ps(out, rows[a][0]);
          _mm256_storeu_ps(out + T * F, _mm256_add_ps(rows[a][0], rows[a][1]));
          _mm256_storeu_ps(out + 2 * T * F, _mm256_sub_ps(rows[a][0], rows[a][1]));
          _mm256_storeu_ps(out + 3 * T * F, _mm256_sub_ps(zero, rows[a][1]));
        }
      }
    }
    // acc[p] (C, F) += V[p]^T D[p], summed over the block's tiles.
    for (std::size_t p = 0; p < 16; ++p) {
      const Run run{v + p * T * C, m + p * T * F, tiles};
      for (std::size_t f0 = 0; f0 < F; f0 += B) {
        if (B == 16) gradient_tap<6, 2>(&run, 1, C, C, F, f0, acc + p * C * F);
        else gradient_tap<12, 1>(&run, 1, C, C, F, f0, acc + p * C * F);
      }
    }
  }
}

#else  // no AVX2 + FMA: callers use the direct or im2col path

bool winograd_supported(const ConvGeometry&, std::size_t) { return false; }
void winograd_conv_rows(const ConvGeometry&, const float*, const float*, const float*, bool,
                        std::size_t, std::size_t, std::size_t, float*) {}
void winograd_kernel_gradient_rows(const ConvGeometry&, const float*, const float*, std::size_t,
                                   std::size_t, std::size_t, float*) {}

#endif

}  // namespace signcore
