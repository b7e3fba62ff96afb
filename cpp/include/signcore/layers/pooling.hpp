// 2-D and 3-D pooling, channels last.
//
// MaxPooling2D / AveragePooling2D: a (ph, pw) window moved with strides (sh, sw).
//   x: (N, H, W, C) -> y: (N, H', W', C)
// MaxPooling3D / AveragePooling3D: a (pd, ph, pw) window moved with strides (sd, sh, sw).
//   x: (N, D, H, W, C) -> y: (N, D', H', W', C)
//   Both share one implementation over three axes (depth, height, width); a 2-D image is a volume
//   of depth 1, so there is one kernel per pooling kind, not one per rank.
//   padding "valid": H' = floor((H - ph) / sh) + 1 (the window stays inside the image);
//   padding "same":  H' = ceil(H / sh), padded by max((H' - 1) sh + ph - H, 0) split with the extra
//   row at the bottom (column at the right, plane at the back), as TensorFlow/Keras. Padded cells
//   never take part: max pooling ignores them, average pooling divides by the number of real cells
//   in the window (TensorFlow's AvgPool/AvgPool3D).
//   Max pooling sends the gradient to the first maximum in window order (plane by plane, row by
//   row, left to right; the rule of PyTorch's CPU max_pool2d and of TensorFlow's CPU MaxPoolGrad,
//   which both replace the running maximum only on a strictly greater value). A NaN in the window
//   wins and propagates, as in PyTorch. A training forward records the arg-max; after an inference
//   forward, backward finds it again with the same comparisons.
//
// GlobalAveragePooling2D / GlobalMaxPooling2D (and the 3-D ones): over every spatial axis.
//   x: (N, H, W, C) -> y: (N, C), or (N, 1, 1, C) with keepdims; x: (N, D, H, W, C) -> (N, C).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "signcore/layers/batch_norm.hpp"
#include "signcore/layers/layer.hpp"

namespace signcore {

// The window geometry along one spatial axis.
struct PoolAxis {
  std::size_t in = 1, out = 1, size = 1, stride = 1, pad_before = 0;
};

// Shared by the windowed poolings of rank 2 (images) and 3 (volumes). The axes are held as
// (depth, height, width); for rank 2 the depth axis is a single plane.
class Pooling : public Layer {
 public:
  // The validated arguments: pool size and strides per axis (depth, height, width; depth 1 for
  // rank 2; strides empty = pool size), padding lowercased.
  struct Spec {
    std::size_t rank = 2;
    std::size_t pool[3] = {1, 1, 1}, strides[3] = {1, 1, 1};
    std::string padding;
  };
  // ValueError for a pool size or strides that are not `rank` positive integers (one value is used
  // for every axis), a padding other than "valid"/"same" (any case) or a data_format other than
  // "channels_last" ("" = the default, channels_last). `cls` names the layer in the messages.
  static Spec validate(const char* cls, std::size_t rank, const std::vector<long long>& pool_size,
                       const std::vector<long long>& strides, const std::string& padding,
                       const std::string& data_format);
  // Validation happens before the automatic name ("max_pooling2d_3") is taken from `prefix`.
  Pooling(const Spec& spec, std::string name, const std::string& prefix);

  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  json get_config() const override;

  std::size_t rank() const { return rank_; }
  // Per spatial axis, `rank` values (the depth only for rank 3).
  std::vector<std::size_t> pool_size() const { return tail(pool_); }
  std::vector<std::size_t> strides() const { return tail(strides_); }
  std::size_t pool_h() const { return pool_[1]; }
  std::size_t pool_w() const { return pool_[2]; }
  std::size_t stride_h() const { return strides_[1]; }
  std::size_t stride_w() const { return strides_[2]; }
  const std::string& padding() const { return padding_; }
  // The built geometry along axis a: 0 depth (one plane for rank 2), 1 height, 2 width.
  const PoolAxis& axis(std::size_t a) const { return ax_[a]; }

 protected:
  // Parses the (Keras 3) config keys shared by the pooling layers of one rank.
  struct Args {
    std::vector<long long> pool_size, strides;
    std::string padding, data_format, name;
  };
  static Args args_from_config(const json& c, std::size_t rank);
  // Checks x against the built shape (N, [D,] H, W, C) and returns N.
  std::size_t check_input(const Tensor& x) const;
  // The output tensor shape (N, [D',] H', W', C).
  Shape out_shape(std::size_t n) const;
  std::size_t in_size() const { return ax_[0].in * ax_[1].in * ax_[2].in * channels_; }
  std::size_t out_size() const { return ax_[0].out * ax_[1].out * ax_[2].out * channels_; }
  std::vector<std::size_t> tail(const std::size_t (&v)[3]) const {
    return std::vector<std::size_t>(v + 3 - rank_, v + 3);
  }

