// Conv2D: 2-D convolution (cross-correlation) over channels-last images, with bias and activation
// fused, computed as im2col + one GEMM per chunk of the batch (see conv2d.cpp for the design).
//   x: (N, H, W, C) -> y: (N, OH, OW, F),  y = act(conv(x, W) + b),  W: (kh, kw, C, F), b: (F,)
//   "valid": OH = floor((H - dilated_kh) / sh) + 1;  "same": OH = ceil(H / sh), the odd padding pixel
//   at the bottom / right (Keras). Likewise for the width.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "signcore/activations.hpp"
#include "signcore/im2col.hpp"
#include "signcore/layers/layer.hpp"

namespace signcore {

class Conv2D : public Layer {
 public:
  using Pair = std::array<long long, 2>;

  // ValueError (naming the value) for filters <= 0, a kernel size, stride or dilation < 1, strides
  // and dilation both > 1 (as Keras), padding other than "valid"/"same" (case-insensitive),
  // data_format other than "channels_last" (or ""), groups other than 1, an unknown activation or
  // initialiser. An empty name picks "conv2d", "conv2d_1", ...
  Conv2D(long long filters, Pair kernel_size, Pair strides = {1, 1},
         const std::string& padding = "valid", const std::string& data_format = "channels_last",
         Pair dilation_rate = {1, 1}, long long groups = 1, const std::string& activation = "linear",
         bool use_bias = true, std::string kernel_initializer = "glorot_uniform",
         std::string bias_initializer = "zeros", std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Conv2D"; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  std::size_t filters() const { return filters_; }
  std::array<std::size_t, 2> kernel_size() const { return kernel_size_; }
  std::array<std::size_t, 2> strides() const { return strides_; }
  std::array<std::size_t, 2> dilation_rate() const { return dilation_; }
  ConvPadding padding() const { return padding_; }
  ActivationKind activation() const { return activation_; }
  bool use_bias() const { return use_bias_; }

  // Upper bound on the bytes of the column buffer (one chunk of im2col rows); the batch is processed
  // in chunks of whole output lines that fit. Process-wide; for tuning and benchmarks.
  static void set_chunk_bytes(std::size_t bytes);
  static std::size_t chunk_bytes();
  // Pipelined threading (on by default; see conv2d.cpp): each thread runs whole chunks with a
  // single-threaded sgemm, instead of all threads taking turns on every step. Process-wide.
  static void set_pipelined(bool on);
  static bool pipelined();

 private:
  // Output lines per chunk for the current geometry (whole samples when at least one fits).
  std::size_t chunk_lines() const;
  void backward_pipelined(const Tensor& dy, Tensor* dx, float* dW, float* db, bool need_w,
                          std::size_t parts, std::size_t step, std::size_t chunks);

  std::size_t filters_;
  std::array<std::size_t, 2> kernel_size_, strides_, dilation_;
  ConvPadding padding_;
  ActivationKind activation_;
  bool use_bias_;
  std::string kernel_initializer_, bias_initializer_;

  ConvGeometry geom_;  // per sample, set by build
  std::size_t kernel_id_ = 0, bias_id_ = 0;
  // Cached by forward for backward: the input and the output (owned by the caller, unchanged until
  // backward) and, only when the activation's derivative needs it, the pre-activation z.
  const Tensor* x_ = nullptr;
  const Tensor* y_ = nullptr;
  Tensor z_;                    // (N, OH, OW, F), only for gelu / swish
  std::vector<float> db_part_;  // per-thread partial bias gradients (parts, F)
  std::vector<float> dW_part_;  // per-thread partial kernel gradients (parts, K, F), pipelined only
  // The column buffers are per-thread scratch shared by all Conv2D layers (conv2d.cpp).
};

}  // namespace signcore
