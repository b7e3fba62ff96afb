// Dense: a fully connected layer on the last axis, with the activation fused.
//   x: (N, ..., F) -> y: (N, ..., U),  y = act(x W + b),  W: (F, U), b: (U,)
#pragma once

#include <string>

#include "signcore/activations.hpp"
#include "signcore/layers/layer.hpp"

namespace signcore {

class Dense : public Layer {
 public:
  // ValueError for units <= 0, an unknown activation or initialiser. An empty name picks "dense",
  // "dense_1", ...
  Dense(long long units, const std::string& activation = "linear", bool use_bias = true,
        std::string kernel_initializer = "glorot_uniform", std::string bias_initializer = "zeros",
        std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Dense"; }
  // Works step by step on the last axis, so a sequence mask passes through unchanged (as Keras).
  MaskMode mask_mode() const override { return MaskMode::PassThrough; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  std::size_t units() const { return units_; }
  ActivationKind activation() const { return activation_; }
  bool use_bias() const { return use_bias_; }

 private:
  std::size_t units_;
  ActivationKind activation_;
  bool use_bias_;
  std::string kernel_initializer_, bias_initializer_;

  std::size_t features_ = 0;  // F
  std::size_t kernel_id_ = 0, bias_id_ = 0;
  // Cached by forward for backward: the input, the output (both owned by the caller and unchanged
  // until backward) and, only when the activation's derivative needs it, the pre-activation z.
  const Tensor* x_ = nullptr;
  const Tensor* y_ = nullptr;
  Tensor z_;   // (N, ..., U)
  Tensor dz_;  // (N, ..., U) scratch for backward
};

}  // namespace signcore
