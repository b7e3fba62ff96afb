// Flatten and Reshape: change the per-sample shape; the data is copied unchanged (row-major order).
//   Flatten: x: (N, d1, ..., dk) -> y: (N, d1 * ... * dk)
//   Reshape(target_shape): x: (N, ...) -> y: (N, target_shape...), with at most one -1 inferred.
#pragma once

#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

class Flatten : public Layer {
 public:
  // data_format: "" or "channels_last" (the only layout signcore uses).
  explicit Flatten(const std::string& data_format = "", std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Flatten"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

 private:
  Shape input_shape_;  // per sample
};

class Reshape : public Layer {
 public:
  // ValueError for a zero or negative entry other than a single -1.
  explicit Reshape(std::vector<long long> target_shape, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Reshape"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  const std::vector<long long>& target_shape() const { return target_shape_; }

 private:
  std::vector<long long> target_shape_;
  Shape input_shape_;  // per sample
};

}  // namespace signcore
