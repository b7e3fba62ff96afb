// Vectorisable sigmoid and tanh for the recurrent layers.
//
// e^x: reduce x = n ln2 + r with |r| <= ln2 / 2, evaluate e^r - 1 by its Taylor polynomial of degree
// 7 (truncation error below 1e-8 relative) and scale by 2^n through the exponent bits. There is no
// libm call and no branch, so GCC vectorises the loops over a row.
// sigmoid(x) = 1 / (1 + e^-x); tanh(x) = sign(x) * -m / (2 + m) with m = e^(-2|x|) - 1, computed
// without cancellation so tanh keeps its relative accuracy near 0.
#include "signcore/layers/recurrent_math.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>

// The clamps below are float compares; under the default -ftrapping-math GCC will not if-convert
// them and leaves the loops scalar. These kernels raise no exception anyone observes.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

namespace signcore::rnn {

namespace {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2Hi = 0.693145751953125f;  // ln 2 split so that n * kLn2Hi is exact
constexpr float kLn2Lo = 1.42860682030941723212e-6f;
constexpr float kRound = 12582912.f;           // 1.5 * 2^23: x + kRound - kRound rounds x
constexpr float kExpMin = -87.f, kExpMax = 88.f;  // 2^n stays a normal float

// 2^n for an integral float n in [-126, 127].
inline float pow2(float n) {
  const std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
  float out;
  std::memcpy(&out, &bits, sizeof out);
  return out;
}

// e^r - 1 for |r| <= ln2 / 2 (Horner form).
inline float expm1_reduced(float r) {
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  return p * r;
}

// x = n ln2 + r; returns r and sets n. x must be clamped to [kExpMin, kExpMax].
inline float reduce(float x, float& n) {
  n = (x * kLog2e + kRound) - kRound;
  return (x - n * kLn2Hi) - n * kLn2Lo;
}

inline float exp_clamped(float x) {
  x = x < kExpMin ? kExpMin : x;
  x = x > kExpMax ? kExpMax : x;
  float n;
  const float r = reduce(x, n);
  return (expm1_reduced(r) + 1.f) * pow2(n);
}

// e^x - 1 for x <= 0, accurate relative to the result near 0.
inline float expm1_nonpositive(float x) {
  x = x < kExpMin ? kExpMin : x;
  float n;
  const float r = reduce(x, n);
  const float s = pow2(n);
  return expm1_reduced(r) * s + (s - 1.f);
}

inline float sigmoid_kernel(float x) { return 1.f / (1.f + exp_clamped(-x)); }

inline std::uint32_t bits_of(float f) {
  std::uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

inline float float_of(std::uint32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// The sign is moved with bit operations (std::copysign / std::fabs keep GCC from vectorising).
inline float tanh_kernel(float x) {
  const std::uint32_t sign = bits_of(x) & 0x80000000u;
  const float m = expm1_nonpositive(-2.f * float_of(bits_of(x) ^ sign));
  return float_of(bits_of((0.f - m) / (2.f + m)) | sign);  // 0 - m: tanh(0) is +0
}

}  // namespace

float fast_sigmoid(float x) { return sigmoid_kernel(x); }
float fast_tanh(float x) { return tanh_kernel(x); }

void act_forward(ActivationKind kind, const float* x, float* y, std::size_t n) {
  switch (kind) {
    case ActivationKind::Sigmoid:
      for (std::size_t i = 0; i < n; ++i) y[i] = sigmoid_kernel(x[i]);
      return;
    case ActivationKind::Tanh:
      for (std::size_t i = 0; i < n; ++i) y[i] = tanh_kernel(x[i]);
      return;
    case ActivationKind::Linear:
      if (x != y) std::memcpy(y, x, n * sizeof(float));
      return;
    default:
      activation_forward(kind, x, y, 1, n);
  }
}

void act_backward(ActivationKind kind, const float* x, const float* y, const float* dy, float* dx,
                  std::size_t n) {
  switch (kind) {
    case ActivationKind::Sigmoid:
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
      return;
    case ActivationKind::Tanh:
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
      return;
    case ActivationKind::Linear:
      if (dx != dy) std::memcpy(dx, dy, n * sizeof(float));
      return;
    default:
      activation_backward(kind, x, y, dy, dx, 1, n);
  }
}

void lstm_cell_forward(ActivationKind act, ActivationKind rec, float* z, float* a, float* c,
                       float* cnew, float* tc, float* h, std::size_t n) {
  act_forward(rec, z, a, 2 * n);                  // i, f
  act_forward(act, z + 2 * n, a + 2 * n, n);      // c~
  act_forward(rec, z + 3 * n, a + 3 * n, n);      // o
  const float *i = a, *f = a + n, *g = a + 2 * n, *o = a + 3 * n;
  for (std::size_t u = 0; u < n; ++u) c[u] = f[u] * c[u] + i[u] * g[u];
  if (cnew) std::memcpy(cnew, c, n * sizeof(float));
  act_forward(act, c, tc, n);
  for (std::size_t u = 0; u < n; ++u) h[u] = o[u] * tc[u];
}

void lstm_cell_backward(ActivationKind act, ActivationKind rec, const float* z, const float* a,
                        const float* cprev, const float* cnew, const float* tc, const float* dh,
                        float* dc, float* dz, float* dtc, std::size_t n) {
  const float *i = a, *f = a + n, *g = a + 2 * n, *o = a + 3 * n;
  for (std::size_t u = 0; u < n; ++u) {
    dz[3 * n + u] = dh[u] * tc[u];  // d o
    dtc[u] = dh[u] * o[u];
  }
  act_backward(act, cnew, tc, dtc, dtc, n);
  for (std::size_t u = 0; u < n; ++u) {
    const float dct = dc[u] + dtc[u];
    dz[u] = dct * g[u];          // d i
    dz[n + u] = dct * cprev[u];  // d f
    dz[2 * n + u] = dct * i[u];  // d c~
    dc[u] = dct * f[u];          // dc_{t-1}
  }
  act_backward(rec, z, a, dz, dz, 2 * n);
  act_backward(act, z ? z + 2 * n : nullptr, a + 2 * n, dz + 2 * n, dz + 2 * n, n);
  act_backward(rec, z ? z + 3 * n : nullptr, a + 3 * n, dz + 3 * n, dz + 3 * n, n);
}

}  // namespace signcore::rnn
