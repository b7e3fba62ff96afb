#include "signcore/layers/pooling.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "signcore/errors.hpp"
#include "signcore/layers/batch_norm.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

std::string vec_str(const std::vector<long long>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// `rank` positive integers; a single value is used for every axis. Written right-aligned into
// out[3] (depth, height, width), the depth left at 1 for rank 2.
void positive_tuple(const std::vector<long long>& v, std::size_t rank, const char* arg, const char* cls,
                    std::size_t out[3]) {
  if ((v.size() != 1 && v.size() != rank) || std::any_of(v.begin(), v.end(), [](long long d) { return d <= 0; }))
    fail<ValueError>(cls, ": the `", arg, "` argument must be a tuple of ", rank, " positive integers. "
                     "Received: ", arg, "=", vec_str(v));
  out[0] = 1;
  for (std::size_t i = 0; i < rank; ++i) out[3 - rank + i] = static_cast<std::size_t>(v.size() == 1 ? v[0] : v[i]);
}

std::string lower(std::string s) {
  for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// "" (the default) or "channels_last"; channels_first is a clear refusal.
void check_data_format(const std::string& f, const char* cls) {
  if (f.empty() || f == "channels_last") return;
  if (f == "channels_first")
    fail<ValueError>(cls, ": signcore is channels-last throughout; data_format='channels_first' is not "
                     "supported. Received: data_format='", f, "'");
  fail<ValueError>(cls, ": the `data_format` argument must be one of 'channels_last' or "
                   "'channels_first'. Received: data_format='", f, "'");
}

std::string data_format_from(const json& c) {
  return c.contains("data_format") && c["data_format"].is_string() ? c["data_format"].get<std::string>()
                                                                    : std::string();
}

// ValueError unless `in` is one image (rank 2: (H, W, C)) or volume (rank 3: (D, H, W, C)) with
// positive sizes and fewer than 2^31 values (the arg-max offsets are int32).
void check_sample_shape(const Layer& l, const Shape& in, std::size_t rank) {
  if (in.size() != rank + 1 || shape_size(in) == 0)
    fail<ValueError>("Layer '", l.name(), "' (", l.class_name(), ") expects ",
                     rank == 3 ? "volumes of shape (None, depth, height, width, channels)"
                               : "images of shape (None, height, width, channels)",
                     ". Received: input_shape=", shape_str(in));
  if (shape_size(in) > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail<ValueError>("Layer '", l.name(), "' (", l.class_name(), "): a sample is too large (more than "
                     "2^31 values). Received: input_shape=", shape_str(in));
}

// ValueError unless x is (N, sample...); returns N.
std::size_t check_batch_shape(const Layer& l, const Tensor& x, const Shape& sample) {
  const Shape xs = shape_of(x);
  if (xs.empty() || xs != with_batch(xs[0], sample)) {
    std::string expect = "(N";
    for (std::size_t d : sample) expect += ", " + std::to_string(d);
    fail<ValueError>("Layer '", l.name(), "' (", l.class_name(), ") expects inputs of shape ", expect,
                     "). Received: shape=", shape_str(xs, false));
  }
  return xs[0];
}

// The geometry of one spatial axis for the given padding; ValueError when "valid" leaves nothing.
PoolAxis pool_axis(std::size_t in, std::size_t size, std::size_t stride, bool same) {
  PoolAxis a;
  a.in = in;
  a.size = size;
  a.stride = stride;
  if (same) {
    a.out = (in + stride - 1) / stride;
    const std::size_t need = (a.out - 1) * stride + size;
    a.pad_before = need > in ? (need - in) / 2 : 0;
  } else {
    a.out = in >= size ? (in - size) / stride + 1 : 0;
  }
  return a;
}

// The input range [begin, end) that output index o covers (padding cut off; never empty).
inline void window(const PoolAxis& a, std::size_t o, std::size_t& begin, std::size_t& end) {
  const long long start = static_cast<long long>(o * a.stride) - static_cast<long long>(a.pad_before);
  begin = static_cast<std::size_t>(std::max<long long>(start, 0));
  end = static_cast<std::size_t>(std::min<long long>(start + static_cast<long long>(a.size),
                                                     static_cast<long long>(a.in)));
}

// Work per parallel chunk: at least this many floats.
constexpr std::size_t kGrainFloats = 1 << 14;

std::size_t grain_for(std::size_t floats_per_item) {
  return std::max<std::size_t>(1, kGrainFloats / std::max<std::size_t>(floats_per_item, 1));
}

}  // namespace

// ----- Pooling --------------------------------------------------------------------------------------

Pooling::Spec Pooling::validate(const char* cls, std::size_t rank, const std::vector<long long>& pool_size,
                                const std::vector<long long>& strides, const std::string& padding,
                                const std::string& data_format) {
  Spec s;
  s.rank = rank;
  positive_tuple(pool_size, rank, "pool_size", cls, s.pool);
  if (strides.empty()) {
    std::copy(s.pool, s.pool + 3, s.strides);
  } else {
    positive_tuple(strides, rank, "strides", cls, s.strides);
  }
  s.padding = lower(padding);
  if (s.padding != "valid" && s.padding != "same")
    fail<ValueError>(cls, ": the `padding` argument must be 'valid' or 'same'. Received: padding='",
                     padding, "'");
  check_data_format(data_format, cls);
  return s;
}

Pooling::Pooling(const Spec& spec, std::string name, const std::string& prefix)
    : Layer(name.empty() ? unique_name(prefix) : std::move(name)),
      rank_(spec.rank),
      pool_{spec.pool[0], spec.pool[1], spec.pool[2]},
      strides_{spec.strides[0], spec.strides[1], spec.strides[2]},
      padding_(spec.padding) {}

Pooling::Args Pooling::args_from_config(const json& c, std::size_t rank) {
  auto tuple = [&](const char* key) {
    std::vector<long long> v;
    if (!c.contains(key) || c[key].is_null()) return v;
    if (c[key].is_array()) {
      for (const auto& e : c[key]) v.push_back(e.get<long long>());
    } else {
      v.push_back(c[key].get<long long>());
    }
    return v;
  };
  Args a;
  a.pool_size = tuple("pool_size");
  if (a.pool_size.empty()) a.pool_size.assign(rank, 2);
  a.strides = tuple("strides");
  a.padding = c.value("padding", std::string("valid"));
  a.data_format = data_format_from(c);
  a.name = c.value("name", std::string());
  return a;
}

json Pooling::get_config() const {
  json c = Layer::get_config();
  c["pool_size"] = pool_size();
  c["padding"] = padding_;
  c["strides"] = strides();
  c["data_format"] = "channels_last";
  return c;
}

// ([D,] H, W, C) -> ([D',] H', W', C)
Shape Pooling::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  check_sample_shape(*this, in, rank_);
  const bool same = padding_ == "same";
  for (std::size_t a = 0; a < 3; ++a) {
    const std::size_t size = a + rank_ < 3 ? 1 : in[a + rank_ - 3];
    ax_[a] = pool_axis(size, pool_[a], strides_[a], same);
    if (ax_[a].out == 0) {
      std::vector<long long> ps(pool_ + 3 - rank_, pool_ + 3);
      fail<ValueError>("Layer '", name_, "' (", class_name(), "): with padding='valid' the pool_size ",
                       vec_str(ps), " does not fit in the input; the computed output size would be "
                       "empty. Received: input_shape=", shape_str(in));
    }
  }
  channels_ = in.back();
  Shape out = out_shape(1);
  out.erase(out.begin());
  return out;
}

Shape Pooling::out_shape(std::size_t n) const {
  Shape s{n};
  for (std::size_t a = 3 - rank_; a < 3; ++a) s.push_back(ax_[a].out);
  s.push_back(channels_);
  return s;
}

std::size_t Pooling::check_input(const Tensor& x) const {
  Shape sample;
  for (std::size_t a = 3 - rank_; a < 3; ++a) sample.push_back(ax_[a].in);
  sample.push_back(channels_);
  return check_batch_shape(*this, x, sample);
}

namespace {

// The window of output position (od, oh, ow) as input ranges [b, e) per axis (padding cut off).
struct Window {
  std::size_t b[3], e[3];
  std::size_t cells() const { return (e[0] - b[0]) * (e[1] - b[1]) * (e[2] - b[2]); }
};

// Calls fn(off) for every cell of the window in order (depth, then rows, then columns), where off
// = ((d H + h) W + w) C is the cell's offset within the sample.
template <class Fn>
inline void for_cells(const Window& win, std::size_t H, std::size_t W, std::size_t C, Fn&& fn) {
  for (std::size_t d = win.b[0]; d < win.e[0]; ++d)
    for (std::size_t h = win.b[1]; h < win.e[1]; ++h)
      for (std::size_t w = win.b[2]; w < win.e[2]; ++w) fn(((d * H + h) * W + w) * C);
}

// Runs fn(n, win, out_off) for every output position of rows [b, e) of the (N, D', H') output
// lines, with out_off the position's offset in y (times C).
template <class Fn>
inline void for_windows(const PoolAxis (&ax)[3], std::size_t b, std::size_t e, Fn&& fn) {
  const std::size_t OD = ax[0].out, OH = ax[1].out, OW = ax[2].out;
  for (std::size_t r = b; r < e; ++r) {
    const std::size_t n = r / (OD * OH), od = r / OH % OD, oh = r % OH;
    Window win;
    window(ax[0], od, win.b[0], win.e[0]);
    window(ax[1], oh, win.b[1], win.e[1]);
    for (std::size_t ow = 0; ow < OW; ++ow) {
      window(ax[2], ow, win.b[2], win.e[2]);
      fn(n, win, r * OW + ow);
    }
  }
}

std::size_t window_floats(const PoolAxis (&ax)[3], std::size_t C) {
  return ax[2].out * C * ax[0].size * ax[1].size * ax[2].size;
}

// x: (N, D, H, W, C) -> y: (N, D', H', W', C), the maximum of map(x) over each window; with
// kArgmax, am (N, D', H', W', C) gets the offset of each maximum within its sample. Strictly
// greater keeps the first maximum; a NaN replaces it and stays. One task per output line (n, od, oh).
template <bool kArgmax, class Map = IdentityMap>
void max_pool_kernel(const PoolAxis (&ax)[3], std::size_t N, std::size_t C, const float* xd, float* yd,
                     std::int32_t* am, Map map = Map()) {
  const std::size_t H = ax[1].in, W = ax[2].in, in_size = ax[0].in * H * W * C;
  const std::size_t lines = N * ax[0].out * ax[1].out;
  parallel_for(lines, grain_for(window_floats(ax, C)), [&](std::size_t b, std::size_t e) {
    for_windows(ax, b, e, [&](std::size_t n, const Window& win, std::size_t o) {
      const float* xs = xd + n * in_size;
      float* yr = yd + o * C;
      std::int32_t* ar = kArgmax ? am + o * C : nullptr;
      bool first = true;
      for_cells(win, H, W, C, [&](std::size_t off) {
        const float* xr = xs + off;
        const std::int32_t oi = static_cast<std::int32_t>(off);
        if (first) {  // the first cell of the window starts the running maximum
          first = false;
          for (std::size_t c = 0; c < C; ++c) yr[c] = map(xr[c], c);
          if (kArgmax)
            for (std::size_t c = 0; c < C; ++c) ar[c] = oi + static_cast<std::int32_t>(c);
          return;
        }
        for (std::size_t c = 0; c < C; ++c) {
          const float v = map(xr[c], c);
          const bool take = v > yr[c] || v != v;
          yr[c] = take ? v : yr[c];
          if (kArgmax) ar[c] = take ? oi + static_cast<std::int32_t>(c) : ar[c];
        }
      });
    });
  });
}

// The output-gradient check shared by the pooling layers' backward.
void check_dy(const Layer& l, const Tensor& dy, const Shape& want) {
  if (shape_of(dy) != want)
    fail<ValueError>("Layer '", l.name(), "' (", l.class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(want, false));
}

}  // namespace

// ----- MaxPooling -----------------------------------------------------------------------------------

bool MaxPooling::fuse_normalization(const Layer* batch_norm) {
  const auto* bn = dynamic_cast<const BatchNormalization*>(batch_norm);
  if (batch_norm && !bn) return false;
  norm_ = bn;
  return true;
}

// The maxima (and, with am, where they came from) of x, or of the fused normalisation's map of x.
void MaxPooling::pool(std::size_t N, const float* x, float* y, std::int32_t* am) const {
  if (norm_) {
    const ChannelMap map = norm_->map();
    if (am) max_pool_kernel<true>(ax_, N, channels_, x, y, am, map);
    else max_pool_kernel<false>(ax_, N, channels_, x, y, nullptr, map);
  } else if (am) {
    max_pool_kernel<true>(ax_, N, channels_, x, y, am);
  } else {
    max_pool_kernel<false>(ax_, N, channels_, x, y, nullptr);
  }
}

// x: (N, [D,] H, W, C) -> y: (N, [D',] H', W', C). Training records where each maximum came from.
void MaxPooling::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  ensure_shape(y, out_shape(N));
  argmax_valid_ = ctx.training;
  if (argmax_valid_) argmax_.resize(y.size());
  pool(N, x.data(), y.data(), argmax_valid_ ? argmax_.data() : nullptr);
  x_ = &x;
  y_ = y.data();
}

