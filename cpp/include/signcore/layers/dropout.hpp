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

class Dropout : public Layer {
 public:
  using NoiseShape = std::vector<std::optional<std::size_t>>;

  // ValueError unless 0 <= rate < 1. With a seed the masks come from the layer's own engine
  // (reproducible whatever else draws numbers); without, from the model's engine (ctx.rng).
  explicit Dropout(double rate, std::optional<NoiseShape> noise_shape = std::nullopt,
                   std::optional<std::uint64_t> seed = std::nullopt, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Dropout"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  double rate() const { return rate_; }

 private:
  // The mask shape for an input of tensor shape `x_shape` (batch included), validated.
  Shape resolve_noise_shape(const Shape& x_shape) const;

  double rate_;
  std::optional<NoiseShape> noise_shape_;
  std::optional<std::uint64_t> seed_;
  Rng own_rng_;

  bool applied_ = false;  // whether the last forward dropped anything (training and rate > 0)
  Tensor mask_;           // (N, ...) as x: 0 or 1 / (1 - rate), for backward
};

}  // namespace signcore
