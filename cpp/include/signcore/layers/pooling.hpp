// 2-D pooling over images, channels last.
//
// MaxPooling2D / AveragePooling2D: a (ph, pw) window moved with strides (sh, sw).
//   x: (N, H, W, C) -> y: (N, H', W', C)
//   padding "valid": H' = floor((H - ph) / sh) + 1 (the window stays inside the image);
//   padding "same":  H' = ceil(H / sh), padded by max((H' - 1) sh + ph - H, 0) split with the extra
//   row at the bottom (column at the right), as TensorFlow/Keras. Padded cells never take part:
//   max pooling ignores them, average pooling divides by the number of real cells in the window.
//   Max pooling sends the gradient to the first maximum in window order (row by row, left to right;
//   the rule of PyTorch's CPU max_pool2d and of TensorFlow's CPU MaxPoolGrad, which both replace the
//   running maximum only on a strictly greater value). A NaN in the window wins and propagates, as
//   in PyTorch. A training forward records the arg-max; after an inference forward, backward finds
//   it again with the same comparisons.
//
// GlobalAveragePooling2D / GlobalMaxPooling2D: over H and W.
//   x: (N, H, W, C) -> y: (N, C), or (N, 1, 1, C) with keepdims.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "signcore/layers/layer.hpp"

namespace signcore {

// The window geometry along one spatial axis.
struct PoolAxis {
  std::size_t in = 0, out = 0, size = 0, stride = 0, pad_before = 0;
};

// Shared by MaxPooling2D and AveragePooling2D.
class Pooling2D : public Layer {
 public:
  // The validated arguments: pool size and strides (strides empty = pool size), padding lowercased.
  struct Spec {
    std::size_t pool[2], strides[2];
    std::string padding;
  };
  // ValueError for non-positive sizes or strides, a padding other than "valid"/"same" (any case)
  // or a data_format other than "channels_last" ("" = the default, channels_last). `cls` names the
  // layer in the messages.
  static Spec validate(const char* cls, const std::vector<long long>& pool_size,
                       const std::vector<long long>& strides, const std::string& padding,
                       const std::string& data_format);
  // Validation happens before the automatic name ("max_pooling2d_3") is taken from `prefix`.
  Pooling2D(const Spec& spec, std::string name, const char* prefix);

  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  json get_config() const override;

  std::size_t pool_h() const { return pool_[0]; }
  std::size_t pool_w() const { return pool_[1]; }
  std::size_t stride_h() const { return strides_[0]; }
  std::size_t stride_w() const { return strides_[1]; }
  const std::string& padding() const { return padding_; }

 protected:
  // Parses the (Keras 3) config keys shared by both pooling layers.
  struct Args {
    std::vector<long long> pool_size, strides;
    std::string padding, data_format, name;
  };
  static Args args_from_config(const json& c);
  // Checks x against the built shape (N, H, W, C) and returns N.
  std::size_t check_input(const Tensor& x) const;

  std::size_t pool_[2], strides_[2];
  std::string padding_;  // "valid" or "same"
  PoolAxis ax_h_, ax_w_;
  std::size_t channels_ = 0;
  const Tensor* x_ = nullptr;  // the last forward's input (alive until backward)
};

class MaxPooling2D : public Pooling2D {
 public:
  MaxPooling2D(std::vector<long long> pool_size = {2, 2}, std::vector<long long> strides = {},
               std::string padding = "valid", const std::string& data_format = "",
               std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "MaxPooling2D"; }
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;

 private:
  // For each output value, the offset of its maximum within the sample: ((h W) + w) C + c.
  // Recorded by a training forward; after an inference forward backward recomputes it from x.
  std::vector<std::int32_t> argmax_;  // (N, H', W', C)
  bool argmax_valid_ = false;
};

class AveragePooling2D : public Pooling2D {
 public:
  AveragePooling2D(std::vector<long long> pool_size = {2, 2}, std::vector<long long> strides = {},
                   std::string padding = "valid", const std::string& data_format = "",
                   std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "AveragePooling2D"; }
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
};

// Shared by the two global poolings.
class GlobalPooling2D : public Layer {
 public:
  // ValueError for a data_format other than "channels_last" ("" = the default).
  static bool validate(const char* cls, const std::string& data_format, bool keepdims);
  GlobalPooling2D(bool keepdims, std::string name, const char* prefix);
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  json get_config() const override;
  bool keepdims() const { return keepdims_; }

 protected:
  std::size_t check_input(const Tensor& x) const;  // returns N
  bool keepdims_;
  std::size_t h_ = 0, w_ = 0, channels_ = 0;
  bool forwarded_ = false;
};

class GlobalAveragePooling2D : public GlobalPooling2D {
 public:
  explicit GlobalAveragePooling2D(const std::string& data_format = "", bool keepdims = false,
                                  std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "GlobalAveragePooling2D"; }
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;

 private:
  std::size_t batch_ = 0;  // N of the last forward
};

class GlobalMaxPooling2D : public GlobalPooling2D {
 public:
  explicit GlobalMaxPooling2D(const std::string& data_format = "", bool keepdims = false,
                              std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "GlobalMaxPooling2D"; }
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;

 private:
  std::size_t batch_ = 0;
  const Tensor* x_ = nullptr;
  // (N, C): offset (h W + w) C + c of each maximum in its sample; as MaxPooling2D's.
  std::vector<std::int32_t> argmax_;
  bool argmax_valid_ = false;
};

}  // namespace signcore