std::int32_t* MaxPooling::prepare_training(std::size_t N, Tensor& y) {
  ensure_shape(y, out_shape(N));
  argmax_.resize(y.size());
  argmax_valid_ = false;
  return argmax_.data();
}

void MaxPooling::finish_training(const Tensor& x, Tensor& y) {
  if (argmax_.size() != y.size())
    fail<StateError>("Layer '", name_, "': finish_training without prepare_training");
  if (norm_) {
    const ChannelMap map = norm_->map();
    const std::size_t C = channels_;
    float* v = y.data();
    parallel_for(y.size() / C, grain_for(C), [&](std::size_t b, std::size_t e) {
      for (std::size_t r = b; r < e; ++r)
        for (std::size_t c = 0; c < C; ++c) v[r * C + c] = map(v[r * C + c], c);
    });
  }
  argmax_valid_ = true;
  x_ = &x;
  y_ = y.data();
}

ScatteredGradient MaxPooling::scattered_gradient(const Tensor& dy) {
  if (!x_) fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const std::size_t N = shape_of(*x_)[0];
  check_dy(*this, dy, out_shape(N));
  if (!argmax_valid_) {  // after an inference forward: find the maxima again (same comparisons)
    argmax_.resize(dy.size());
    std::vector<float> scratch(dy.size());
    pool(N, x_->data(), scratch.data(), argmax_.data());
    argmax_valid_ = true;
  }
  ScatteredGradient sg{dy.data(), argmax_.data(), N, in_size(), out_size(), norm_ ? y_ : nullptr, {}};
  const PoolAxis &d = ax_[0], &h = ax_[1], &w = ax_[2];
  if (d.in == 1 && d.out == 1 && h.stride == h.size && w.stride == w.size && h.pad_before == 0 &&
      w.pad_before == 0)
    sg.tile = {h.in, w.in, h.size, w.size, h.out, w.out};
  return sg;
}

