// Conv2D and Conv3D (class Convolution) as im2col + GEMM, written for a small multi-core CPU
// (AVX2/FMA, OpenBLAS). A 3-D input is handled by the same code: im2col.cpp walks the depth axis
// too (vol2col), and a 2-D image is a volume of depth 1; K below is then kd * kh * kw * C.
//
// Rows M = N * OH * OW (one per output position), K = kh * kw * C, F filters. The Keras kernel
// (kh, kw, C, F) is already the (K, F) matrix, so
//   forward:   cols = im2col(x) (M, K);   z = cols W (M, F);   y = act(z + b)
//   backward:  dz = dy * act'(.);  db += sum_rows dz;  dW += cols^T dz;  dx = col2im(dz W^T)
//
// Direct forward (the default where it applies: relu / linear, F a multiple of 8, an AVX2 + FMA
// build): the forward pass skips im2col and runs direct_conv.cpp's register-blocked kernel over the
// lines, split between the threads. With few filters the GEMM above is narrow and packing the
// columns costs as much as the product; measured on 1 thread, the CIFAR model's layers went from
// 8.2 / 41.6 / 16.7 / 40.6 ms to 5.9 / 28.8 / 16.8 / 41.9 ms (layers 1-4, batch 128). The backward
// pass uses the same file's direct input and kernel gradients where the GEMMs are narrow (see
// direct_input_gradient() and direct_kernel_gradient()), im2col + GEMM elsewhere.
// Convolution::set_direct(false) turns all of it off.
//
// Winograd (the default for 3 x 3, stride-1, undilated 2-D convolutions with C and F multiples of
// 8): the forward pass, its pooled forms, the input gradient and (in the pipelined backward) the
// kernel gradient run as winograd.cpp's F(2x2, 3x3), with 4/9 of the direct kernel's multiply-adds.
// Measured on 2 threads: prediction of a batch 1.4-1.5 times as fast on all three image models
// (CIFAR-10 67 -> 46 ms, alternating in one process); a training step, against the code before
// Winograd, CIFAR-10 199 -> 127 ms, emotion 89 -> 57 ms, ASL 147 -> 117 ms.
// Convolution::set_winograd(false) returns to the direct kernel.
//
// Chunking. cols is kh * kw times larger than x (132 MB for a 3x3 conv of 32 channels on a batch
// of 128 CIFAR images), so it is never materialised for the whole batch. The batch is cut into
// chunks of whole output lines (whole images when one fits) whose columns fit in chunk_bytes()
// (1 MB: measured against 0.25, 0.5, 2, 4 and 16 MB on the CIFAR layers with 2 threads; smaller
// chunks mean more thread hand-offs, larger ones fall out of cache between the im2col write and the
// GEMM read, which costs most in backward, whose working set is about three chunks). Per chunk:
// im2col (parallel), then ONE sgemm writing straight into y's rows (OpenBLAS threads), then bias +
// activation on that chunk of y while it is in cache. The column buffers are per-thread scratch
// shared by all Conv2D layers, so a deep model holds one chunk, not one per layer.
//
// Backward recomputes the columns chunk by chunk instead of caching them from forward: caching
// would cost kh * kw times the input per layer (more than PyTorch's peak memory), while the
// recomputation is a cache-friendly copy, about 5% of the backward's time on one core. The chunk's
// dcols = dz W^T goes to a second buffer, which col2im gathers back into dx (parallel over input
// lines, so no two threads write the same place) while the next chunk's im2col fills the first.
// dx is skipped entirely when not requested (the first layer of a model), and dW / db when the
// layer is frozen. When a BatchNormalization reading a relu convolution's output applies relu' in
// its own backward (Model::hand_off_relus), dy arrives as dL/dz: it is copied into the chunk's dz
// buffer without reading y.
//
// Threads. BLAS is never called from inside a parallel region (parallel.hpp): the OpenMP loops and
// the OpenBLAS calls take turns. Each turn is a hand-off between two thread pools, so the element-
// wise work of a chunk is fused into one region where possible (relu / linear: the epilogue of
// chunk i runs with the im2col of chunk i + 1; dz, the bias sums and the im2col of a chunk run
// together with the col2im of the previous one), leaving one region and one or two GEMMs per chunk.
// Hand-offs are only cheap if idle threads sleep: with libgomp's and OpenBLAS's default busy-waiting
// the two pools starve each other on 2 cores (10x slower); see benchmarks/bench_conv.py.
//
// Pipelined threading (the default when there are at least as many chunks as threads; relu /
// linear; whole images per chunk in backward): each OpenMP thread runs whole chunks on its own,
// im2col -> a single-threaded sgemm -> epilogue (and in backward dz -> im2col -> dW into a
// per-thread partial -> dcols -> col2im of its own images), with OpenBLAS switched to one thread
// for the region and restored after. One fork/join per pass instead of several per chunk, and each
// chunk stays in its core's L2. Measured on the CIFAR layers at batch 128, 2 cores, same run
// (bench_conv.py): all four layers forward 74 -> 50 ms, forward+backward 205 -> 147 ms. It is the
// one place that calls BLAS inside a parallel region, safely, because BLAS is single-threaded there.
// Conv2D::set_pipelined(false) restores the shared mode (benchmarks and tests compare the two).

// A 1x1 kernel with stride 1 and no padding needs no im2col: x is the column matrix already.
#include "signcore/layers/conv2d.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>

#include "signcore/direct_conv.hpp"
#include "signcore/winograd.hpp"
#include "signcore/gemm.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/activation.hpp"
#include "signcore/layers/pooling.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

std::atomic<std::size_t> g_chunk_bytes{std::size_t{1} << 20};
std::atomic<bool> g_pipelined{true};
std::atomic<bool> g_direct{true};
std::atomic<bool> g_direct_dx{true};
std::atomic<bool> g_direct_dw{true};
std::atomic<bool> g_winograd{true};

