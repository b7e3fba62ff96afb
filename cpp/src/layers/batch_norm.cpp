#include "signcore/layers/batch_norm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

// Rows per block of the blocked sums: about 16K values per block whatever C is. The block layout
// depends only on (M, C), never on the thread count, which keeps the sums deterministic.
std::size_t rows_per_block(std::size_t C) { return std::max<std::size_t>(1, (std::size_t{1} << 14) / C); }

// Grain for the element-wise passes, in rows.
std::size_t row_grain(std::size_t C) { return std::max<std::size_t>(1, (std::size_t{1} << 14) / C); }

// Per-channel sums over the rows of a (M, C) matrix, computed block by block in parallel and
// combined in block order: out1[c] = sum_m f1(m, c), out2[c] = sum_m f2(m, c), where `body(r0, r1,
// s1, s2)` adds the rows [r0, r1) into the block's double accumulators s1, s2 (C each).
template <class Body>
void blocked_channel_sums(std::size_t M, std::size_t C, std::vector<double>& partial, double* out1,
                          double* out2, Body&& body) {
  std::fill(out1, out1 + C, 0.0);
  std::fill(out2, out2 + C, 0.0);
  if (M == 0) return;
  const std::size_t R = rows_per_block(C), B = (M + R - 1) / R;
  partial.assign(B * 2 * C, 0.0);
  parallel_for(B, 1, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      double* s1 = partial.data() + b * 2 * C;
      body(b * R, std::min(M, (b + 1) * R), s1, s1 + C);
    }
  });
  for (std::size_t b = 0; b < B; ++b) {
    const double* s1 = partial.data() + b * 2 * C;
    const double* s2 = s1 + C;
    for (std::size_t c = 0; c < C; ++c) {
      out1[c] += s1[c];
      out2[c] += s2[c];
    }
  }
}

}  // namespace

BatchNormalization::BatchNormalization(long long axis, double momentum, double epsilon, bool center,
                                       bool scale, std::string beta_initializer,
                                       std::string gamma_initializer, std::string moving_mean_initializer,
                                       std::string moving_variance_initializer, std::string name)
    : Layer("batch_normalization"),
      axis_(axis),
      momentum_(momentum),
      epsilon_(epsilon),
      center_(center),
      scale_(scale),
      beta_initializer_(std::move(beta_initializer)),
      gamma_initializer_(std::move(gamma_initializer)),
      moving_mean_initializer_(std::move(moving_mean_initializer)),
      moving_variance_initializer_(std::move(moving_variance_initializer)) {
  if (axis_ == 0 || axis_ < -1)
    fail<ValueError>("BatchNormalization: signcore normalises the last (channel) axis only; use "
                     "axis=-1. Received: axis=", axis_);
  if (!(momentum_ >= 0.0 && momentum_ <= 1.0))
    fail<ValueError>("BatchNormalization: `momentum` must be a float in [0, 1]. Received: momentum=",
                     momentum_);
  if (!(epsilon_ >= 0.0) || !std::isfinite(epsilon_))
    fail<ValueError>("BatchNormalization: `epsilon` must be a non-negative float. Received: epsilon=",
                     epsilon_);
  check_initializer(beta_initializer_);
  check_initializer(gamma_initializer_);
  check_initializer(moving_mean_initializer_);
  check_initializer(moving_variance_initializer_);
  // The automatic name is taken only once the arguments are known to be good.
  name_ = name.empty() ? unique_name("batch_normalization") : std::move(name);
}

