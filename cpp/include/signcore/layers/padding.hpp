// ZeroPadding2D: adds rows and columns of zeros around channels-last images.
//   x: (N, H, W, C) -> y: (N, top + H + bottom, left + W + right, C)
#pragma once

#include <array>
#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

class ZeroPadding2D : public Layer {
 public:
  // padding: ((top, bottom), (left, right)), each >= 0. ValueError for a negative entry or a
  // data_format other than "channels_last" (or ""). An empty name picks "zero_padding2d", ...
  explicit ZeroPadding2D(std::array<std::array<long long, 2>, 2> padding = {{{1, 1}, {1, 1}}},
                         const std::string& data_format = "channels_last", std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "ZeroPadding2D"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  // ((top, bottom), (left, right))
  const std::array<std::array<std::size_t, 2>, 2>& padding() const { return padding_; }

 private:
  std::array<std::array<std::size_t, 2>, 2> padding_;
  Shape input_shape_;  // (H, W, C)
};

}  // namespace signcore