template <class V>
std::string sizes_str(const V& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// `rank` integers > 0 (one value is used for every axis), right-aligned into (depth, height, width)
// with the depth left at 1 for rank 2.
std::array<std::size_t, 3> checked_sizes(const Convolution::Sizes& v, std::size_t rank, const char* arg) {
  if ((v.size() != 1 && v.size() != rank) || std::any_of(v.begin(), v.end(), [](long long d) { return d <= 0; }))
    fail<ValueError>("The `", arg, "` argument must be a tuple of ", rank, " integers > 0. Received: ",
                     arg, "=", sizes_str(v));
  std::array<std::size_t, 3> out{1, 1, 1};
  for (std::size_t i = 0; i < rank; ++i) out[3 - rank + i] = static_cast<std::size_t>(v.size() == 1 ? v[0] : v[i]);
  return out;
}

std::size_t checked_filters(long long filters) {
  if (filters <= 0)
    fail<ValueError>("Invalid value for argument `filters`. Expected a strictly positive value. "
                     "Received: filters=", filters);
  return static_cast<std::size_t>(filters);
}

// Work per parallel chunk of the element-wise loops, in floats.
constexpr std::size_t kGrain = 1 << 14;

// Scratch shared by every Conv2D run on this thread (layers run one after another): the column
// buffers and one chunk of dL/dz. Grown on demand, never shrunk, so a model of many convolutions
// holds one chunk's worth, not one per layer.
struct Scratch {
  std::vector<float> cols[2];  // two, so col2im of one chunk can overlap im2col of the next
  std::vector<float> dz;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}
float* grow(std::vector<float>& v, std::size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Runs fn(p0, p1) over the parts [0, parts): in parallel, or on the calling thread when the whole
// job moves fewer than a few grains of floats (waking the other threads would cost more).
template <class Fn>
void run_parts(std::size_t parts, std::size_t work_floats, Fn&& fn) {
  if (work_floats < 2 * kGrain || parts <= 1) {
    fn(std::size_t{0}, parts);
  } else {
    parallel_for(parts, 1, fn);
  }
}

// Activations whose epilogue and derivative are simple enough to fuse into the patch-extraction
// regions (one parallel region per chunk instead of two or three).
bool fusible(ActivationKind act) { return act == ActivationKind::Linear || act == ActivationKind::Relu; }

// y = act(y + b) for rows [r0, r1) of F (linear or relu only; b may be null).
void bias_relu_rows(bool relu, const float* b, float* y, std::size_t r0, std::size_t r1,
                    std::size_t F) {
  if (!relu && !b) return;
  for (std::size_t r = r0; r < r1; ++r) {
    float* yr = y + r * F;
    if (relu && b) {
      for (std::size_t f = 0; f < F; ++f) yr[f] = std::max(yr[f] + b[f], 0.f);
    } else if (relu) {
      for (std::size_t f = 0; f < F; ++f) yr[f] = std::max(yr[f], 0.f);
    } else {
      for (std::size_t f = 0; f < F; ++f) yr[f] += b[f];
    }
  }
}

// Any activation: z (rows, F) += b, then y = act(z); z and y may alias. Parallel inside.
void bias_activation(ActivationKind act, const float* b, float* z, float* y, std::size_t rows,
                     std::size_t F) {
  const std::size_t grain = std::max<std::size_t>(1, kGrain / F);
  if (fusible(act) && z == y) {
    parallel_for(rows, grain, [&](std::size_t r0, std::size_t r1) {
      bias_relu_rows(act == ActivationKind::Relu, b, y, r0, r1, F);
    });
    return;
  }
  if (b) {
    parallel_for(rows, grain, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        float* zr = z + r * F;
        for (std::size_t f = 0; f < F; ++f) zr[f] += b[f];
      }
    });
  }
  if (act != ActivationKind::Linear || z != y) activation_forward(act, z, y, rows, F);
}

// Rows [r0, r1) of dz = dy * relu'(y) (relu; with y null, dy already is dz and is copied into the
// chunk's buffer) or nothing (linear: dz is dy), and db_part += the column sums of dz (if db_part is
// not null).
void relu_grad_rows(bool relu, const float* y, const float* dy, float* dz, float* db_part,
                    std::size_t r0, std::size_t r1, std::size_t F) {
  if (!relu && !db_part) return;
  for (std::size_t r = r0; r < r1; ++r) {
    const float* dyr = dy + r * F;
    if (relu && y) {  // y > 0 exactly when z > 0
      const float* yr = y + r * F;
      float* dzr = dz + r * F;
      for (std::size_t f = 0; f < F; ++f) dzr[f] = yr[f] > 0.f ? dyr[f] : 0.f;
      dyr = dzr;
    } else if (relu) {  // dy is dL/dz already (relu hand-off): into the chunk's buffer, hot in cache
      std::copy(dyr, dyr + F, dz + r * F);
    }
    if (db_part)
      for (std::size_t f = 0; f < F; ++f) db_part[f] += dyr[f];
  }
}

// sum += the per-thread partials part[p] (parts arrays of n floats), added in a fixed order so the
// result is deterministic for a thread count.
void add_parts(const float* part, std::size_t parts, std::size_t n, float* sum) {
  for (std::size_t p = 0; p < parts; ++p)
    for (std::size_t i = 0; i < n; ++i) sum[i] += part[p * n + i];
}

}  // namespace

void Convolution::set_chunk_bytes(std::size_t bytes) {
  if (bytes == 0) fail<ValueError>("Conv2D chunk size must be positive. Received: bytes=0");
  g_chunk_bytes = bytes;
}
std::size_t Convolution::chunk_bytes() { return g_chunk_bytes; }
void Convolution::set_pipelined(bool on) { g_pipelined = on; }
void Convolution::set_direct(bool on) { g_direct = on; }
bool Convolution::direct() { return g_direct; }
void Convolution::set_direct_input_gradient(bool on) { g_direct_dx = on; }
bool Convolution::direct_input_gradient_enabled() { return g_direct_dx; }
void Convolution::set_direct_kernel_gradient(bool on) { g_direct_dw = on; }
bool Convolution::direct_kernel_gradient_enabled() { return g_direct_dw; }
bool Convolution::pipelined() { return g_pipelined; }
void Convolution::set_winograd(bool on) { g_winograd = on; }
bool Convolution::winograd_enabled() { return g_winograd; }