LayerPtr BatchNormalization::from_config(const json& c) {
  try {
    auto init = [&c](const char* key, const char* fallback) {
      if (!c.contains(key) || c[key].is_null()) return std::string(fallback);
      const json& v = c[key];
      return v.is_object() ? v.at("class_name").get<std::string>() : v.get<std::string>();
    };
    long long axis = -1;
    if (c.contains("axis") && !c["axis"].is_null()) {
      const json& a = c["axis"];
      // Keras 2 wrote a one-element list.
      axis = a.is_array() ? (a.size() == 1 ? a[0].get<long long>() : 0) : a.get<long long>();
      if (a.is_array() && a.size() != 1)
        fail<ValueError>("BatchNormalization: signcore normalises one (the last) axis. Received: axis=",
                         a.dump());
    }
    return std::make_shared<BatchNormalization>(
        axis, c.value("momentum", 0.99), c.value("epsilon", 1e-3), c.value("center", true),
        c.value("scale", true), init("beta_initializer", "zeros"), init("gamma_initializer", "ones"),
        init("moving_mean_initializer", "zeros"), init("moving_variance_initializer", "ones"),
        c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid BatchNormalization config (", e.what(), "). Received: ", c.dump());
  }
}

json BatchNormalization::get_config() const {
  json c = Layer::get_config();
  c["axis"] = axis_;
  c["momentum"] = momentum_;
  c["epsilon"] = epsilon_;
  c["center"] = center_;
  c["scale"] = scale_;
  c["beta_initializer"] = beta_initializer_;
  c["gamma_initializer"] = gamma_initializer_;
  c["moving_mean_initializer"] = moving_mean_initializer_;
  c["moving_variance_initializer"] = moving_variance_initializer_;
  return c;
}

// (..., C) -> (..., C); gamma, beta, moving_mean, moving_variance: (C,)
Shape BatchNormalization::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.empty() || in.back() == 0)
    fail<ValueError>("Layer '", name_, "' (BatchNormalization) needs inputs with a non-empty channel "
                     "(last) axis, e.g. (None, features) or (None, height, width, channels). Received: "
                     "input_shape=", shape_str(in));
  // Keras counts the batch axis: for (None, H, W, C) the last axis is 3.
  if (axis_ != -1 && axis_ != static_cast<long long>(in.size()))
    fail<ValueError>("Layer '", name_, "' (BatchNormalization): signcore normalises the last (channel) "
                     "axis only, which is axis=-1 or axis=", in.size(), " for input_shape=",
                     shape_str(in), ". Received: axis=", axis_);
  channels_ = in.back();
  const Shape s{channels_};
  if (scale_) gamma_id_ = add_weight(params, "gamma", s, gamma_initializer_);
  if (center_) beta_id_ = add_weight(params, "beta", s, beta_initializer_);
  mean_id_ = add_weight(params, "moving_mean", s, moving_mean_initializer_, false);
  var_id_ = add_weight(params, "moving_variance", s, moving_variance_initializer_, false);
  mean_.assign(channels_, 0.0);
  invstd_.assign(channels_, 1.0);
  mean_f_.assign(channels_, 0.f);
  scale_c_.assign(channels_, 1.f);
  shift_c_.assign(channels_, 0.f);
  return in;
}

void BatchNormalization::set_map() {
  const float* gamma = scale_ ? params_->value(gamma_id_) : nullptr;
  const float* beta = center_ ? params_->value(beta_id_) : nullptr;
  for (std::size_t c = 0; c < channels_; ++c) {
    mean_f_[c] = static_cast<float>(mean_[c]);
    scale_c_[c] = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd_[c]);
    shift_c_[c] = beta ? beta[c] : 0.f;
  }
}

ChannelMap BatchNormalization::inference_map() {
  const float* moving_mean = params_->value(mean_id_);
  const float* moving_var = params_->value(var_id_);
  for (std::size_t c = 0; c < channels_; ++c) {
    mean_[c] = moving_mean[c];
    invstd_[c] = 1.0 / std::sqrt(static_cast<double>(moving_var[c]) + epsilon_);
  }
  set_map();
  return map();
}

