// Element-wise activations (Keras 3 definitions and defaults) and their derivatives.
#include "signcore/activations.hpp"

#include <algorithm>
#include <cmath>
#include <utility>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

constexpr float kLeakySlope = 0.2f;  // Keras 3 leaky_relu negative_slope
constexpr float kEluAlpha = 1.0f;
constexpr float kSeluScale = 1.0507009873554804934193349852946f;
constexpr float kSeluAlpha = 1.6732632423543772848170429916717f;
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

const std::pair<const char*, ActivationKind> kNames[] = {
    {"linear", ActivationKind::Linear},       {"relu", ActivationKind::Relu},
    {"sigmoid", ActivationKind::Sigmoid},     {"tanh", ActivationKind::Tanh},
    {"softmax", ActivationKind::Softmax},     {"leaky_relu", ActivationKind::LeakyRelu},
    {"elu", ActivationKind::Elu},             {"gelu", ActivationKind::Gelu},
    {"selu", ActivationKind::Selu},           {"softplus", ActivationKind::Softplus},
    {"softsign", ActivationKind::Softsign},   {"silu", ActivationKind::Swish},
    {"swish", ActivationKind::Swish},         {"hard_sigmoid", ActivationKind::HardSigmoid},
    {"exponential", ActivationKind::Exponential},
};

inline float sigmoid(float x) {
  if (x >= 0) return 1.f / (1.f + std::exp(-x));
  const float e = std::exp(x);
  return e / (1.f + e);
}

void softmax_rows(const float* x, float* y, std::size_t rows, std::size_t cols) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    float mx = xr[0];
    for (std::size_t c = 1; c < cols; ++c) mx = std::max(mx, xr[c]);
    float sum = 0.f;
    for (std::size_t c = 0; c < cols; ++c) {
      yr[c] = std::exp(xr[c] - mx);
      sum += yr[c];
    }
    const float inv = 1.f / sum;
    for (std::size_t c = 0; c < cols; ++c) yr[c] *= inv;
  }
}

}  // namespace

ActivationKind parse_activation(const std::string& name) {
  if (name.empty() || name == "None") return ActivationKind::Linear;
  for (const auto& [key, kind] : kNames)
    if (name == key) return kind;
  fail<ValueError>("Unknown activation. Expected one of linear, relu, sigmoid, tanh, softmax, "
                   "leaky_relu, elu, gelu, selu, softplus, softsign, silu (swish), hard_sigmoid, "
                   "exponential. Received: activation='", name, "'");
}

std::string activation_name(ActivationKind kind) {
  for (const auto& [key, k] : kNames)
    if (k == kind) return key;  // Swish -> "silu", Keras 3's canonical name
  return "linear";
}

bool activation_backward_uses_output(ActivationKind kind) {
  return kind != ActivationKind::Gelu && kind != ActivationKind::Swish;
}

namespace {

// Element-wise work is split across threads in chunks of this many values (softmax: whole rows).
constexpr std::size_t kGrain = 1 << 15;

// y[i] = f(x[i]) for i in [0, n); never called for softmax.
void forward_span(ActivationKind kind, const float* x, float* y, std::size_t n) {
  switch (kind) {
    case ActivationKind::Linear:
      if (x != y) std::copy(x, x + n, y);
      break;
    case ActivationKind::Relu:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : 0.f;
      break;
    case ActivationKind::Sigmoid:
      for (std::size_t i = 0; i < n; ++i) y[i] = sigmoid(x[i]);
      break;
    case ActivationKind::Tanh:
      for (std::size_t i = 0; i < n; ++i) y[i] = std::tanh(x[i]);
      break;
    case ActivationKind::Softmax:
      break;
    case ActivationKind::LeakyRelu:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : kLeakySlope * x[i];
      break;
    case ActivationKind::Elu:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] > 0.f ? x[i] : kEluAlpha * std::expm1(x[i]);
      break;
    case ActivationKind::Gelu:  // exact: x * Phi(x)
      for (std::size_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.f + std::erf(x[i] * kInvSqrt2));
      break;
    case ActivationKind::Selu:
      for (std::size_t i = 0; i < n; ++i)
        y[i] = kSeluScale * (x[i] > 0.f ? x[i] : kSeluAlpha * std::expm1(x[i]));
      break;
    case ActivationKind::Softplus:  // log(1 + e^x) without overflow
      for (std::size_t i = 0; i < n; ++i)
        y[i] = std::max(x[i], 0.f) + std::log1p(std::exp(-std::abs(x[i])));
      break;
    case ActivationKind::Softsign:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] / (1.f + std::abs(x[i]));
      break;
    case ActivationKind::Swish:
      for (std::size_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
      break;
    case ActivationKind::HardSigmoid:  // Keras 3: relu6(x + 3) / 6
      for (std::size_t i = 0; i < n; ++i) y[i] = std::min(std::max(x[i] + 3.f, 0.f), 6.f) / 6.f;
      break;
    case ActivationKind::Exponential:
      for (std::size_t i = 0; i < n; ++i) y[i] = std::exp(x[i]);
      break;
  }
}