void MaxPooling::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  const ScatteredGradient sg = scattered_gradient(dy);  // checks dy
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(*x_));
  const std::size_t N = sg.samples, in = sg.in, out = sg.out;
  const float* g = sg.g;
  float* d = dx->data();
  const std::int32_t* am = sg.at;
  // One task per sample: windows of one sample only touch that sample, so there are no races, and
  // each sample's sums run in a fixed order.
  parallel_for(N, grain_for(in + out), [&](std::size_t b, std::size_t e) {
    for (std::size_t n = b; n < e; ++n) {
      float* ds = d + n * in;
      std::fill(ds, ds + in, 0.f);
      const float* gs = g + n * out;
      const std::int32_t* as = am + n * out;
      for (std::size_t i = 0; i < out; ++i) ds[as[i]] += gs[i];
    }
  });
}

// ----- AveragePooling -------------------------------------------------------------------------------

// x: (N, [D,] H, W, C) -> y: (N, [D',] H', W', C), the mean of the real (unpadded) cells of each
// window.
void AveragePooling::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t H = ax_[1].in, W = ax_[2].in, C = channels_, in = in_size();
  ensure_shape(y, out_shape(N));
  const float* xd = x.data();
  float* yd = y.data();
  parallel_for(N * ax_[0].out * ax_[1].out, grain_for(window_floats(ax_, C)), [&](std::size_t b, std::size_t e) {
    for_windows(ax_, b, e, [&](std::size_t n, const Window& win, std::size_t o) {
      const float* xs = xd + n * in;
      float* yr = yd + o * C;
      bool first = true;
      for_cells(win, H, W, C, [&](std::size_t off) {
        const float* xr = xs + off;
        if (first) {  // the first cell starts the sum
          first = false;
          std::copy(xr, xr + C, yr);
          return;
        }
        for (std::size_t c = 0; c < C; ++c) yr[c] += xr[c];
      });
      const float inv = 1.f / static_cast<float>(win.cells());
      for (std::size_t c = 0; c < C; ++c) yr[c] *= inv;
    });
  });
  x_ = &x;
}