// mean, invstd, the moving statistics and the map from the shifted sums s1 = sum (x - shift),
// s2 = sum (x - shift)^2 over `count` values per channel (with mask_: Keras's masked moments, the
// sums weighted and count = W + 1e-7):
//   without a mask: mean = K + s1 / M, var = s2 / M - (s1 / M)^2 (biased);
//   with one: W = sum of the weights, W' = W + 1e-7, mean = sum w x / W' = (s1 + K W) / W',
//   var = sum w (x - mean)^2 / W'.
void BatchNormalization::set_batch_statistics(const std::vector<double>& shift, const std::vector<double>& s1,
                                              const std::vector<double>& s2, double count) {
  float* moving_mean = params_->value(mean_id_);
  float* moving_var = params_->value(var_id_);
  const std::size_t C = channels_;
  const double inv_m = 1.0 / count, mom = momentum_;
  for (std::size_t c = 0; c < C; ++c) {
    double mean, var;
    if (mask_) {
      const double w = count - 1e-7;
      const double dm = (s1[c] + shift[c] * w) * inv_m - shift[c];  // mean - K
      mean = shift[c] + dm;
      var = std::max((s2[c] - 2.0 * dm * s1[c] + dm * dm * w) * inv_m, 0.0);
    } else {
      const double dm = s1[c] * inv_m;
      mean = shift[c] + dm;
      var = std::max(s2[c] * inv_m - dm * dm, 0.0);
    }
    mean_[c] = mean;
    invstd_[c] = 1.0 / std::sqrt(var + epsilon_);
    moving_mean[c] = static_cast<float>(moving_mean[c] * mom + mean * (1.0 - mom));
    moving_var[c] = static_cast<float>(moving_var[c] * mom + var * (1.0 - mom));
  }
  set_map();
}

BatchNormalization::FusedStatistics BatchNormalization::prepare_fused_statistics(std::size_t lines) {
  const float* gamma = scale_ ? params_->value(gamma_id_) : nullptr;
  const float* moving_mean = params_->value(mean_id_);
  fused_shift_.assign(moving_mean, moving_mean + channels_);
  fused_sign_.resize(channels_);
  for (std::size_t c = 0; c < channels_; ++c)
    fused_sign_[c] = !gamma || gamma[c] > 0.f ? 1.f : gamma[c] < 0.f ? -1.f : 0.f;
  fused_sums_.resize(2 * channels_ * lines);
  return {fused_sign_.data(), fused_shift_.data(), fused_sums_.data()};
}

void BatchNormalization::forward_from_sums(const Tensor& x) {
  const std::size_t C = channels_, lines = fused_sums_.size() / (2 * C);
  if (x.size() == 0 || x.dimension() < 2 || x.shape().back() != C || lines == 0 || (x.size() / C) % lines != 0)
    fail<ValueError>("Layer '", name_, "' (BatchNormalization): the fused statistics do not match ",
                     "an input of shape ", shape_str(shape_of(x), false));
  x_ = &x;
  batch_stats_ = true;
  mask_ = nullptr;
  // Line by line in order: the same sums on any thread count.
  std::vector<double> shift(fused_shift_.begin(), fused_shift_.end()), s1(C, 0.0), s2(C, 0.0);
  for (std::size_t l = 0; l < lines; ++l) {
    const double* a = fused_sums_.data() + l * 2 * C;
    for (std::size_t c = 0; c < C; ++c) {
      s1[c] += a[c];
      s2[c] += a[C + c];
    }
  }
  set_batch_statistics(shift, s1, s2, static_cast<double>(x.size() / C));
}

