// Conv2D as im2col + GEMM, written for a small multi-core CPU (AVX2/FMA, OpenBLAS).
//
// Rows M = N * OH * OW (one per output position), K = kh * kw * C, F filters. The Keras kernel
// (kh, kw, C, F) is already the (K, F) matrix, so
//   forward:   cols = im2col(x) (M, K);   z = cols W (M, F);   y = act(z + b)
//   backward:  dz = dy * act'(.);  db += sum_rows dz;  dW += cols^T dz;  dx = col2im(dz W^T)
//
// Chunking. cols is kh * kw times larger than x (132 MB for a 3x3 conv of 32 channels on a batch
// of 128 CIFAR images), so it is never materialised for the whole batch. The batch is cut into
// chunks of whole output lines (whole images when one fits) whose columns fit in chunk_bytes(); per
// chunk: im2col (parallel), then ONE sgemm on it (OpenBLAS threads), then the bias + activation
// epilogue on the chunk of y while it is still in cache. The buffer is a member, reused across
// batches. A chunk of a few MB keeps cols in L2/L3 between the im2col write and the GEMM read,
// yet gives GEMMs of thousands of rows, large enough for OpenBLAS to run at full speed.
//
// Backward recomputes the columns chunk by chunk instead of caching them from forward: caching
// would cost kh * kw times the input per layer (more than PyTorch's peak memory), while the
// recomputation is a cache-friendly copy worth a few percent of the chunk's two GEMMs. The same
// buffer then receives dcols = dz W^T, which col2im gathers back into dx (parallel over input lines,
// so no two threads write the same place). dx is skipped entirely when not requested (the first
// layer of a model), and dW / db when the layer is frozen.
//
// A 1x1 kernel with stride 1 and no padding needs no im2col: x is the column matrix already.
// BLAS is never called from inside a parallel region (parallel.hpp): each step runs on all threads
// in turn.
#include "signcore/layers/conv2d.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/parallel.hpp"

