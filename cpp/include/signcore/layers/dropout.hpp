// Dropout: inverted dropout. In training each value is zeroed with probability `rate` and the kept
// ones are scaled by 1 / (1 - rate); at inference it is the identity.
//   x: (N, ...) -> y: (N, ...)
// noise_shape (Keras): the shape of the mask, batch axis included, broadcast against x; None entries
// take x's size on that axis. E.g. (None, 1, F) on (N, T, F) drops the same features at every step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

// The values of one inverted-dropout mask, 0 with probability `rate` and else 1 / (1 - rate), made
// from a 64-bit key: value i depends only on (key, i), so any range can be made by any thread, in
// any order, as often as needed (see dropout.cpp).
class DropoutStream {
 public:
  DropoutStream() = default;
  DropoutStream(std::uint64_t key, double rate);
  // m[i] = value i, for i in [b, e).
  void fill(float* m, std::size_t b, std::size_t e) const;
  // dst[i] = src[i] * value i, for i in [b, e) (dst may be src).
  void apply(const float* src, float* dst, std::size_t b, std::size_t e) const;

 private:
  template <class Fn>
  void for_values(std::size_t b, std::size_t e, Fn&& fn) const;
  std::uint32_t lo_ = 0, hi_ = 0;
  std::int32_t threshold_ = 0;
  float scale_ = 1.f;
};

// m (resized to n) = the mask of one rng() draw (a DropoutStream), made in parallel.
void fill_dropout_mask(Rng& rng, std::vector<float>& m, std::size_t n, double rate);

class Dropout : public Layer {
 public:
  using NoiseShape = std::vector<std::optional<std::size_t>>;

  // ValueError unless 0 <= rate < 1. With a seed the masks come from the layer's own engine
  // (reproducible whatever else draws numbers); without, from the model's engine (ctx.rng).
  explicit Dropout(double rate, std::optional<NoiseShape> noise_shape = std::nullopt,
                   std::optional<std::uint64_t> seed = std::nullopt, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Dropout"; }
  // Element-wise, so a sequence mask passes through unchanged (as Keras).
  MaskMode mask_mode() const override { return MaskMode::PassThrough; }
  bool identity_in_inference() const override { return true; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  double rate() const { return rate_; }
  std::optional<std::uint64_t> seed() const { return seed_; }

 protected:
  // For subclasses: `prefix` names the layer when `name` is empty ("spatial_dropout2d").
  Dropout(double rate, std::optional<NoiseShape> noise_shape, std::optional<std::uint64_t> seed,
          std::string name, const char* prefix);

 private:
  // The mask shape for an input of tensor shape `x_shape` (batch included), validated.
  Shape resolve_noise_shape(const Shape& x_shape) const;
  // dst = src * mask, the mask broadcast to x's shape (src and dst have x_shape_'s size).
  void apply_mask(const float* src, float* dst) const;

  double rate_;
  std::optional<NoiseShape> noise_shape_;
  std::optional<std::uint64_t> seed_;
  Rng own_rng_;

  bool applied_ = false;  // whether the last forward dropped anything (training and rate > 0)
  Shape x_shape_;         // (N, ...) the last input's shape
  Shape mask_shape_;      // the mask's shape: x_shape_, or 1 on the broadcast axes
  std::vector<std::size_t> mask_strides_;  // per axis of x: the mask's stride, 0 where broadcast
  DropoutStream stream_;                   // the mask when mask_shape_ == x_shape_ (not stored)
  std::vector<float> mask_;                // otherwise mask_shape_: 0 or 1 / (1 - rate), for backward
};

class SpatialDropout2D : public Dropout {
 public:
  // ValueError unless 0 <= rate < 1 and data_format is "" / "channels_last".
  explicit SpatialDropout2D(double rate, const std::string& data_format = "",
                            std::optional<std::uint64_t> seed = std::nullopt, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "SpatialDropout2D"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  json get_config() const override;
};

}  // namespace signcore