// x: (N, ..., C) -> y: (N, ..., C), viewed as M = N * ... rows of C.
void BatchNormalization::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  if (xs.size() < 2 || xs.back() != channels_)
    fail<ValueError>("Layer '", name_, "' (BatchNormalization) expects inputs of shape (N, ..., ",
                     channels_, "). Received: shape=", shape_str(xs, false));
  if (!defer_output_) ensure_shape(y, xs);
  const std::size_t C = channels_, M = x.size() / C;
  const float* xd = x.data();
  float* yd = y.data();
  x_ = &x;
  batch_stats_ = ctx.training && trainable_;
  mask_ = nullptr;
  if (batch_stats_ && ctx.mask) {
    // A sequence mask (N, T) on (N, T, ..., C): each mask value covers G consecutive rows.
    const Tensor& mk = *ctx.mask;
    if (mk.dimension() < 1 || mk.size() == 0 || mk.shape()[0] != xs[0] || M % mk.size() != 0 ||
        xs.size() < mk.dimension() + 1 ||
        !std::equal(mk.shape().begin(), mk.shape().end(), xs.begin()))
      fail<ValueError>("Layer '", name_, "' (BatchNormalization): the mask should have the leading "
                       "axes of the inputs. Received: mask.shape=", shape_str(shape_of(mk), false),
                       ", inputs.shape=", shape_str(xs, false));
    mask_ = &mk;
    mask_rows_ = M / mk.size();
  }
  if (M == 0) return;

  if (batch_stats_) {
    // Pass 1: shifted sums (shift = the first row, so a large mean does not cost precision),
    // weighted by the mask when there is one.
    std::vector<double> shift(xd, xd + C), s1(C), s2(C);
    const float* mk = mask_ ? mask_->data() : nullptr;
    const std::size_t G = mask_rows_;
    blocked_channel_sums(M, C, partial_, s1.data(), s2.data(),
                         [&](std::size_t r0, std::size_t r1, double* a1, double* a2) {
                           const double* k = shift.data();
                           for (std::size_t r = r0; r < r1; ++r) {
                             const float* xr = xd + r * C;
                             if (mk) {
                               const double w = mk[r / G];
                               if (w == 0.0) continue;
                               for (std::size_t c = 0; c < C; ++c) {
                                 const double d = static_cast<double>(xr[c]) - k[c];
                                 a1[c] += w * d;
                                 a2[c] += w * d * d;
                               }
                               continue;
                             }
                             for (std::size_t c = 0; c < C; ++c) {
                               const double d = static_cast<double>(xr[c]) - k[c];
                               a1[c] += d;
                               a2[c] += d * d;
                             }
                           }
                         });
    double count = static_cast<double>(M);
    if (mask_) {
      double w = 0.0;
      for (std::size_t i = 0; i < mask_->size(); ++i) w += mk[i];
      count = w * static_cast<double>(G) + 1e-7;
      mask_count_ = count;
    }
    set_batch_statistics(shift, s1, s2, count);
  } else {
    inference_map();
  }

  // Pass 2: y = (x - mean) * (gamma * invstd) + beta
  if (defer_output_) return;  // the reading pooling layer applies the map
  const float* mf = mean_f_.data();
  const float* sc = scale_c_.data();
  const float* sh = shift_c_.data();
  parallel_for(M, row_grain(C), [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      const float* xr = xd + r * C;
      float* yr = yd + r * C;
      for (std::size_t c = 0; c < C; ++c) yr[c] = (xr[c] - mf[c]) * sc[c] + sh[c];
    }
  });
}