Convolution::Convolution(const char* cls, std::size_t rank, long long filters, const Sizes& kernel_size,
                         const Sizes& strides, const std::string& padding, const std::string& data_format,
                         const Sizes& dilation_rate, long long groups, const std::string& activation,
                         bool use_bias, std::string kernel_initializer, std::string bias_initializer,
                         std::string name)
    : Layer(std::string()),
      rank_(rank),
      filters_(checked_filters(filters)),
      kernel_size_(checked_sizes(kernel_size, rank, "kernel_size")),
      strides_(checked_sizes(strides, rank, "strides")),
      dilation_(checked_sizes(dilation_rate, rank, "dilation_rate")),
      padding_(parse_conv_padding(padding)),
      activation_(parse_activation(activation)),
      use_bias_(use_bias),
      kernel_initializer_(std::move(kernel_initializer)),
      bias_initializer_(std::move(bias_initializer)) {
  if (!data_format.empty() && data_format != "channels_last")
    fail<ValueError>("signcore's ", cls, " supports data_format=\"channels_last\" only (inputs shaped "
                     "(batch, ", rank == 3 ? "depth, " : "", "height, width, channels)). Received: "
                     "data_format=", data_format);
  if (groups != 1)
    fail<ValueError>("signcore's ", cls, " supports groups=1 only (grouped convolutions are not "
                     "implemented). Received: groups=", groups);
  if (*std::max_element(strides_.begin(), strides_.end()) > 1 &&
      *std::max_element(dilation_.begin(), dilation_.end()) > 1)
    fail<ValueError>("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                     "Received: strides=", sizes_str(stride_sizes()), " and dilation_rate=",
                     sizes_str(dilation_sizes()));
  check_initializer(kernel_initializer_);
  check_initializer(bias_initializer_);
  // The automatic name is taken last, so a rejected call does not use one up.
  name_ = name.empty() ? unique_name(snake_case(cls)) : std::move(name);
}

Convolution::Args Convolution::args_from_config(const char* cls, std::size_t rank, const json& c) {
  try {
    auto sizes = [&](const char* key, long long fallback) -> Sizes {
      if (!c.contains(key) || c[key].is_null()) return Sizes(rank, fallback);
      const json& v = c[key];
      if (v.is_number_integer()) return Sizes(rank, v.get<long long>());
      if (!v.is_array() || v.size() != rank)
        fail<ValueError>(cls, " config: `", key, "` must be an integer or a list of ", rank,
                         " integers. Received: ", key, "=", v.dump());
      return v.get<Sizes>();
    };
    if (!c.contains("kernel_size"))
      fail<ValueError>(cls, " config needs `kernel_size`. Received: ", c.dump());
    auto init = [&c](const char* key, const char* fallback) {
      if (!c.contains(key) || c[key].is_null()) return std::string(fallback);
      const json& v = c[key];
      return v.is_object() ? v.at("class_name").get<std::string>() : v.get<std::string>();
    };
    Args a;
    a.filters = c.at("filters").get<long long>();
    a.kernel_size = sizes("kernel_size", 1);
    a.strides = sizes("strides", 1);
    a.padding = c.value("padding", std::string("valid"));
    a.data_format = c.contains("data_format") && c["data_format"].is_string()
                        ? c["data_format"].get<std::string>() : std::string("channels_last");
    a.dilation_rate = sizes("dilation_rate", 1);
    a.groups = c.value("groups", 1LL);
    a.activation = c.contains("activation") && c["activation"].is_string()
                       ? c["activation"].get<std::string>() : std::string("linear");
    a.use_bias = c.value("use_bias", true);
    a.kernel_initializer = init("kernel_initializer", "glorot_uniform");
    a.bias_initializer = init("bias_initializer", "zeros");
    a.name = c.value("name", std::string());
    return a;
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid ", cls, " config (", e.what(), "). Received: ", c.dump());
  }
}

json Convolution::get_config() const {
  json c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = kernel_sizes();
  c["strides"] = stride_sizes();
  c["padding"] = conv_padding_name(padding_);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = dilation_sizes();
  c["groups"] = 1;
  c["activation"] = activation_name(activation_);
  c["use_bias"] = use_bias_;
  c["kernel_initializer"] = kernel_initializer_;
  c["bias_initializer"] = bias_initializer_;
  return c;
}

bool Convolution::fuse_activation(const Layer* layer) {
  const auto* a = dynamic_cast<const Activation*>(layer);
  if (layer && (!a || activation_ != ActivationKind::Linear)) return false;
  fused_ = a ? a->activation() : ActivationKind::Linear;
  return true;
}

bool Convolution::receive_relu_masked_gradient(bool on) {
  if (on && act() != ActivationKind::Relu) return false;
  masked_dy_ = on;
  return true;
}

// ([D,] H, W, C) -> ([OD,] OH, OW, F); kernel ([kd,] kh, kw, C, F), bias (F,).
Shape Convolution::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != rank_ + 1 || shape_size(in) == 0)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects ",
                     rank_ == 3 ? "volumes of shape (None, depth, height, width, channels)"
                                : "images of shape (None, height, width, channels)",
                     ". Received: input_shape=", shape_str(in));
  ConvAxis* axes[3] = {&geom_.d, &geom_.h, &geom_.w};
  for (std::size_t a = 0; a < 3; ++a) {
    const std::size_t size = a + rank_ < 3 ? 1 : in[a + rank_ - 3];
    *axes[a] = ConvAxis::make(size, kernel_size_[a], strides_[a], dilation_[a], a + rank_ < 3 ? ConvPadding::Valid : padding_);
  }
  geom_.channels = in.back();
  if (geom_.d.out == 0 || geom_.h.out == 0 || geom_.w.out == 0)
    fail<ValueError>("Computed output size would be zero or negative for layer '", name_,
                     "' (", class_name(), "): the input is smaller than the (dilated) kernel. Received: "
                     "inputs shape=", shape_str(in), ", kernel_size=", sizes_str(kernel_sizes()),
                     ", dilation_rate=", sizes_str(dilation_sizes()), ", padding=\"",
                     conv_padding_name(padding_), "\"");
  in_shape_ = in;
  Shape kshape(kernel_size_.end() - rank_, kernel_size_.end());
  kshape.push_back(geom_.channels);
  kshape.push_back(filters_);
  kernel_id_ = add_weight(params, "kernel", kshape, kernel_initializer_);
  if (use_bias_) bias_id_ = add_weight(params, "bias", {filters_}, bias_initializer_);
  Shape out;
  for (const ConvAxis* a : axes)
    if (a != &geom_.d || rank_ == 3) out.push_back(a->out);
  out.push_back(filters_);
  return out;
}