void AveragePooling::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const std::size_t N = shape_of(*x_)[0];
  check_dy(*this, dy, out_shape(N));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(*x_));
  const std::size_t H = ax_[1].in, W = ax_[2].in, C = channels_, in = in_size(), out = out_size();
  const std::size_t lines = ax_[0].out * ax_[1].out;  // output lines per sample
  const float* g = dy.data();
  float* d = dx->data();
  // One task per sample (overlapping windows of a sample add into the same cells).
  parallel_for(N, grain_for(in + out), [&](std::size_t b, std::size_t e) {
    std::vector<float> share(C);
    for (std::size_t n = b; n < e; ++n) {
      float* ds = d + n * in;
      std::fill(ds, ds + in, 0.f);
      for_windows(ax_, n * lines, (n + 1) * lines, [&](std::size_t, const Window& win, std::size_t o) {
        const float* gr = g + o * C;
        const float inv = 1.f / static_cast<float>(win.cells());
        for (std::size_t c = 0; c < C; ++c) share[c] = gr[c] * inv;
        for_cells(win, H, W, C, [&](std::size_t off) {
          float* dr = ds + off;
          for (std::size_t c = 0; c < C; ++c) dr[c] += share[c];
        });
      });
    }
  });
}

// ----- the four windowed pooling layers -------------------------------------------------------------