// Training mode (batch statistics), with xh = (x - mean) * invstd and g = gamma (1 without scale):
//   dbeta += sum dy,  dgamma += sum dy xh,
//   dx = g invstd (dy - mean(dy) - xh mean(dy xh))
// Inference mode: dx = dy g invstd, with the same dgamma and dbeta sums.
void BatchNormalization::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (BatchNormalization): backward called before forward");
  const Tensor& x = *x_;
  if (shape_of(dy) != shape_of(x))
    fail<ValueError>("Layer '", name_, "' (BatchNormalization): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(shape_of(x), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (dx) ensure_shape(*dx, shape_of(x));
  const std::size_t C = channels_, M = x.size() / C;
  if (M == 0) return;
  const bool dgamma = scale_ && params_->weights()[gamma_id_].trainable;
  const bool dbeta = center_ && params_->weights()[beta_id_].trainable;
  const float* xd = x.data();
  const float* g = dy.data();

  // Pass 1 (when needed): S1 = sum dy, S2 = sum dy (x - mean), per channel.
  std::vector<double> s1(C, 0.0), s2(C, 0.0);
  if (batch_stats_ || dgamma || dbeta) {
    const double* mean = mean_.data();
    blocked_channel_sums(M, C, partial_, s1.data(), s2.data(),
                         [&](std::size_t r0, std::size_t r1, double* a1, double* a2) {
                           for (std::size_t r = r0; r < r1; ++r) {
                             const float* xr = xd + r * C;
                             const float* gr = g + r * C;
                             for (std::size_t c = 0; c < C; ++c) {
                               const double gv = gr[c];
                               a1[c] += gv;
                               a2[c] += gv * (static_cast<double>(xr[c]) - mean[c]);
                             }
                           }
                         });
    add_param_grads(s1, s2, dgamma, dbeta);
  }
  if (!dx) return;

  // Pass 2: dx = a dy + w (b (x - mean) + k), per channel coefficients; w is the row's mask
  // weight (1 without a mask), and the mean over rows divides by the weight sum.
  std::vector<float> a, b, k;
  dx_coefficients(s1, s2, M, a, b, k);
  float* d = dx->data();
  const float *pa = a.data(), *pb = b.data(), *pk = k.data(), *mf = mean_f_.data();
  if (relu_input_) {  // the producer's relu derivative too (b = k = 0 with the moving statistics)
    parallel_for(M, row_grain(C), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const float* xr = xd + r * C;
        const float* gr = g + r * C;
        float* dr = d + r * C;
        // Stored, then the stored value selected: a select between a computed value and 0 is not
        // vectorised by GCC under -ftrapping-math (the computation would be conditional).
        for (std::size_t c = 0; c < C; ++c) {
          dr[c] = pa[c] * gr[c] + pb[c] * (xr[c] - mf[c]) + pk[c];
          dr[c] = xr[c] > 0.f ? dr[c] : 0.f;
        }
      }
    });
  } else if (batch_stats_ && mask_) {
    const float* mk = mask_->data();
    const std::size_t G = mask_rows_;
    parallel_for(M, row_grain(C), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const float* xr = xd + r * C;
        const float* gr = g + r * C;
        float* dr = d + r * C;
        const float w = mk[r / G];
        for (std::size_t c = 0; c < C; ++c) dr[c] = pa[c] * gr[c] + w * (pb[c] * (xr[c] - mf[c]) + pk[c]);
      }
    });
  } else if (batch_stats_) {
    parallel_for(M, row_grain(C), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const float* xr = xd + r * C;
        const float* gr = g + r * C;
        float* dr = d + r * C;
        for (std::size_t c = 0; c < C; ++c) dr[c] = pa[c] * gr[c] + pb[c] * (xr[c] - mf[c]) + pk[c];
      }
    });
  } else {
    parallel_for(M, row_grain(C), [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        const float* gr = g + r * C;
        float* dr = d + r * C;
        for (std::size_t c = 0; c < C; ++c) dr[c] = pa[c] * gr[c];
      }
    });
  }
}

// dgamma += S2 invstd, dbeta += S1 (S1 = sum dy, S2 = sum dy (x - mean), per channel).
void BatchNormalization::add_param_grads(const std::vector<double>& s1, const std::vector<double>& s2,
                                         bool dgamma, bool dbeta) {
  if (dgamma) {
    float* dg = params_->grad(gamma_id_);
    for (std::size_t c = 0; c < channels_; ++c) dg[c] += static_cast<float>(s2[c] * invstd_[c]);
  }
  if (dbeta) {
    float* db = params_->grad(beta_id_);
    for (std::size_t c = 0; c < channels_; ++c) db[c] += static_cast<float>(s1[c]);
  }
}

