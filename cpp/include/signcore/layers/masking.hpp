// Masking: marks the time steps whose features all equal mask_value as skipped, for the layers
// that follow (RNNs carry their state over such steps), and zeroes those steps (as Keras).
//   x: (N, T, F) -> y: (N, T, F), y[n, t] = x[n, t] * keep[n, t]; output mask keep: (N, T)
//   keep[n, t] = 1 when some feature x[n, t, f] != mask_value, else 0.
#pragma once

#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

class Masking : public Layer {
 public:
  explicit Masking(double mask_value = 0.0, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Masking"; }
  // The incoming mask is ignored and replaced (Keras's compute_mask).
  MaskMode mask_mode() const override { return MaskMode::Compute; }
  void compute_mask(const std::vector<const Tensor*>& inputs, const Tensor* mask,
                    Tensor& out_mask) const override;
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  double mask_value() const { return mask_value_; }

 private:
  // keep (N * T values) from x: (N, T, F); ValueError for a shape other than the built one.
  void compute_keep(const Tensor& x, float* keep) const;

  double mask_value_;
  std::size_t T_ = 0, F_ = 0;
  std::vector<float> keep_;  // (N, T) of the last forward, for backward
  Shape x_shape_;
};

}  // namespace signcore
