// Conv2D and Conv3D: 2-D / 3-D convolution (cross-correlation) over channels-last images / volumes,
// with bias and activation fused, computed as im2col (vol2col) + one GEMM per chunk of the batch (see
// conv2d.cpp for the design). Both are one rank-generic Convolution over the three axes of
// ConvGeometry (depth, height, width; a 2-D image is a volume of depth 1), so there is one engine.
//   Conv2D: x: (N, H, W, C)    -> y: (N, OH, OW, F),      W: (kh, kw, C, F)
//   Conv3D: x: (N, D, H, W, C) -> y: (N, OD, OH, OW, F),  W: (kd, kh, kw, C, F)
//   y = act(conv(x, W) + b), b: (F,)
//   "valid": OH = floor((H - dilated_kh) / sh) + 1;  "same": OH = ceil(H / sh), the odd padding pixel
//   at the bottom / right / back (Keras). Likewise for the other axes.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "signcore/activations.hpp"
#include "signcore/im2col.hpp"
#include "signcore/layers/layer.hpp"

namespace signcore {

class Pooling;
struct ChannelMap;

// The shared engine of Conv2D (rank 2) and Conv3D (rank 3).
class Convolution : public Layer {
 public:
  // Per-axis arguments as given (rank values, or one value for every axis).
  using Sizes = std::vector<long long>;

  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;
  // Takes over an Activation layer's activation when this layer has none of its own.
  bool fuse_activation(const Layer* activation) override;
  bool receive_relu_masked_gradient(bool on) override;

  // Convolution + pooling fusion for inference (Model::fuse_poolings, model.hpp). Whether
  // forward_pooled can run this layer with the max pooling `pool` reading its output: a 2-D
  // convolution on the direct kernel (relu or linear) and pooling windows that tile the output
  // from its top-left corner (strides = pool size, no padding before them). Reads the process-wide
  // switches, so it can change between calls.
  bool can_pool_into(const Pooling& pool) const;
  // An inference forward that writes only the window maxima of map(output) into `pooled` (the
  // pooling's output, (N, H', W', F)): each thread computes the output lines of one row of windows
  // into a buffer that stays in cache and pools them there, so the full-size output is never
  // written nor read back. map: the inference map of a BatchNormalization between the two, or null.
  // The same values as forward, the normalisation and the pooling in turn. Backward may not follow.
  void forward_pooled(const Tensor& x, const Pooling& pool, const ChannelMap* map, Tensor& pooled);
  // The training form (Model::fuse_poolings, through a BatchNormalization): a full forward into y
  // (backward needs it) and, while the output lines of each row of windows are in cache, what the
  // pooling and the BatchNormalization would read them again for. Per window and channel f, the
  // cell whose value v is the maximum of sign[f] v (the first in window order; a NaN wins and
  // stays, as MaxPooling; sign 0: the first cell): its v into `values` and its offset within the
  // sample, (h OW + w) F + f, into `at` (both (N, H', W', F)). With `sums`, per output line l and
  // channel f, the sums of v - shift[f] and of its square into sums[2 F l + f] and
  // sums[2 F l + F + f].
  struct PooledTraining {
    const float* sign = nullptr;  // (F,), the sign of gamma
    float* values = nullptr;
    std::int32_t* at = nullptr;
    const float* shift = nullptr;  // (F,), with sums
    double* sums = nullptr;        // (N OH, 2F), or null
  };
  void forward_pooled_training(const Tensor& x, Tensor& y, const Pooling& pool, const PooledTraining& out);

  std::size_t rank() const { return rank_; }
  std::size_t filters() const { return filters_; }
  // Per spatial axis, `rank` values (the depth only for rank 3).
  std::vector<std::size_t> kernel_sizes() const { return tail(kernel_size_); }
  std::vector<std::size_t> stride_sizes() const { return tail(strides_); }
  std::vector<std::size_t> dilation_sizes() const { return tail(dilation_); }
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
  // Direct forward convolution (direct_conv.hpp; on by default where supported: relu / linear,
  // F a multiple of 8, an AVX2 + FMA build); off: im2col + SGEMM. Process-wide.
  static void set_direct(bool on);
  static bool direct();
  // The direct input gradient (direct_conv.hpp; on by default where it applies, see
  // direct_input_gradient()); off: dcols = dz W^T and col2im. Process-wide; needs direct() too.
  static void set_direct_input_gradient(bool on);
  static bool direct_input_gradient_enabled();
  // The direct kernel gradient (direct_conv.hpp; on by default where the direct kernel applies);
  // off: dW += cols^T dz on im2col's columns. Process-wide; needs direct() too.
  static void set_direct_kernel_gradient(bool on);
  static bool direct_kernel_gradient_enabled();
  // Winograd F(2x2, 3x3) for 3 x 3, stride-1, undilated 2-D convolutions with C and F multiples
  // of 8 (winograd.hpp; on by default, needs direct() too): the forward passes, the input gradient
  // and, in the pipelined backward, the kernel gradient; off: the direct kernels. Process-wide.
  static void set_winograd(bool on);
  static bool winograd_enabled();

 protected:
  // ValueError (naming the value) for filters <= 0, a kernel size, stride or dilation that is not
  // `rank` integers >= 1, strides and dilation both > 1 (as Keras), padding other than "valid"/"same"
  // (case-insensitive), data_format other than "channels_last" (or ""), groups other than 1, an
  // unknown activation or initialiser. An empty name picks snake_case(cls): "conv2d", "conv2d_1", ...
  Convolution(const char* cls, std::size_t rank, long long filters, const Sizes& kernel_size,
              const Sizes& strides, const std::string& padding, const std::string& data_format,
              const Sizes& dilation_rate, long long groups, const std::string& activation,
              bool use_bias, std::string kernel_initializer, std::string bias_initializer,
              std::string name);
  // The constructor arguments from a (Keras) config; ValueError naming a malformed entry.
  struct Args {
    long long filters = 0, groups = 1;
    Sizes kernel_size, strides, dilation_rate;
    std::string padding, data_format, activation, kernel_initializer, bias_initializer, name;
    bool use_bias = true;
  };
  static Args args_from_config(const char* cls, std::size_t rank, const json& c);

