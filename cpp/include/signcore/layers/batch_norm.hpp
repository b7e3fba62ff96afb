// BatchNormalization over the last (channel) axis, any rank: (N, C), (N, H, W, C), (N, T, H, W, C).
//   x: (N, ..., C) -> y: (N, ..., C),  y = gamma (x - mean) / sqrt(var + epsilon) + beta
// Weights, Keras order: gamma (if scale), beta (if center), moving_mean, moving_variance, all (C,);
// the moving statistics are declared non-learnable (never trained, counted as non-trainable).
//
// Training (ctx.training and the layer trainable): mean and the biased variance of the batch over
// every axis but the last (M = N * ... values per channel), and in the same forward
//   moving = moving * momentum + batch * (1 - momentum)   (the biased variance too, as Keras 3).
// Otherwise (inference, or trainable=False, which Keras 3 runs in inference mode) the moving
// statistics normalise, and the layer is a per-channel affine map.
// A sequence mask (N, T) passes through; in training the statistics are Keras's masked moments
// (weighted by the mask, divided by its sum + 1e-7), and every step is normalised with them.
//
// Statistics are summed in double over fixed blocks of rows and the block sums combined in block
// order, so results do not depend on the thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

// An output gradient given as the scatter of a smaller one, as a MaxPooling's backward would
// write it: for each sample n and each of its `out` values o,
//   dy[n * in + at[n * out + o]] += g[n * out + o],
// every other value of dy being 0. `at` includes the channel: at % C == o % C.
// `values` (optional): the pooled values themselves, max of (x - mean) * scale + shift, which give
// x - mean at the maxima without gathering x.
// When the windows tile each image from its top-left corner without overlapping (stride = pool
// size, no padding before; 2-D), `tile` describes them, so that dy can be formed window by window
// instead of scattered value by value.
struct ScatteredGradient {
  const float* g = nullptr;
  const std::int32_t* at = nullptr;
  std::size_t samples = 0, in = 0, out = 0;  // N, values per sample of dy and of g
  const float* values = nullptr;
  struct Tiling {
    std::size_t h = 0, w = 0;            // input height and width (0: the windows do not tile)
    std::size_t pool_h = 1, pool_w = 1;  // window = stride
    std::size_t out_h = 0, out_w = 0;
  } tile;
};

// A BatchNormalization's per-channel map v -> (v - mean) * scale + shift, the very expression its
// forward writes, for a layer that applies it on the fly (the fusions of model.hpp).
struct ChannelMap {
  const float *mean, *scale, *shift;  // (C,) each
  float operator()(float v, std::size_t c) const { return (v - mean[c]) * scale[c] + shift[c]; }
};
// No map: the values themselves, where a ChannelMap could stand.
struct IdentityMap {
  float operator()(float v, std::size_t) const { return v; }
};

class BatchNormalization : public Layer {
 public:
  // ValueError unless axis is -1 (or the last axis, checked in build), 0 <= momentum <= 1,
  // epsilon > 0, and the initialisers are known.
  BatchNormalization(long long axis = -1, double momentum = 0.99, double epsilon = 1e-3, bool center = true,
                     bool scale = true, std::string beta_initializer = "zeros",
                     std::string gamma_initializer = "ones", std::string moving_mean_initializer = "zeros",
                     std::string moving_variance_initializer = "ones", std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "BatchNormalization"; }
  MaskMode mask_mode() const override { return MaskMode::PassThrough; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  long long axis() const { return axis_; }
  double momentum() const { return momentum_; }
  double epsilon() const { return epsilon_; }
  bool center() const { return center_; }
  bool scale() const { return scale_; }

  // Normalisation fusion (Model::build, see model.hpp): when the only reader of this layer's output
  // is a pooling layer that applies the normalisation itself, the model defers the output: forward
  // then computes the statistics and the per-channel map y = (x - mean) * scale + shift but writes
  // no y. The map is valid after each forward.
  void defer_output(bool on) { defer_output_ = on; }
  ChannelMap map() const { return {mean_f_.data(), scale_c_.data(), shift_c_.data()}; }
  // The inference map (moving statistics), computed without an input: for an inference forward
  // that a convolution runs with this normalisation and the pooling after it (model.hpp).
  // Backward may not follow.
  ChannelMap inference_map();
  // Training statistics computed by the convolution before it (Model::fuse_poolings): the sign of
  // gamma per channel (the pooling's maxima of the map are the maxima of sign * x), the shift for
  // the sums (the moving mean) and room for per-line sums (lines, 2C) that
  // Convolution::forward_pooled_training fills; then forward_from_sums(x) does what a training
  // forward does, from those sums instead of a pass over x (its output deferred).
  struct FusedStatistics {
    const float* sign;
    const float* shift;
    double* sums;
  };
  FusedStatistics prepare_fused_statistics(std::size_t lines);
  void forward_from_sums(const Tensor& x);
  // Relu hand-off (layer.hpp): the input is the relu output of a layer that takes this layer's dx
  // as its dL/dz, so backward also applies the relu's derivative, x > 0.
  void apply_relu_derivative(bool on) { relu_input_ = on; }
  // Backward for a deferred output, with dy in its scattered form (the pooling's gradient and
  // argmax): the same gradients as backward(), without dy ever being written out in full.
  void backward_scattered(const ScatteredGradient& dy, Tensor* dx);

 private:
  long long axis_;
  double momentum_, epsilon_;
  bool center_, scale_;
  std::string beta_initializer_, gamma_initializer_, moving_mean_initializer_, moving_variance_initializer_;

  std::size_t channels_ = 0;  // C
  std::size_t gamma_id_ = 0, beta_id_ = 0, mean_id_ = 0, var_id_ = 0;

  // Cached by forward for backward.
  const Tensor* x_ = nullptr;   // the input (alive and unchanged until backward)
  bool batch_stats_ = false;    // whether the last forward normalised with the batch statistics
  const Tensor* mask_ = nullptr;  // the sequence mask of that forward (training only), or null
  std::size_t mask_rows_ = 1;     // rows (of C values) per mask value
  double mask_count_ = 0;         // sum of the mask weights over rows, + 1e-7
  std::vector<double> mean_;    // (C,) the mean used by the last forward
  std::vector<double> invstd_;  // (C,) 1 / sqrt(var + epsilon) used by the last forward
  std::vector<float> mean_f_, scale_c_, shift_c_;  // (C,): y = (x - mean_f) * scale_c + shift_c
  bool defer_output_ = false;  // fusion: the reading pooling applies the map
  bool relu_input_ = false;    // relu hand-off: backward also applies x > 0
  std::vector<double> partial_;  // (blocks, 2C) scratch for blocked sums

  // mean_f_, scale_c_, shift_c_ from mean_ and invstd_.
  void set_map();
  // mean_, invstd_, the moving statistics and the map from shifted sums over `count` values.
  void set_batch_statistics(const std::vector<double>& shift, const std::vector<double>& s1,
                            const std::vector<double>& s2, double count);
  std::vector<float> fused_sign_, fused_shift_;  // prepare_fused_statistics()
  std::vector<double> fused_sums_;
  void add_param_grads(const std::vector<double>& s1, const std::vector<double>& s2, bool dgamma, bool dbeta);
  void dx_coefficients(const std::vector<double>& s1, const std::vector<double>& s2, std::size_t M,
                       std::vector<float>& a, std::vector<float>& b, std::vector<float>& k) const;
};

}  // namespace signcore