std::size_t Convolution::chunk_lines(bool columns) const {
  const std::size_t per_sample = geom_.lines();
  const std::size_t row_floats = !columns || geom_.is_pointwise() ? filters_ : std::max(geom_.patch(), filters_);
  const std::size_t line_bytes = geom_.w.out * row_floats * sizeof(float);
  const std::size_t fit = std::max<std::size_t>(1, chunk_bytes() / std::max<std::size_t>(1, line_bytes));
  if (fit < per_sample) return columns ? fit : per_sample;
  return fit / per_sample * per_sample;  // whole samples
}

// The direct backward kernels (direct_conv.hpp) pay where the GEMMs they replace are narrow:
// dcols = dz W^T has F as its inner dimension, dW = cols^T dz a (K, F) result; with both direct
// there are no columns at all, so the backward runs whole images per thread (pipelined) whatever
// their size. Measured A/B in one process, forward + backward, GEMM time over direct time, 1 / 2
// threads (this machine is noisy: +-10% is level):
//   dW of a first layer (C = 1 or 3): 1.02-1.36 / 1.19-2.62;
//   both, F = 32 (CIFAR conv2): 1.07 / 1.85;
//   both, F = 64 (CIFAR conv3, conv4, ASL conv2, emotion conv2): 0.99-1.05 / 0.92-1.24 (ASL conv2,
//   whose columns did not fit whole images, gains the most);
//   both, F = 128 (ASL conv3, emotion conv3): 0.89-1.04 / 0.86-0.89, so those keep the GEMMs.
constexpr std::size_t kDirectBackwardMaxFilters = 64;
constexpr std::size_t kMaxPipelinedImageChunks = 4;

bool Convolution::direct_input_gradient() const {
  if (!direct() || !g_direct_dx || *std::max_element(strides_.begin(), strides_.end()) != 1) return false;
  const ConvGeometry tg = transposed_geometry(geom_, filters_);
  // As Winograd F(2x2, 3x3) it beats the GEMMs at any width: with F = 128 (ASL conv3, emotion
  // conv3) the whole step's CPU time fell 4-14% (emotion 143 -> 124-129 ms, ASL 249-260 -> 240 ms).
  if (winograd() && winograd_supported(tg, geom_.channels)) return true;
  return filters_ <= kDirectBackwardMaxFilters && direct_conv_supported(tg, geom_.channels);
}

bool Convolution::direct_kernel_gradient() const {
  return direct() && g_direct_dw && (filters_ <= kDirectBackwardMaxFilters || geom_.channels < 8) &&
         direct_conv_supported(geom_, filters_);
}

bool Convolution::winograd() const {
  return direct() && g_winograd && rank_ == 2 && fusible(act()) && winograd_supported(geom_, filters_);
}

std::size_t Convolution::check_input(const Tensor& x) const {
  const Shape xs = shape_of(x);
  if (xs.empty() || xs != with_batch(xs[0], in_shape_))
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects inputs of shape ",
                     shape_str(in_shape_).replace(1, 4, "N"), ". Received: shape=", shape_str(xs, false));
  return xs[0];
}

// x: (N, [D,] H, W, C) -> y: (N, [OD,] OH, OW, F)
void Convolution::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x), F = filters_, K = geom_.patch(), OW = geom_.w.out;
  const Shape ys = with_batch(N, output_shape_);
  ensure_shape(y, ys);
  x_ = &x;
  y_ = &y;
  const bool keep_z = !activation_backward_uses_output(act());
  if (keep_z) ensure_shape(z_, ys);
  if (N == 0) return;
  float* z = keep_z ? z_.data() : y.data();
  float* yp = y.data();
  const float* W = params_->value(kernel_id_);
  const float* b = use_bias_ ? params_->value(bias_id_) : nullptr;
  const bool pointwise = geom_.is_pointwise();
  const bool fuse = fusible(act()) && !keep_z;
  const bool relu = act() == ActivationKind::Relu;
  const std::size_t parts = static_cast<std::size_t>(std::max(1, get_num_threads()));

  const std::size_t total = N * geom_.lines(), step = chunk_lines(true);
  const std::size_t chunks = (total + step - 1) / step;
  if (fuse && winograd()) {
    // Winograd F(2x2, 3x3) (winograd.hpp), the rows of output tiles split between the threads.
    float* packed = grow(scratch().dz, winograd_packed_size(geom_, F));  // dz is free during forward
    winograd_pack(geom_, W, F, packed);
    parallel_for(N * winograd_tile_rows(geom_), 1, [&](std::size_t r0, std::size_t r1) {
      winograd_conv_rows(geom_, x.data(), packed, b, relu, F, r0, r1,
                         yp + winograd_first_line(geom_, r0) * OW * F);
    });
    return;
  }
  if (direct() && fuse && !pointwise && direct_conv_supported(geom_, F)) {
    // Direct convolution (direct_conv.hpp), the lines split between the threads.
    float* packed = grow(scratch().dz, K * F);  // dz is free during forward
    direct_conv_pack(geom_, W, F, packed);
    parallel_for(total, 1, [&](std::size_t l0, std::size_t l1) {
      direct_conv_lines(geom_, x.data(), packed, b, relu, F, l0, l1, yp + l0 * OW * F);
    });
    return;
  }
  if (pipelined() && fuse && !pointwise && parts > 1 && chunks >= parts) {
    // Pipelined: thread p runs chunks [chunks * p / parts, chunks * (p + 1) / parts) end to end.
    SingleThreadedBlas single;
    parallel_for(parts, 1, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        float* cb = grow(scratch().cols[0], step * OW * K);  // this thread's scratch
        for (std::size_t c = chunks * p / parts; c < chunks * (p + 1) / parts; ++c) {
          const std::size_t l0 = c * step, l1 = std::min(total, l0 + step);
          const std::size_t r0 = l0 * OW, rows = (l1 - l0) * OW;
          im2col_part(geom_, x.data(), l0, l1, cb, 0, 1);
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                      static_cast<int>(F), static_cast<int>(K), 1.f, cb, static_cast<int>(K), W,
                      static_cast<int>(F), 0.f, yp + r0 * F, static_cast<int>(F));
          bias_relu_rows(relu, b, yp + r0 * F, 0, rows, F);
        }
      }
    });
    return;
  }
  float* cols_buf = pointwise ? nullptr : grow(scratch().cols[0], std::min(step, total) * OW * K);
  // The epilogue of chunk i runs in the same parallel region as the im2col of chunk i + 1.
  std::size_t pending_r0 = 0, pending_rows = 0;
  for (std::size_t l0 = 0; l0 < total; l0 += step) {
    const std::size_t l1 = std::min(total, l0 + step), r0 = l0 * OW, rows = (l1 - l0) * OW;
    const float* cols = x.data() + r0 * K;  // pointwise: x rows are the columns (K = C)
    if (!pointwise) {
      run_parts(parts, rows * K + pending_rows * F, [&](std::size_t p0, std::size_t p1) {
        for (std::size_t p = p0; p < p1; ++p) {
          bias_relu_rows(relu, b, yp + pending_r0 * F, pending_rows * p / parts,
                         pending_rows * (p + 1) / parts, F);
          im2col_part(geom_, x.data(), l0, l1, cols_buf, p, parts);
        }
      });
      cols = cols_buf;
    } else if (pending_rows) {
      bias_activation(act(), b, yp + pending_r0 * F, yp + pending_r0 * F, pending_rows, F);
    }
    pending_rows = 0;
    // z = cols W: (rows, K) (K, F) -> (rows, F)
    sgemm(false, false, rows, F, K, 1.f, cols, K, W, F, 0.f, z + r0 * F, F);
    if (fuse) {
      pending_r0 = r0;
      pending_rows = rows;
    } else {
      bias_activation(act(), b, z + r0 * F, yp + r0 * F, rows, F);
    }
  }
  if (pending_rows)
    bias_activation(act(), b, yp + pending_r0 * F, yp + pending_r0 * F, pending_rows, F);
}

