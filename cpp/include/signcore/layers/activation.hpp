// Activation: applies a named element-wise activation (softmax over the last axis).
//   x: (N, ...) -> y: (N, ...)
#pragma once

#include <string>

#include "signcore/activations.hpp"
#include "signcore/layers/layer.hpp"

namespace signcore {

class Activation : public Layer {
 public:
  // ValueError for an unknown activation name. An empty name picks "activation", "activation_1", ...
  explicit Activation(const std::string& activation, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Activation"; }
  // Works step by step on the last axis, so a sequence mask passes through unchanged (as Keras).
  MaskMode mask_mode() const override { return MaskMode::PassThrough; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  ActivationKind activation() const { return activation_; }

 private:
  ActivationKind activation_;
  const Tensor* x_ = nullptr;  // last input and output, unchanged until backward
  const Tensor* y_ = nullptr;
};

}  // namespace signcore