#include <ctime>
namespace signcore {
double g_prof[8] = {0};  // TEMP profiling
static double tcpu() { timespec ts{}; clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }
#define PROF(i, stmt) do { double _t = tcpu(); stmt; g_prof[i] += tcpu() - _t; } while (0)

namespace {

std::atomic<std::size_t> g_chunk_bytes{std::size_t{4} << 20};

std::string pair_str(const std::array<std::size_t, 2>& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}
std::string pair_str(const Conv2D::Pair& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

std::array<std::size_t, 2> checked_pair(const Conv2D::Pair& p, const char* arg) {
  if (p[0] <= 0 || p[1] <= 0)
    fail<ValueError>("The `", arg, "` argument must be a tuple of 2 integers > 0. Received: ", arg,
                     "=", pair_str(p));
  return {static_cast<std::size_t>(p[0]), static_cast<std::size_t>(p[1])};
}

std::size_t checked_filters(long long filters) {
  if (filters <= 0)
    fail<ValueError>("Invalid value for argument `filters`. Expected a strictly positive value. "
                     "Received: filters=", filters);
  return static_cast<std::size_t>(filters);
}

// Work per parallel chunk of the element-wise loops, in floats.
constexpr std::size_t kGrain = 1 << 14;

// z (rows, F) += b, then y = act(z). z and y may alias (then the activation runs in place).
void bias_activation(ActivationKind act, const float* b, float* z, float* y, std::size_t rows,
                     std::size_t F) {
  const std::size_t grain = std::max<std::size_t>(1, kGrain / F);
  if (act == ActivationKind::Relu && z == y) {
    parallel_for(rows, grain, [&](std::size_t r0, std::size_t r1) {
      for (std::size_t r = r0; r < r1; ++r) {
        float* yr = y + r * F;
        if (b) {
          for (std::size_t f = 0; f < F; ++f) yr[f] = std::max(yr[f] + b[f], 0.f);
        } else {
          for (std::size_t f = 0; f < F; ++f) yr[f] = std::max(yr[f], 0.f);
        }
      }
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

// dz = dy * act'(.) for `rows` rows of F (z or y as activation_backward needs), and, if db is not
// null, db += the column sums of dz. Returns dz: dy itself for a linear activation, else dz_buf.
// The sums use one partial row per thread block, added in a fixed order (deterministic).
const float* activation_grad(ActivationKind act, const float* z, const float* y, const float* dy,
                             float* dz_buf, float* db, std::vector<float>& partial,
                             std::size_t rows, std::size_t F) {
  const float* dz = dy;
  const bool fused_relu = act == ActivationKind::Relu;
  if (act != ActivationKind::Linear && !fused_relu) {
    const bool from_y = activation_backward_uses_output(act);
    activation_backward(act, from_y ? nullptr : z, from_y ? y : nullptr, dy, dz_buf, rows, F);
    dz = dz_buf;
  }
  if (fused_relu) dz = dz_buf;
  if (!db && !fused_relu) return dz;

  const std::size_t threads = static_cast<std::size_t>(std::max(1, get_num_threads()));
  const std::size_t blocks =
      std::max<std::size_t>(1, std::min(threads, rows * F / std::max<std::size_t>(1, kGrain)));
  if (db) partial.assign(blocks * F, 0.f);
  parallel_for(blocks, 1, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t blk = b0; blk < b1; ++blk) {
      const std::size_t r0 = rows * blk / blocks, r1 = rows * (blk + 1) / blocks;
      float* p = db ? partial.data() + blk * F : nullptr;
      for (std::size_t r = r0; r < r1; ++r) {
        const float* dyr = dy + r * F;
        if (fused_relu) {  // dz = dy where y > 0 (y > 0 exactly when z > 0)
          const float* yr = y + r * F;
          float* dzr = dz_buf + r * F;
          for (std::size_t f = 0; f < F; ++f) dzr[f] = yr[f] > 0.f ? dyr[f] : 0.f;
          if (p)
            for (std::size_t f = 0; f < F; ++f) p[f] += dzr[f];
        } else {
          const float* dzr = dz + r * F;
          for (std::size_t f = 0; f < F; ++f) p[f] += dzr[f];
        }
      }
    }
  });
  if (db)
    for (std::size_t blk = 0; blk < blocks; ++blk)
      for (std::size_t f = 0; f < F; ++f) db[f] += partial[blk * F + f];
  return dz;
}

}  // namespace

void Conv2D::set_chunk_bytes(std::size_t bytes) {
  if (bytes == 0) fail<ValueError>("Conv2D chunk size must be positive. Received: bytes=0");
  g_chunk_bytes = bytes;
}
std::size_t Conv2D::chunk_bytes() { return g_chunk_bytes; }

Conv2D::Conv2D(long long filters, Pair kernel_size, Pair strides, const std::string& padding,
               const std::string& data_format, Pair dilation_rate, long long groups,
               const std::string& activation, bool use_bias, std::string kernel_initializer,
               std::string bias_initializer, std::string name)
    : Layer(std::string()),
      filters_(checked_filters(filters)),
      kernel_size_(checked_pair(kernel_size, "kernel_size")),
      strides_(checked_pair(strides, "strides")),
      dilation_(checked_pair(dilation_rate, "dilation_rate")),
      padding_(parse_conv_padding(padding)),
      activation_(parse_activation(activation)),
      use_bias_(use_bias),
      kernel_initializer_(std::move(kernel_initializer)),
      bias_initializer_(std::move(bias_initializer)) {
  if (!data_format.empty() && data_format != "channels_last")
    fail<ValueError>("signcore's Conv2D supports data_format=\"channels_last\" only (inputs shaped "
                     "(batch, height, width, channels)). Received: data_format=", data_format);
  if (groups != 1)
    fail<ValueError>("signcore's Conv2D supports groups=1 only (grouped convolutions are not "
                     "implemented). Received: groups=", groups);
  if (std::max(strides_[0], strides_[1]) > 1 && std::max(dilation_[0], dilation_[1]) > 1)
    fail<ValueError>("`strides > 1` not supported in conjunction with `dilation_rate > 1`. "
                     "Received: strides=", pair_str(strides_), " and dilation_rate=",
                     pair_str(dilation_));
  check_initializer(kernel_initializer_);
  check_initializer(bias_initializer_);
  // The automatic name is taken last, so a rejected call does not use one up.
  name_ = name.empty() ? unique_name("conv2d") : std::move(name);
}

LayerPtr Conv2D::from_config(const json& c) {
  try {
    auto pair = [&c](const char* key, long long fallback) -> Pair {
      if (!c.contains(key) || c[key].is_null()) return {fallback, fallback};
      const json& v = c[key];
      if (v.is_number_integer()) return {v.get<long long>(), v.get<long long>()};
      if (!v.is_array() || v.size() != 2)
        fail<ValueError>("Conv2D config: `", key, "` must be an integer or a list of 2 integers. "
                         "Received: ", key, "=", v.dump());
      return {v[0].get<long long>(), v[1].get<long long>()};
    };
    if (!c.contains("kernel_size"))
      fail<ValueError>("Conv2D config needs `kernel_size`. Received: ", c.dump());
    const auto act = c.contains("activation") && c["activation"].is_string()
                         ? c["activation"].get<std::string>() : std::string("linear");
    auto init = [&c](const char* key, const char* fallback) {
      if (!c.contains(key) || c[key].is_null()) return std::string(fallback);
      const json& v = c[key];
      return v.is_object() ? v.at("class_name").get<std::string>() : v.get<std::string>();
    };
    const std::string fmt = c.contains("data_format") && c["data_format"].is_string()
                                ? c["data_format"].get<std::string>() : std::string("channels_last");
    return std::make_shared<Conv2D>(
        c.at("filters").get<long long>(), pair("kernel_size", 1), pair("strides", 1),
        c.value("padding", std::string("valid")), fmt, pair("dilation_rate", 1),
        c.value("groups", 1LL), act, c.value("use_bias", true),
        init("kernel_initializer", "glorot_uniform"), init("bias_initializer", "zeros"),
        c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Conv2D config (", e.what(), "). Received: ", c.dump());
  }
}

json Conv2D::get_config() const {
  json c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = {kernel_size_[0], kernel_size_[1]};
  c["strides"] = {strides_[0], strides_[1]};
  c["padding"] = conv_padding_name(padding_);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = {dilation_[0], dilation_[1]};
  c["groups"] = 1;
  c["activation"] = activation_name(activation_);
  c["use_bias"] = use_bias_;
  c["kernel_initializer"] = kernel_initializer_;
  c["bias_initializer"] = bias_initializer_;
  return c;
}

// (H, W, C) -> (OH, OW, F); kernel (kh, kw, C, F), bias (F,).
Shape Conv2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 3 || in[0] == 0 || in[1] == 0 || in[2] == 0)
    fail<ValueError>("Layer '", name_, "' (Conv2D) expects images of shape (None, height, width, "
                     "channels). Received: input_shape=", shape_str(in));
  geom_ = conv_geometry_2d(in[0], in[1], in[2], kernel_size_[0], kernel_size_[1], strides_[0],
                           strides_[1], dilation_[0], dilation_[1], padding_);
  if (geom_.h.out == 0 || geom_.w.out == 0)
    fail<ValueError>("Computed output size would be zero or negative for layer '", name_,
                     "' (Conv2D): the input is smaller than the (dilated) kernel. Received: "
                     "inputs shape=", shape_str(in), ", kernel_size=", pair_str(kernel_size_),
                     ", dilation_rate=", pair_str(dilation_), ", padding=\"",
                     conv_padding_name(padding_), "\"");
  kernel_id_ = add_weight(params, "kernel", {kernel_size_[0], kernel_size_[1], in[2], filters_},
                          kernel_initializer_);
  if (use_bias_) bias_id_ = add_weight(params, "bias", {filters_}, bias_initializer_);
  return {geom_.h.out, geom_.w.out, filters_};
}

std::size_t Conv2D::chunk_lines() const {
  const std::size_t per_sample = geom_.lines();
  const std::size_t row_floats = geom_.is_pointwise() ? filters_ : std::max(geom_.patch(), filters_);
  const std::size_t line_bytes = geom_.w.out * row_floats * sizeof(float);
  const std::size_t fit = std::max<std::size_t>(1, chunk_bytes() / std::max<std::size_t>(1, line_bytes));
  if (fit < per_sample) return fit;
  return fit / per_sample * per_sample;  // whole samples
}

// x: (N, H, W, C) -> y: (N, OH, OW, F)
void Conv2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  if (xs.size() != 4 || xs[1] != geom_.h.in || xs[2] != geom_.w.in || xs[3] != geom_.channels)
    fail<ValueError>("Layer '", name_, "' (Conv2D) expects inputs of shape (N, ", geom_.h.in, ", ",
                     geom_.w.in, ", ", geom_.channels, "). Received: shape=", shape_str(xs, false));
  const std::size_t N = xs[0], F = filters_, K = geom_.patch(), OW = geom_.w.out;
  const Shape ys{N, geom_.h.out, OW, F};
  ensure_shape(y, ys);
  x_ = &x;
  y_ = &y;
  const bool keep_z = !activation_backward_uses_output(activation_);
  if (keep_z) ensure_shape(z_, ys);
  if (N == 0) return;
  float* z = keep_z ? z_.data() : y.data();
  const float* W = params_->value(kernel_id_);
  const float* b = use_bias_ ? params_->value(bias_id_) : nullptr;
  const bool pointwise = geom_.is_pointwise();

  const std::size_t total = N * geom_.lines(), step = chunk_lines();
  if (!pointwise) cols_.resize(std::min(step, total) * OW * K);
  for (std::size_t l0 = 0; l0 < total; l0 += step) {
    const std::size_t l1 = std::min(total, l0 + step), r0 = l0 * OW, rows = (l1 - l0) * OW;
    const float* cols = x.data() + r0 * K;  // pointwise: x rows are the columns (K = C)
    if (!pointwise) {
      PROF(0, im2col(geom_, x.data(), l0, l1, cols_.data()));
      cols = cols_.data();
    }
    // z = cols W: (rows, K) (K, F) -> (rows, F)
    PROF(1, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(rows),
                static_cast<int>(F), static_cast<int>(K), 1.f, cols, static_cast<int>(K), W,
                static_cast<int>(F), 0.f, z + r0 * F, static_cast<int>(F)));
    PROF(2, bias_activation(activation_, b, z + r0 * F, y.data() + r0 * F, rows, F));
  }
}

void Conv2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (Conv2D): backward called before forward");
  const Tensor& x = *x_;
  const std::size_t N = x.shape()[0], F = filters_, K = geom_.patch(), C = geom_.channels;
  const std::size_t OW = geom_.w.out, M = N * geom_.rows();
  if (dy.size() != M * F)
    fail<ValueError>("Layer '", name_, "' (Conv2D): the output gradient has shape ",
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
  const bool keep_z = !activation_backward_uses_output(activation_);
  const bool pointwise = geom_.is_pointwise();
  const std::size_t lines = geom_.lines(), total = N * lines, step = chunk_lines();
  const bool whole_samples = step % lines == 0;
  const std::size_t chunk_rows = std::min(step, total) * OW;
  if (!pointwise) cols_.resize(chunk_rows * K);
  if (activation_ != ActivationKind::Linear) dz_.resize(chunk_rows * F);
  // Chunks inside one image add into dx, which must start at zero.
  if (dx && !pointwise && !whole_samples) std::fill(dx->begin(), dx->end(), 0.f);

  for (std::size_t l0 = 0; l0 < total; l0 += step) {
    const std::size_t l1 = std::min(total, l0 + step), r0 = l0 * OW, rows = (l1 - l0) * OW;
    // dz = dy * act'(z) for the chunk, and db += its column sums.
    const float* dz;
    PROF(3, dz = activation_grad(activation_, keep_z ? z_.data() + r0 * F : nullptr,
                                      y_->data() + r0 * F, dy.data() + r0 * F, dz_.data(), db,
                                      db_part_, rows, F));
    if (need_w) {
      const float* cols = x.data() + r0 * K;
      if (!pointwise) {
        PROF(4, im2col(geom_, x.data(), l0, l1, cols_.data()));
        cols = cols_.data();
      }
      // dW += cols^T dz: (K, rows) (rows, F) -> (K, F)
      PROF(5, cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, static_cast<int>(K), static_cast<int>(F),
                  static_cast<int>(rows), 1.f, cols, static_cast<int>(K), dz, static_cast<int>(F),
                  1.f, dW, static_cast<int>(F)));
    }
    if (dx) {
      // dcols = dz W^T: (rows, F) (F, K) -> (rows, K); pointwise: straight into dx (K = C).
      float* dcols = pointwise ? dx->data() + r0 * C : cols_.data();
      PROF(6, cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows),
                  static_cast<int>(K), static_cast<int>(F), 1.f, dz, static_cast<int>(F), W,
                  static_cast<int>(F), 0.f, dcols, static_cast<int>(K)));
      if (!pointwise) PROF(7, col2im(geom_, dcols, l0, l1, dx->data(), !whole_samples));
    }
  }
}

SIGNCORE_REGISTER_LAYER(Conv2D);

}  // namespace signcore