bool Convolution::can_pool_into(const Pooling& pool) const {
  if (rank_ != 2 || pool.rank() != 2 || !direct() || !fusible(act()) || geom_.is_pointwise() ||
      !direct_conv_supported(geom_, filters_))
    return false;
  for (std::size_t a = 1; a < 3; ++a) {
    const PoolAxis& ax = pool.axis(a);
    if (ax.stride != ax.size || ax.pad_before != 0) return false;
  }
  return true;
}

namespace {
// pooled[c] = the maximum of map(v) over the cells of a window, v = lines + (h OW + w) F, h in
// [0, rows), w in [w0, w1), in window order; a NaN replaces the running maximum and stays
// (MaxPooling's rule).
template <class Map>
void pool_window(const float* lines, std::size_t rows, std::size_t OW, std::size_t w0, std::size_t w1,
                 std::size_t F, const Map& map, float* pooled) {
  for (std::size_t f = 0; f < F; ++f) pooled[f] = map(lines[w0 * F + f], f);
  for (std::size_t h = 0; h < rows; ++h)
    for (std::size_t w = h == 0 ? w0 + 1 : w0; w < w1; ++w) {
      const float* v = lines + (h * OW + w) * F;
      for (std::size_t f = 0; f < F; ++f) {
        const float m = map(v[f], f);
        pooled[f] = m > pooled[f] || m != m ? m : pooled[f];
      }
    }
}
}  // namespace

Convolution::PooledSetup Convolution::pooled_setup(const Tensor& x, const Pooling& pool) {
  if (!can_pool_into(pool))
    fail<StateError>("Layer '", name_, "' (", class_name(), ") cannot compute pooling '",
                     pool.name(), "' in its forward");
  const std::size_t N = check_input(x), F = filters_;
  if (pool.axis(1).in != geom_.h.out || pool.axis(2).in != geom_.w.out || pool.output_shape().back() != F)
    fail<ValueError>("Layer '", pool.name(), "' does not pool the output of layer '", name_, "'");
  const bool wino = winograd() && pool.axis(1).size == 2 && pool.axis(2).size == 2;
  const float* W = params_->value(kernel_id_);
  float* packed = grow(scratch().dz, wino ? winograd_packed_size(geom_, F) : geom_.patch() * F);
  if (wino) winograd_pack(geom_, W, F, packed);
  else direct_conv_pack(geom_, W, F, packed);  // dz is free during forward
  return {N, packed, use_bias_ ? params_->value(bias_id_) : nullptr, act() == ActivationKind::Relu,
          wino};
}

void Convolution::forward_pooled(const Tensor& x, const Pooling& pool, const ChannelMap* map,
                                 Tensor& pooled) {
  const PooledSetup set = pooled_setup(x, pool);
  const std::size_t N = set.N, F = filters_, OH = geom_.h.out, OW = geom_.w.out;
  const PoolAxis &ph = pool.axis(1), &pw = pool.axis(2);
  ensure_shape(pooled, Shape{N, ph.out, pw.out, F});
  x_ = y_ = nullptr;  // no backward after an inference forward
  // Rows of windows per batch of work: one for the direct kernel; for Winograd, whose tile rows
  // are the rows of windows, enough for a block of about 48 tiles (winograd.cpp's blocks).
  const std::size_t tile_rows = winograd_tile_rows(geom_);
  const std::size_t group = set.winograd ? std::max<std::size_t>(1, 48 / ((OW + 1) / 2)) : 1;
  parallel_for(N * ph.out, 1, [&](std::size_t r0, std::size_t r1) {
    float* lines = grow(scratch().cols[0], group * ph.size * OW * F);  // this thread's
    for (std::size_t r = r0; r < r1;) {
      // Rows [r, r_end) of windows of sample n: each output lines [h0, h0 + rows) of n (the last
      // row may be cut short), computed into `lines` one after another.
      const std::size_t n = r / ph.out, r_end = std::min({r1, r + group, (n + 1) * ph.out});
      if (set.winograd)
        winograd_conv_rows(geom_, x.data(), set.packed, set.bias, set.relu, F,
                           n * tile_rows + r % ph.out, n * tile_rows + r % ph.out + (r_end - r), lines);
      for (std::size_t k = r; k < r_end; ++k) {
        const std::size_t h0 = k % ph.out * ph.stride, rows = std::min(h0 + ph.size, OH) - h0;
        const float* row_lines = lines + (k - r) * ph.size * OW * F;
        if (!set.winograd)
          direct_conv_lines(geom_, x.data(), set.packed, set.bias, set.relu, F, n * OH + h0,
                            n * OH + h0 + rows, lines);
        float* out = pooled.data() + k * pw.out * F;
        for (std::size_t j = 0; j < pw.out; ++j) {
          const std::size_t w0 = j * pw.stride, w1 = std::min(w0 + pw.size, OW);
          if (map) pool_window(row_lines, rows, OW, w0, w1, F, *map, out + j * F);
          else pool_window(row_lines, rows, OW, w0, w1, F, IdentityMap(), out + j * F);
        }
      }
      r = r_end;
    }
  });
}