#define SIGNCORE_POOLING_FROM_CONFIG(Cls, Rank)                                                       \
  LayerPtr Cls::from_config(const json& c) {                                                          \
    try {                                                                                             \
      Args a = args_from_config(c, Rank);                                                             \
      return std::make_shared<Cls>(a.pool_size, a.strides, a.padding, a.data_format, a.name);         \
    } catch (const json::exception& e) {                                                              \
      fail<ValueError>("Invalid " #Cls " config (", e.what(), "). Received: ", c.dump());             \
    }                                                                                                 \
  }                                                                                                   \
  SIGNCORE_REGISTER_LAYER(Cls)
SIGNCORE_POOLING_FROM_CONFIG(MaxPooling2D, 2);
SIGNCORE_POOLING_FROM_CONFIG(AveragePooling2D, 2);
SIGNCORE_POOLING_FROM_CONFIG(MaxPooling3D, 3);
SIGNCORE_POOLING_FROM_CONFIG(AveragePooling3D, 3);
#undef SIGNCORE_POOLING_FROM_CONFIG

// ----- GlobalPooling --------------------------------------------------------------------------------

bool GlobalPooling::validate(const char* cls, const std::string& data_format, bool keepdims) {
  check_data_format(data_format, cls);
  return keepdims;
}

GlobalPooling::GlobalPooling(std::size_t rank, bool keepdims, std::string name, const std::string& prefix)
    : Layer(name.empty() ? unique_name(prefix) : std::move(name)), rank_(rank), keepdims_(keepdims) {}

json GlobalPooling::get_config() const {
  json c = Layer::get_config();
  c["data_format"] = "channels_last";
  c["keepdims"] = keepdims_;
  return c;
}

// ([D,] H, W, C) -> (C,) or (1, [1,] 1, C)
Shape GlobalPooling::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  check_sample_shape(*this, in, rank_);
  spatial_.assign(in.begin(), in.end() - 1);
  positions_ = shape_size(spatial_);
  channels_ = in.back();
  Shape out = out_shape(1);
  out.erase(out.begin());
  return out;
}