// dx[i] = dy[i] * f'(x[i]) for i in [0, n); never called for softmax.
void backward_span(ActivationKind kind, const float* x, const float* y, const float* dy, float* dx,
                   std::size_t n) {
  switch (kind) {
    case ActivationKind::Linear:
      if (dx != dy) std::copy(dy, dy + n, dx);
      break;
    case ActivationKind::Relu:
      for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : 0.f;
      break;
    case ActivationKind::Sigmoid:
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i] * (1.f - y[i]);
      break;
    case ActivationKind::Tanh:
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * (1.f - y[i] * y[i]);
      break;
    case ActivationKind::Softmax:
      break;
    case ActivationKind::LeakyRelu:  // y > 0 exactly when x > 0
      for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : kLeakySlope * dy[i];
      break;
    case ActivationKind::Elu:  // for x <= 0: y' = alpha * e^x = y + alpha
      for (std::size_t i = 0; i < n; ++i) dx[i] = y[i] > 0.f ? dy[i] : dy[i] * (y[i] + kEluAlpha);
      break;
    case ActivationKind::Gelu:  // Phi(x) + x * phi(x)
      for (std::size_t i = 0; i < n; ++i) {
        const float cdf = 0.5f * (1.f + std::erf(x[i] * kInvSqrt2));
        const float pdf = kInvSqrt2Pi * std::exp(-0.5f * x[i] * x[i]);
        dx[i] = dy[i] * (cdf + x[i] * pdf);
      }
      break;
    case ActivationKind::Selu:  // for x <= 0: y' = scale * alpha * e^x = y + scale * alpha
      for (std::size_t i = 0; i < n; ++i)
        dx[i] = y[i] > 0.f ? dy[i] * kSeluScale : dy[i] * (y[i] + kSeluScale * kSeluAlpha);
      break;
    case ActivationKind::Softplus:  // sigmoid(x) = 1 - e^-y
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * -std::expm1(-y[i]);
      break;
    case ActivationKind::Softsign:  // 1 / (1 + |x|)^2 = (1 - |y|)^2
      for (std::size_t i = 0; i < n; ++i) {
        const float t = 1.f - std::abs(y[i]);
        dx[i] = dy[i] * t * t;
      }
      break;
    case ActivationKind::Swish:  // s + x * s * (1 - s)
      for (std::size_t i = 0; i < n; ++i) {
        const float s = sigmoid(x[i]);
        dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
      }
      break;
    case ActivationKind::HardSigmoid:  // 1/6 inside the linear segment
      for (std::size_t i = 0; i < n; ++i)
        dx[i] = (y[i] > 0.f && y[i] < 1.f) ? dy[i] * (1.f / 6.f) : 0.f;
      break;
    case ActivationKind::Exponential:
      for (std::size_t i = 0; i < n; ++i) dx[i] = dy[i] * y[i];
      break;
  }
}

}  // namespace

void activation_forward(ActivationKind kind, const float* x, float* y, std::size_t rows,
                        std::size_t cols) {
  if (kind == ActivationKind::Softmax) {
    if (cols == 0) return;
    parallel_for(rows, std::max<std::size_t>(1, kGrain / cols), [&](std::size_t b, std::size_t e) {
      softmax_rows(x + b * cols, y + b * cols, e - b, cols);
    });
    return;
  }
  parallel_for(rows * cols, kGrain, [&](std::size_t b, std::size_t e) {
    forward_span(kind, x + b, y + b, e - b);
  });
}

void activation_backward(ActivationKind kind, const float* x, const float* y, const float* dy,
                         float* dx, std::size_t rows, std::size_t cols) {
  if (kind == ActivationKind::Softmax) {  // dx = y * (dy - sum(dy * y)) per row
    if (cols == 0) return;
    parallel_for(rows, std::max<std::size_t>(1, kGrain / cols), [&](std::size_t b, std::size_t e) {
      for (std::size_t r = b; r < e; ++r) {
        const float* yr = y + r * cols;
        const float* dyr = dy + r * cols;
        float* dxr = dx + r * cols;
        float dot = 0.f;
        for (std::size_t c = 0; c < cols; ++c) dot += dyr[c] * yr[c];
        for (std::size_t c = 0; c < cols; ++c) dxr[c] = yr[c] * (dyr[c] - dot);
      }
    });
    return;
  }
  // x is only read by the kinds that need it; offsetting a null pointer is avoided.
  parallel_for(rows * cols, kGrain, [&](std::size_t b, std::size_t e) {
    backward_span(kind, x ? x + b : nullptr, y ? y + b : nullptr, dy + b, dx + b, e - b);
  });
}

}  // namespace signcore