void Convolution::forward_pooled_training(const Tensor& x, Tensor& y, const Pooling& pool,
                                          const PooledTraining& out) {
  const PooledSetup set = pooled_setup(x, pool);
  const std::size_t N = set.N, F = filters_, OH = geom_.h.out, OW = geom_.w.out;
  const PoolAxis &ph = pool.axis(1), &pw = pool.axis(2);
  ensure_shape(y, with_batch(N, output_shape_));
  x_ = &x;
  y_ = &y;
  const std::size_t tile_rows = winograd_tile_rows(geom_);
  parallel_for(N * ph.out, 1, [&](std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r) {
      // Row r of windows: output lines [h0, h0 + rows) of sample n; the sample's last row also
      // computes the lines below every window (valid pooling of an odd size).
      const std::size_t n = r / ph.out, i = r % ph.out, h0 = i * ph.stride;
      const std::size_t rows = std::min(h0 + ph.size, OH) - h0;
      const std::size_t h1 = i + 1 == ph.out ? OH : h0 + rows;
      float* lines = y.data() + (n * OH + h0) * OW * F;
      if (set.winograd)  // tile rows h0 / 2 .. ceil(h1 / 2): exactly lines [h0, h1)
        winograd_conv_rows(geom_, x.data(), set.packed, set.bias, set.relu, F, n * tile_rows + i,
                           n * tile_rows + (h1 + 1) / 2, lines);
      else
        direct_conv_lines(geom_, x.data(), set.packed, set.bias, set.relu, F, n * OH + h0,
                          n * OH + h1, lines);
      if (out.sums)
        for (std::size_t h = h0; h < h1; ++h)
          direct_conv_line_sums(lines + (h - h0) * OW * F, OW, F, out.shift,
                                out.sums + (n * OH + h) * 2 * F);
      const std::size_t o = r * pw.out * F;
      for (std::size_t j = 0; j < pw.out; ++j) {
        const std::size_t w0 = j * pw.stride, w1 = std::min(w0 + pw.size, OW);
        direct_conv_window_extremes(lines, rows, h0, OW, w0, w1, F, out.sign, out.values + o + j * F,
                                    out.at + o + j * F);
      }
    }
  });
}