Shape GlobalPooling::out_shape(std::size_t n) const {
  if (!keepdims_) return {n, channels_};
  Shape s(rank_ + 2, 1);
  s.front() = n;
  s.back() = channels_;
  return s;
}

std::size_t GlobalPooling::check_input(const Tensor& x) const {
  Shape sample = spatial_;
  sample.push_back(channels_);
  return check_batch_shape(*this, x, sample);
}
// ----- GlobalAveragePooling -------------------------------------------------------------------------

// x: (N, [D,] H, W, C) -> y: (N, C) (or (N, 1, [1,] 1, C)) = the mean over the spatial axes, summed in double.
void GlobalAveragePooling::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t P = positions_, C = channels_;
  ensure_shape(y, out_shape(N));
  const float* xd = x.data();
  float* yd = y.data();
  const double inv = 1.0 / static_cast<double>(P);
  // Float partial sums over blocks of kBlock positions, added into double accumulators: as
  // accurate as a double sum for any practical image size, at float speed.
  constexpr std::size_t kBlock = 16;
  parallel_for(N, grain_for(P * C), [&](std::size_t b, std::size_t e) {
    std::vector<double> acc(C);
    std::vector<float> part(C);
    for (std::size_t n = b; n < e; ++n) {
      std::fill(acc.begin(), acc.end(), 0.0);
      const float* xs = xd + n * P * C;
      for (std::size_t p0 = 0; p0 < P; p0 += kBlock) {
        const std::size_t p1 = std::min(P, p0 + kBlock);
        float* pt = part.data();
        std::copy(xs + p0 * C, xs + (p0 + 1) * C, pt);
        std::size_t p = p0 + 1;
        for (; p + 4 <= p1; p += 4) {  // four rows per update: a shorter dependency chain
          const float *x0 = xs + p * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;
          for (std::size_t c = 0; c < C; ++c) pt[c] += (x0[c] + x1[c]) + (x2[c] + x3[c]);
        }
        for (; p < p1; ++p) {
          const float* xr = xs + p * C;
          for (std::size_t c = 0; c < C; ++c) pt[c] += xr[c];
        }
        double* ac = acc.data();
        for (std::size_t c = 0; c < C; ++c) ac[c] += pt[c];
      }
      float* yr = yd + n * C;
      for (std::size_t c = 0; c < C; ++c) yr[c] = static_cast<float>(acc[c] * inv);
    }
  });
  batch_ = N;
  forwarded_ = true;
}

void GlobalAveragePooling::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!forwarded_)
    fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const std::size_t N = batch_, P = positions_, C = channels_;
  if (shape_of(dy) != out_shape(N))
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ",
                     shape_str(out_shape(N), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  Shape xs = with_batch(N, spatial_);
  xs.push_back(C);
  ensure_shape(*dx, xs);
  const float* g = dy.data();
  float* d = dx->data();
  const float inv = static_cast<float>(1.0 / static_cast<double>(P));
  parallel_for(N, grain_for(P * C), [&](std::size_t b, std::size_t e) {
    std::vector<float> share(C);
    for (std::size_t n = b; n < e; ++n) {
      for (std::size_t c = 0; c < C; ++c) share[c] = g[n * C + c] * inv;
      float* ds = d + n * P * C;
      for (std::size_t p = 0; p < P; ++p) std::copy(share.begin(), share.end(), ds + p * C);
    }
  });
}


// ----- GlobalMaxPooling -----------------------------------------------------------------------------