// The per-channel coefficients of dx = a dy + b (x - mean) + k (b = k = 0 with the moving
// statistics), from S1 and S2 over M rows (or the mask's weight sum).
void BatchNormalization::dx_coefficients(const std::vector<double>& s1, const std::vector<double>& s2,
                                         std::size_t M, std::vector<float>& a, std::vector<float>& b,
                                         std::vector<float>& k) const {
  const std::size_t C = channels_;
  const float* gamma = scale_ ? params_->value(gamma_id_) : nullptr;
  a.assign(C, 0.f);
  b.assign(C, 0.f);
  k.assign(C, 0.f);
  const double inv_m = 1.0 / (mask_ ? mask_count_ : static_cast<double>(M));
  for (std::size_t c = 0; c < C; ++c) {
    const double gi = (gamma ? gamma[c] : 1.0) * invstd_[c];
    a[c] = static_cast<float>(gi);
    if (batch_stats_) {
      b[c] = static_cast<float>(-gi * invstd_[c] * invstd_[c] * s2[c] * inv_m);
      k[c] = static_cast<float>(-gi * s1[c] * inv_m);
    }
  }
}

// backward() with dy = the scatter of a pooling's gradient (fusion, see batch_norm.hpp). Pass 1
// sums over the pooled gradient alone, x - mean at the maxima coming from the pooled values (or
// from x gathered there), instead of reading a dy that is mostly zeros; pass 2 writes each
// sample's dx once, window by window where the windows tile the image, else by a scatter of a g
// onto b (x - mean) + k while the sample is in cache.
void BatchNormalization::backward_scattered(const ScatteredGradient& dy, Tensor* dx) {
  if (!x_) fail<StateError>("Layer '", name_, "' (BatchNormalization): backward called before forward");
  const Tensor& x = *x_;
  const std::size_t C = channels_, M = x.size() / C;
  if (mask_ || dy.samples * dy.in != x.size() || dy.in % C != 0 || dy.out % C != 0)
    fail<StateError>("Layer '", name_, "' (BatchNormalization): the pooled gradient (", dy.samples,
                     " samples of ", dy.out, " values from ", dy.in, ") does not fit inputs of shape ",
                     shape_str(shape_of(x), false));
  if (dx) ensure_shape(*dx, shape_of(x));
  if (M == 0) return;
  const bool dgamma = scale_ && params_->weights()[gamma_id_].trainable;
  const bool dbeta = center_ && params_->weights()[beta_id_].trainable;
  const float* xd = x.data();
  const std::size_t per = dy.out / C;  // rows of g per sample

  std::vector<double> s1(C, 0.0), s2(C, 0.0);
  // x - mean at a maximum is (value - shift) / scale. The value carries float rounding of about
  // 6e-8 |value|, about |shift| + |gamma| (|gamma| = |scale| / invstd, the spread of the normalised
  // values), so the recovered x - mean is as accurate as float only while |shift| stays within a few
  // dozen |gamma|; otherwise (and for a zero scale) x is gathered at the maxima.
  bool from_values = dy.values != nullptr;
  for (std::size_t c = 0; c < C && from_values; ++c) {
    const double spread = std::abs(static_cast<double>(scale_c_[c])) / invstd_[c];
    from_values = scale_c_[c] != 0.f && std::isfinite(scale_c_[c]) && std::abs(shift_c_[c]) <= 64.0 * spread;
  }
  if (batch_stats_ || dgamma || dbeta) {
    const float* sh = shift_c_.data();
    const double* mean = mean_.data();
    blocked_channel_sums(dy.samples * per, C, partial_, s1.data(), s2.data(),
                         [&](std::size_t r0, std::size_t r1, double* a1, double* a2) {
                           for (std::size_t r = r0; r < r1; ++r) {
                             const float* gr = dy.g + r * C;
                             if (from_values) {  // (value - shift), divided by scale below
                               const float* vr = dy.values + r * C;
                               for (std::size_t c = 0; c < C; ++c) {
                                 a1[c] += gr[c];
                                 a2[c] += gr[c] * (static_cast<double>(vr[c]) - sh[c]);
                               }
                             } else {
                               const float* xs = xd + r / per * dy.in;
                               const std::int32_t* ar = dy.at + r * C;
                               for (std::size_t c = 0; c < C; ++c) {
                                 a1[c] += gr[c];
                                 a2[c] += gr[c] * (static_cast<double>(xs[ar[c]]) - mean[c]);
                               }
                             }
                           }
                         });
    if (from_values)
      for (std::size_t c = 0; c < C; ++c) s2[c] /= scale_c_[c];
    add_param_grads(s1, s2, dgamma, dbeta);
  }
  if (!dx) return;

  std::vector<float> a, b, k;
  dx_coefficients(s1, s2, M, a, b, k);
  const float *pa = a.data(), *pb = b.data(), *pk = k.data(), *mf = mean_f_.data();
  float* d = dx->data();
  const std::size_t rows = dy.in / C;
  const bool relu = relu_input_;
  // One row of C values: b (x - mean) + k, plus `add` (a g where this cell is the window's
  // maximum, else 0), times x > 0 with the relu hand-off. Each result is stored, then the stored
  // value selected: GCC does not vectorise a select whose operand is computed in the same
  // expression under -ftrapping-math.
  auto row = [&](const float* xr, float* dr, const std::int32_t* at, const float* add, std::int32_t off) {
    for (std::size_t c = 0; c < C; ++c) dr[c] = pb[c] * (xr[c] - mf[c]) + pk[c];
    if (add)
      for (std::size_t c = 0; c < C; ++c) {
        const float v = at[c] == off + static_cast<std::int32_t>(c) ? add[c] : 0.f;
        dr[c] += v;
      }
    if (relu)
      for (std::size_t c = 0; c < C; ++c) dr[c] = xr[c] > 0.f ? dr[c] : 0.f;
  };
  const ScatteredGradient::Tiling& t = dy.tile;
  parallel_for(dy.samples, 1, [&](std::size_t n0, std::size_t n1) {
    std::vector<float> add(C);
    for (std::size_t n = n0; n < n1; ++n) {
      const float* xs = xd + n * dy.in;
      float* ds = d + n * dy.in;
      const float* gs = dy.g + n * dy.out;
      const std::int32_t* as = dy.at + n * dy.out;
      if (t.h) {
        // Window by window: every cell of a window gets its a g only where it is the maximum. Cells
        // past the last window (the rest of a "valid" pooling) get b (x - mean) + k alone.
        for (std::size_t h = 0; h < t.h; ++h) {
          const std::size_t oh = h / t.pool_h;
          for (std::size_t w = 0; w < t.w; ++w) {
            const std::size_t ow = w / t.pool_w, off = (h * t.w + w) * C;
            if (oh >= t.out_h || ow >= t.out_w) {
              row(xs + off, ds + off, nullptr, nullptr, 0);
              continue;
            }
            const std::size_t o = (oh * t.out_w + ow) * C;
            if (w % t.pool_w == 0)  // the first cell of a window on this row: the window's a g
              for (std::size_t c = 0; c < C; ++c) add[c] = pa[c] * gs[o + c];
            row(xs + off, ds + off, as + o, add.data(), static_cast<std::int32_t>(off));
          }
        }
        continue;
      }
      for (std::size_t r = 0; r < rows; ++r) row(xs + r * C, ds + r * C, nullptr, nullptr, 0);
      for (std::size_t r = 0; r < per; ++r)
        for (std::size_t c = 0; c < C; ++c) {
          const std::int32_t i = as[r * C + c];
          // x > 0 at a maximum is a coin toss for the branch predictor: a multiply instead.
          ds[i] += (relu ? static_cast<float>(xs[i] > 0.f) : 1.f) * (pa[c] * gs[r * C + c]);
        }
    }
  });
}

SIGNCORE_REGISTER_LAYER(BatchNormalization);

}  // namespace signcore