void Convolution::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const Tensor& x = *x_;
  const std::size_t N = x.shape()[0], F = filters_, K = geom_.patch(), C = geom_.channels;
  const std::size_t OW = geom_.w.out, M = N * geom_.rows();
  if (dy.size() != M * F)
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(shape_of(*y_), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (dx) ensure_shape(*dx, shape_of(x));
  if (N == 0) return;
  const bool need_w = params_->weights()[kernel_id_].trainable;
  const bool need_b = use_bias_ && params_->weights()[bias_id_].trainable;
  if (!need_w && !need_b && !dx) return;

  const float* W = params_->value(kernel_id_);
  float* dW = params_->grad(kernel_id_);
  float* db = need_b ? params_->grad(bias_id_) : nullptr;
  const bool keep_z = !activation_backward_uses_output(act());
  const bool pointwise = geom_.is_pointwise();
  const bool fuse = fusible(act());
  const bool relu = act() == ActivationKind::Relu;
  // y for relu' (null: dy already is dL/dz, Model::hand_off_relus)
  const float* relu_y = masked_dy_ ? nullptr : y_->data();
  const std::size_t parts = static_cast<std::size_t>(std::max(1, get_num_threads()));
  // Without columns to hold (the direct kernel gradient, and dx direct or not needed), chunks are
  // whole images, sized by their dz.
  const bool direct_dw = need_w && !pointwise && direct_kernel_gradient();
  const bool columns = !direct_dw || (dx && !direct_input_gradient());
  const std::size_t lines = geom_.lines(), total = N * lines;
  std::size_t step = chunk_lines(columns);
  // An image whose columns exceed a chunk (ASL conv3: 1.8 MB) still runs pipelined, one whole image
  // per chunk, up to kMaxPipelinedImageChunks chunks' worth: each thread then works in its own
  // image instead of both threads meeting in every line chunk's GEMMs. ASL conv3 (30x30x64 -> 128,
  // batch 16), forward + backward on 2 threads, A/B in one process: 57 -> 46 ms (1 thread: level).
  if (step < lines && pipelined() && fuse && !pointwise && N >= parts &&
      lines <= kMaxPipelinedImageChunks * step)
    step = lines;
  const bool whole_samples = step % lines == 0;
  const std::size_t chunk_rows = std::min(step, total) * OW;
  const std::size_t chunks = (total + step - 1) / step;
  if (pipelined() && fuse && !pointwise && whole_samples && chunks >= parts) {
    backward_pipelined(dy, dx, dW, db, need_w, direct_dw, parts, step, chunks);
    return;
  }
  Scratch& sc = scratch();
  float* bufs[2] = {nullptr, nullptr};
  if (!pointwise && ((need_w && !direct_dw) || dx)) {
    bufs[0] = grow(sc.cols[0], chunk_rows * K);
    if (dx) bufs[1] = grow(sc.cols[1], chunk_rows * K);
  }
  float* dz_buf = act() != ActivationKind::Linear ? grow(sc.dz, chunk_rows * F) : nullptr;
  if (db) db_part_.assign(parts * F, 0.f);
  if (direct_dw) dW_part_.assign(parts * K * F, 0.f);
  // Chunks inside one image add into dx, which must start at zero.
  if (dx && !pointwise && !whole_samples) {
    float* d = dx->data();
    parallel_for(dx->size(), kGrain, [&](std::size_t b0, std::size_t b1) {
      std::fill(d + b0, d + b1, 0.f);
    });
  }

  // Per chunk, one parallel region does: col2im of the previous chunk's dcols (other buffer),
  // dz = dy * act'(.) and the bias-gradient partial sums of this chunk, and its im2col. Then the
  // two GEMMs run on all threads (gemm.hpp).
  std::size_t pending_l0 = 0, pending_l1 = 0;
  const float* pending_dcols = nullptr;
  for (std::size_t l0 = 0, i = 0; l0 < total; l0 += step, ++i) {
    const std::size_t l1 = std::min(total, l0 + step), r0 = l0 * OW, rows = (l1 - l0) * OW;
    const float* dyc = dy.data() + r0 * F;
    const float* dz = dyc;
    if (!fuse) {  // the activation's own (parallel) derivative, then the bias sums in the region
      const bool from_y = activation_backward_uses_output(act());
      activation_backward(act(), from_y ? nullptr : z_.data() + r0 * F,
                          from_y ? y_->data() + r0 * F : nullptr, dyc, dz_buf, rows, F);
      dz = dz_buf;
    } else if (relu) {
      dz = dz_buf;
    }
    // Two buffers alternate only when col2im of this chunk overlaps the next chunk's im2col.
    float* cols = need_w && !pointwise && !direct_dw ? bufs[dx ? i % 2 : 0] : nullptr;
    const std::size_t work = rows * F + (cols ? rows * K : 0) +
                             (pending_dcols ? (pending_l1 - pending_l0) * OW * K : 0);
    run_parts(parts, work, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        if (pending_dcols)
          col2im_part(geom_, pending_dcols, pending_l0, pending_l1, dx->data(), !whole_samples, p,
                      parts);
        // Whole lines per part, so the direct kernel gradient of a part's lines reads only the dz
        // rows this part has just written.
        const std::size_t la = (l1 - l0) * p / parts, le = (l1 - l0) * (p + 1) / parts;
        const std::size_t a = la * OW, e = le * OW;
        if (fuse)
          relu_grad_rows(relu, relu_y ? relu_y + r0 * F : nullptr, dyc, dz_buf,
                         db ? db_part_.data() + p * F : nullptr, a, e, F);
        else if (db)
          relu_grad_rows(false, nullptr, dz, nullptr, db_part_.data() + p * F, a, e, F);
        if (direct_dw && la < le)
          direct_conv_kernel_gradient(geom_, x.data(), dz + a * F, F, l0 + la, l0 + le,
                                      dW_part_.data() + p * K * F);
        if (cols) im2col_part(geom_, x.data(), l0, l1, cols, p, parts);
      }
    });
    pending_dcols = nullptr;
    if (need_w && !direct_dw) {
      const float* c = cols ? cols : x.data() + r0 * K;  // pointwise: x rows (K = C)
      // dW += cols^T dz: (K, rows) (rows, F) -> (K, F)
      sgemm(true, false, K, F, rows, 1.f, c, K, dz, F, 1.f, dW, F);
    }
    if (dx) {
      // dcols = dz W^T: (rows, F) (F, K) -> (rows, K); pointwise: straight into dx (K = C).
      float* dcols = pointwise ? dx->data() + r0 * C : bufs[i % 2];
      sgemm(false, true, rows, K, F, 1.f, dz, F, W, F, 0.f, dcols, K);
      if (!pointwise) {
        pending_dcols = dcols;
        pending_l0 = l0;
        pending_l1 = l1;
      }
    }
  }
  if (pending_dcols) col2im(geom_, pending_dcols, pending_l0, pending_l1, dx->data(), !whole_samples);
  if (direct_dw) add_parts(dW_part_.data(), parts, K * F, dW);
  if (db) add_parts(db_part_.data(), parts, F, db);
}