 private:
  std::vector<std::size_t> tail(const std::array<std::size_t, 3>& v) const {
    return std::vector<std::size_t>(v.end() - rank_, v.end());
  }
  // Output lines per chunk for the current geometry: as many as fit chunk_bytes() in im2col
  // columns (columns = true) or in dz rows (false), whole samples when at least one fits; without
  // columns always whole samples (one at least).
  std::size_t chunk_lines(bool columns) const;
  // Whether the input gradient runs as a direct convolution (direct_conv.hpp): stride 1 everywhere,
  // C a multiple of 8, at most 64 filters (any number where it runs as Winograd), and the direct
  // kernel switched on.
  bool direct_input_gradient() const;
  // Whether the kernel gradient runs directly (direct_conv.hpp): F a multiple of 8 on an AVX2 build,
  // and the direct kernel switched on.
  bool direct_kernel_gradient() const;
  // Whether the forward pass runs as a Winograd convolution (winograd.hpp): see set_winograd().
  bool winograd() const;
  // Checks x against the built input shape (N, [D,] H, W, C) and returns N.
  std::size_t check_input(const Tensor& x) const;
  // The checks and set-up of forward_pooled and forward_pooled_training: N, the kernel packed for
  // direct_conv_lines (in this thread's scratch), the bias or null, whether relu applies. With
  // `winograd` (2 x 2 windows and winograd()), the kernel is packed for winograd_conv_rows instead,
  // whose tile rows are the rows of windows.
  struct PooledSetup {
    std::size_t N;
    const float* packed;
    const float* bias;
    bool relu;
    bool winograd;
  };
  PooledSetup pooled_setup(const Tensor& x, const Pooling& pool);
  void backward_pipelined(const Tensor& dy, Tensor* dx, float* dW, float* db, bool need_w,
                          bool direct_dw, std::size_t parts, std::size_t step, std::size_t chunks);

  std::size_t rank_;
  std::size_t filters_;
  // Per axis (depth, height, width); the depth entries are 1 for rank 2.
  std::array<std::size_t, 3> kernel_size_, strides_, dilation_;
  ConvPadding padding_;
  ActivationKind activation_;
  ActivationKind fused_ = ActivationKind::Linear;  // taken over from a following Activation layer
  bool masked_dy_ = false;  // backward's dy is already dL/dz (relu hand-off, layer.hpp)
  // The activation applied: the layer's own or the fused one.
  ActivationKind act() const { return activation_ == ActivationKind::Linear ? fused_ : activation_; }
  bool use_bias_;
  std::string kernel_initializer_, bias_initializer_;

  ConvGeometry geom_;  // per sample, set by build
  Shape in_shape_;     // per sample, ([D,] H, W, C)
  std::size_t kernel_id_ = 0, bias_id_ = 0;
  // Cached by forward for backward: the input and the output (owned by the caller, unchanged until
  // backward) and, only when the activation's derivative needs it, the pre-activation z.
  const Tensor* x_ = nullptr;
  const Tensor* y_ = nullptr;
  Tensor z_;                    // (N, [OD,] OH, OW, F), only for gelu / swish
  std::vector<float> packed_t_;  // the flipped, transposed kernel for the direct input gradient
  std::vector<float> db_part_;  // per-thread partial bias gradients (parts, F)
  std::vector<float> dW_part_;  // per-thread partial kernel gradients (parts, K, F): pipelined or direct
  // The column buffers are per-thread scratch shared by all convolution layers (conv2d.cpp).
};

class Conv2D : public Convolution {
 public:
  using Pair = std::array<long long, 2>;

  // Keras 3's arguments; see Convolution for the checks. An empty name picks "conv2d", ...
  Conv2D(long long filters, Pair kernel_size, Pair strides = {1, 1},
         const std::string& padding = "valid", const std::string& data_format = "channels_last",
         Pair dilation_rate = {1, 1}, long long groups = 1, const std::string& activation = "linear",
         bool use_bias = true, std::string kernel_initializer = "glorot_uniform",
         std::string bias_initializer = "zeros", std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "Conv2D"; }

  std::array<std::size_t, 2> kernel_size() const { return last2(kernel_sizes()); }
  std::array<std::size_t, 2> strides() const { return last2(stride_sizes()); }
  std::array<std::size_t, 2> dilation_rate() const { return last2(dilation_sizes()); }

 private:
  static std::array<std::size_t, 2> last2(const std::vector<std::size_t>& v) { return {v[0], v[1]}; }
};

class Conv3D : public Convolution {
 public:
  using Triple = std::array<long long, 3>;

  // Keras 3's arguments; see Convolution for the checks. An empty name picks "conv3d", ...
  Conv3D(long long filters, Triple kernel_size, Triple strides = {1, 1, 1},
         const std::string& padding = "valid", const std::string& data_format = "channels_last",
         Triple dilation_rate = {1, 1, 1}, long long groups = 1,
         const std::string& activation = "linear", bool use_bias = true,
         std::string kernel_initializer = "glorot_uniform", std::string bias_initializer = "zeros",
         std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "Conv3D"; }
};

}  // namespace signcore