namespace {
// x: (N, P, C) -> y: (N, C), the maximum over P (first one on ties, NaN wins); with kArgmax, am
// (N, C) gets the offset p C + c of each maximum within its sample.
template <bool kArgmax>
void global_max_kernel(std::size_t N, std::size_t P, std::size_t C, const float* xd, float* yd,
                       std::int32_t* am) {
  parallel_for(N, grain_for(P * C), [&](std::size_t b, std::size_t e) {
    for (std::size_t n = b; n < e; ++n) {
      const float* xs = xd + n * P * C;
      float* yr = yd + n * C;
      std::int32_t* ar = kArgmax ? am + n * C : nullptr;
      for (std::size_t c = 0; c < C; ++c) yr[c] = xs[c];
      if (kArgmax)
        for (std::size_t c = 0; c < C; ++c) ar[c] = static_cast<std::int32_t>(c);
      for (std::size_t p = 1; p < P; ++p) {
        const float* xr = xs + p * C;
        const std::int32_t o = static_cast<std::int32_t>(p * C);
        for (std::size_t c = 0; c < C; ++c) {
          const float v = xr[c];
          const bool take = v > yr[c] || v != v;
          yr[c] = take ? v : yr[c];
          if (kArgmax) ar[c] = take ? o + static_cast<std::int32_t>(c) : ar[c];
        }
      }
    }
  });
}
}  // namespace

// x: (N, [D,] H, W, C) -> y: (N, C) (or (N, 1, [1,] 1, C)) = the maximum over the spatial axes (first one on ties).
void GlobalMaxPooling::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t P = positions_, C = channels_;
  ensure_shape(y, out_shape(N));
  argmax_valid_ = ctx.training;
  if (argmax_valid_) {
    argmax_.resize(N * C);
    global_max_kernel<true>(N, P, C, x.data(), y.data(), argmax_.data());
  } else {
    global_max_kernel<false>(N, P, C, x.data(), y.data(), nullptr);
  }
  batch_ = N;
  x_ = &x;
  forwarded_ = true;
}

void GlobalMaxPooling::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!forwarded_)
    fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const std::size_t N = batch_, P = positions_, C = channels_;
  if (shape_of(dy) != out_shape(N))
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ",
                     shape_str(out_shape(N), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(*x_));
  if (!argmax_valid_) {  // after an inference forward: find the maxima again
    argmax_.resize(N * C);
    std::vector<float> scratch(N * C);
    global_max_kernel<true>(N, P, C, x_->data(), scratch.data(), argmax_.data());
    argmax_valid_ = true;
  }
  const float* g = dy.data();
  float* d = dx->data();
  const std::int32_t* am = argmax_.data();
  parallel_for(N, grain_for(P * C), [&](std::size_t b, std::size_t e) {
    for (std::size_t n = b; n < e; ++n) {
      float* ds = d + n * P * C;
      std::fill(ds, ds + P * C, 0.f);
      for (std::size_t c = 0; c < C; ++c) ds[am[n * C + c]] = g[n * C + c];
    }
  });
}


// ----- the four global pooling layers ---------------------------------------------------------------

#define SIGNCORE_GLOBAL_POOLING_FROM_CONFIG(Cls)                                                      \
  LayerPtr Cls::from_config(const json& c) {                                                          \
    try {                                                                                             \
      return std::make_shared<Cls>(data_format_from(c), c.value("keepdims", false),                   \
                                   c.value("name", std::string()));                                   \
    } catch (const json::exception& e) {                                                              \
      fail<ValueError>("Invalid " #Cls " config (", e.what(), "). Received: ", c.dump());             \
    }                                                                                                 \
  }                                                                                                   \
  SIGNCORE_REGISTER_LAYER(Cls)
SIGNCORE_GLOBAL_POOLING_FROM_CONFIG(GlobalAveragePooling2D);
SIGNCORE_GLOBAL_POOLING_FROM_CONFIG(GlobalMaxPooling2D);
SIGNCORE_GLOBAL_POOLING_FROM_CONFIG(GlobalAveragePooling3D);
SIGNCORE_GLOBAL_POOLING_FROM_CONFIG(GlobalMaxPooling3D);
#undef SIGNCORE_GLOBAL_POOLING_FROM_CONFIG

}  // namespace signcore