// Pipelined backward (relu / linear, chunks of whole images): thread p takes chunks
// [chunks * p / parts, chunks * (p + 1) / parts) and, per chunk, computes dz and its bias sums,
// im2col, dW into its own partial (K, F), and its own images of dx: directly from dz where
// direct_input_gradient() (see direct_conv.hpp), else as dcols = dz W^T and col2im. The partials
// are added in a fixed order afterwards, so the result is deterministic for a thread count.
void Convolution::backward_pipelined(const Tensor& dy, Tensor* dx, float* dW, float* db, bool need_w,
                                     bool direct_dw, std::size_t parts, std::size_t step,
                                     std::size_t chunks) {
  const std::size_t F = filters_, K = geom_.patch(), OW = geom_.w.out;
  const std::size_t total = chunks == 0 ? 0 : x_->shape()[0] * geom_.lines();
  const bool relu = act() == ActivationKind::Relu;
  const float* relu_y = masked_dy_ ? nullptr : y_->data();  // null: dy already is dL/dz
  const float* W = params_->value(kernel_id_);
  const float* x = x_->data();
  // The kernel gradient in the Winograd domain (winograd.hpp) where the forward runs there:
  // partials (16, C, F) per thread, transformed into dW once at the end.
  const bool winograd_dw = need_w && winograd();
  const std::size_t wK = winograd_dw ? winograd_packed_size(geom_, F) : K * F;
  if (need_w) dW_part_.assign(parts * wK, 0.f);
  if (db) db_part_.assign(parts * F, 0.f);
  const bool direct_dx = dx && direct_input_gradient();
  const ConvGeometry tg = transposed_geometry(geom_, F);
  const std::size_t C = geom_.channels;
  // That convolution as Winograd F(2x2, 3x3) where it qualifies (3 x 3 kernels, C a multiple of 8).
  const bool winograd_dx = direct_dx && winograd() && winograd_supported(tg, C);
  if (winograd_dx) {
    std::vector<float>& flipped = scratch().dz;  // not in use yet
    flipped.resize(K * F);
    flip_transposed_kernel(geom_, W, F, flipped.data());
    packed_t_.resize(winograd_packed_size(tg, C));
    winograd_pack(tg, flipped.data(), C, packed_t_.data());
  } else if (direct_dx) {
    packed_t_.resize(K * F);
    direct_conv_pack_transposed(geom_, W, F, packed_t_.data());
  }
  const std::size_t lines = geom_.lines();
  {
    SingleThreadedBlas single;
    parallel_for(parts, 1, [&](std::size_t p0, std::size_t p1) {
      for (std::size_t p = p0; p < p1; ++p) {
        Scratch& sc = scratch();  // this thread's buffers
        float* cols = (need_w && !direct_dw && !winograd_dw) || (dx && !direct_dx) ? grow(sc.cols[0], step * OW * K) : nullptr;
        float* dz_buf = relu ? grow(sc.dz, step * OW * F) : nullptr;
        for (std::size_t c = chunks * p / parts; c < chunks * (p + 1) / parts; ++c) {
          const std::size_t l0 = c * step, l1 = std::min(total, l0 + step);
          const std::size_t r0 = l0 * OW, rows = (l1 - l0) * OW;
          const float* dyc = dy.data() + r0 * F;
          relu_grad_rows(relu, relu_y ? relu_y + r0 * F : nullptr, dyc, dz_buf,
                         db ? db_part_.data() + p * F : nullptr, 0, rows, F);
          const float* dz = relu ? dz_buf : dyc;
          if (winograd_dw) {
            const std::size_t rows_per_sample = winograd_tile_rows(geom_);
            winograd_kernel_gradient_rows(geom_, x, dz, F, l0 / lines * rows_per_sample,
                                          l1 / lines * rows_per_sample, dW_part_.data() + p * wK);
          } else if (need_w && direct_dw) {
            direct_conv_kernel_gradient(geom_, x, dz, F, l0, l1, dW_part_.data() + p * K * F);
          } else if (need_w) {
            im2col_part(geom_, x, l0, l1, cols, 0, 1);
            // dW_p += cols^T dz: (K, rows) (rows, F) -> (K, F)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(K),
                        static_cast<int>(F), static_cast<int>(rows), 1.f, cols, static_cast<int>(K),
                        dz, static_cast<int>(F), 1.f, dW_part_.data() + p * K * F,
                        static_cast<int>(F));
          }
          if (direct_dx) {
            // This chunk's images of dx, as a convolution of their dz.
            const std::size_t n0 = l0 / lines, n1 = l1 / lines;
            float* dx_chunk = dx->data() + n0 * geom_.in_size();
            if (winograd_dx)
              winograd_conv_rows(tg, dz, packed_t_.data(), nullptr, false, C, 0,
                                 (n1 - n0) * winograd_tile_rows(tg), dx_chunk);
            else
              direct_conv_lines(tg, dz, packed_t_.data(), nullptr, false, C, 0, (n1 - n0) * tg.lines(),
                                dx_chunk);
          } else if (dx) {
            // dcols = dz W^T: (rows, F) (F, K) -> (rows, K), then back onto this chunk's images.
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                        static_cast<int>(K), static_cast<int>(F), 1.f, dz, static_cast<int>(F), W,
                        static_cast<int>(F), 0.f, cols, static_cast<int>(K));
            col2im_part(geom_, cols, l0, l1, dx->data(), /*accumulate=*/false, 0, 1);
          }
        }
      }
    });
  }
  if (winograd_dw) {
    for (std::size_t p = 1; p < parts; ++p)  // into part 0, then transformed into dW
      for (std::size_t i = 0; i < wK; ++i) dW_part_[i] += dW_part_[p * wK + i];
    winograd_kernel_gradient_finish(geom_, dW_part_.data(), F, dW);
  } else if (need_w) {
    add_parts(dW_part_.data(), parts, K * F, dW);
  }
  if (db) add_parts(db_part_.data(), parts, F, db);
}

// ----- Conv2D / Conv3D -------------------------------------------------------------------------------

Conv2D::Conv2D(long long filters, Pair kernel_size, Pair strides, const std::string& padding,
               const std::string& data_format, Pair dilation_rate, long long groups,
               const std::string& activation, bool use_bias, std::string kernel_initializer,
               std::string bias_initializer, std::string name)
    : Convolution("Conv2D", 2, filters, Sizes(kernel_size.begin(), kernel_size.end()),
                  Sizes(strides.begin(), strides.end()), padding, data_format,
                  Sizes(dilation_rate.begin(), dilation_rate.end()), groups, activation, use_bias,
                  std::move(kernel_initializer), std::move(bias_initializer), std::move(name)) {}

Conv3D::Conv3D(long long filters, Triple kernel_size, Triple strides, const std::string& padding,
               const std::string& data_format, Triple dilation_rate, long long groups,
               const std::string& activation, bool use_bias, std::string kernel_initializer,
               std::string bias_initializer, std::string name)
    : Convolution("Conv3D", 3, filters, Sizes(kernel_size.begin(), kernel_size.end()),
                  Sizes(strides.begin(), strides.end()), padding, data_format,
                  Sizes(dilation_rate.begin(), dilation_rate.end()), groups, activation, use_bias,
                  std::move(kernel_initializer), std::move(bias_initializer), std::move(name)) {}

LayerPtr Conv2D::from_config(const json& c) {
  const Args a = args_from_config("Conv2D", 2, c);
  auto pair = [](const Sizes& v) { return Pair{v[0], v[1]}; };
  return std::make_shared<Conv2D>(a.filters, pair(a.kernel_size), pair(a.strides), a.padding, a.data_format,
                                  pair(a.dilation_rate), a.groups, a.activation, a.use_bias,
                                  a.kernel_initializer, a.bias_initializer, a.name);
}

LayerPtr Conv3D::from_config(const json& c) {
  const Args a = args_from_config("Conv3D", 3, c);
  auto triple = [](const Sizes& v) { return Triple{v[0], v[1], v[2]}; };
  return std::make_shared<Conv3D>(a.filters, triple(a.kernel_size), triple(a.strides), a.padding,
                                  a.data_format, triple(a.dilation_rate), a.groups, a.activation,
                                  a.use_bias, a.kernel_initializer, a.bias_initializer, a.name);
}

SIGNCORE_REGISTER_LAYER(Conv2D);
SIGNCORE_REGISTER_LAYER(Conv3D);

}  // namespace signcore