  std::size_t rank_;
  std::size_t pool_[3], strides_[3];
  std::string padding_;  // "valid" or "same"
  PoolAxis ax_[3];       // depth, height, width
  std::size_t channels_ = 0;
  const Tensor* x_ = nullptr;  // the last forward's input (alive until backward)
};
using Pooling2D = Pooling;

// The maximum over each window, for either rank.
class MaxPooling : public Pooling {
 public:
  using Pooling::Pooling;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  // Takes the map of a BatchNormalization (layer.hpp): the maximum of each window is then taken
  // over (x - mean) * scale + shift, x being the BatchNormalization's input.
  bool fuse_normalization(const Layer* batch_norm) override;
  // The gradient backward(dy) would write, in scattered form (batch_norm.hpp), for the fused
  // normalisation's own backward. Valid until the next forward.
  ScatteredGradient scattered_gradient(const Tensor& dy);
  // A training forward that the convolution before it computes (Model::fuse_poolings): y shaped
  // for N samples and the argmax sized; the convolution then writes the raw window maxima into y
  // and their offsets into the argmax (Convolution::forward_pooled_training), and
  // finish_training(x, y) applies the fused normalisation's map to them in place. x: the
  // pooling's input (the convolution's output), kept for backward.
  std::int32_t* prepare_training(std::size_t N, Tensor& y);
  void finish_training(const Tensor& x, Tensor& y);

 private:
  void pool(std::size_t N, const float* x, float* y, std::int32_t* am) const;

  const BatchNormalization* norm_ = nullptr;  // the fused normalisation, or null
  const float* y_ = nullptr;                   // the last forward's output (the model keeps it)
  // For each output value, the offset of its maximum within the sample: (((d H) + h) W + w) C + c.
  // Recorded by a training forward; after an inference forward backward recomputes it from x.
  std::vector<std::int32_t> argmax_;  // (N, [D',] H', W', C)
  bool argmax_valid_ = false;
};

// The mean over the real cells of each window, for either rank.
class AveragePooling : public Pooling {
 public:
  using Pooling::Pooling;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
};

// The four concrete layers: Keras's arguments and names over the shared implementations.
#define SIGNCORE_POOLING_LAYER(Cls, Base, Rank, Default)                                          \
  class Cls : public Base {                                                                       \
   public:                                                                                        \
    Cls(std::vector<long long> pool_size = Default, std::vector<long long> strides = {},          \
        std::string padding = "valid", const std::string& data_format = "", std::string name = "") \
        : Base(validate(#Cls, Rank, pool_size, strides, padding, data_format), std::move(name),   \
               snake_case(#Cls)) {}                                                               \
    static LayerPtr from_config(const json& config);                                              \
    std::string class_name() const override { return #Cls; }                                     \
  }
SIGNCORE_POOLING_LAYER(MaxPooling2D, MaxPooling, 2, (std::vector<long long>{2, 2}));
SIGNCORE_POOLING_LAYER(AveragePooling2D, AveragePooling, 2, (std::vector<long long>{2, 2}));
SIGNCORE_POOLING_LAYER(MaxPooling3D, MaxPooling, 3, (std::vector<long long>{2, 2, 2}));
SIGNCORE_POOLING_LAYER(AveragePooling3D, AveragePooling, 3, (std::vector<long long>{2, 2, 2}));
#undef SIGNCORE_POOLING_LAYER

// Shared by the global poolings of rank 2 and 3: over all the P spatial positions of a sample.
class GlobalPooling : public Layer {
 public:
  // ValueError for a data_format other than "channels_last" ("" = the default).
  static bool validate(const char* cls, const std::string& data_format, bool keepdims);
  GlobalPooling(std::size_t rank, bool keepdims, std::string name, const std::string& prefix);
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  json get_config() const override;
  bool keepdims() const { return keepdims_; }

 protected:
  std::size_t check_input(const Tensor& x) const;  // returns N
  Shape out_shape(std::size_t n) const;             // (N, C) or (N, 1, [1,] 1, C)
  std::size_t rank_;
  bool keepdims_;
  Shape spatial_;  // ([D,] H, W)
  std::size_t positions_ = 0, channels_ = 0;  // P = the product of spatial_, C
  bool forwarded_ = false;
  std::size_t batch_ = 0;  // N of the last forward
};

class GlobalAveragePooling : public GlobalPooling {
 public:
  using GlobalPooling::GlobalPooling;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
};

class GlobalMaxPooling : public GlobalPooling {
 public:
  using GlobalPooling::GlobalPooling;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;

 private:
  const Tensor* x_ = nullptr;
  // (N, C): offset p C + c of each maximum in its sample; as MaxPooling's.
  std::vector<std::int32_t> argmax_;
  bool argmax_valid_ = false;
};

#define SIGNCORE_GLOBAL_POOLING_LAYER(Cls, Base, Rank)                                            \
  class Cls : public Base {                                                                       \
   public:                                                                                        \
    explicit Cls(const std::string& data_format = "", bool keepdims = false, std::string name = "") \
        : Base(Rank, validate(#Cls, data_format, keepdims), std::move(name), snake_case(#Cls)) {} \
    static LayerPtr from_config(const json& config);                                              \
    std::string class_name() const override { return #Cls; }                                     \
  }
SIGNCORE_GLOBAL_POOLING_LAYER(GlobalAveragePooling2D, GlobalAveragePooling, 2);
SIGNCORE_GLOBAL_POOLING_LAYER(GlobalMaxPooling2D, GlobalMaxPooling, 2);
SIGNCORE_GLOBAL_POOLING_LAYER(GlobalAveragePooling3D, GlobalAveragePooling, 3);
SIGNCORE_GLOBAL_POOLING_LAYER(GlobalMaxPooling3D, GlobalMaxPooling, 3);
#undef SIGNCORE_GLOBAL_POOLING_LAYER

}  // namespace signcore
