#include "signcore/layers/pooling.hpp"

#include <algorithm>
#include <cctype>
#include <limits>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

std::string vec_str(const std::vector<long long>& v) {
  std::string s = "(";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + (v.size() == 1 ? ",)" : ")");
}

// A 2-tuple of positive integers; a single value is used for both axes.
void positive_pair(const std::vector<long long>& v, const char* arg, const char* cls, std::size_t out[2]) {
  if ((v.size() != 1 && v.size() != 2) || std::any_of(v.begin(), v.end(), [](long long d) { return d <= 0; }))
    fail<ValueError>(cls, ": the `", arg, "` argument must be a tuple of 2 positive integers. "
                     "Received: ", arg, "=", vec_str(v));
  out[0] = static_cast<std::size_t>(v[0]);
  out[1] = static_cast<std::size_t>(v.back());
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

// ----- Pooling2D --------------------------------------------------------------------------------------

Pooling2D::Spec Pooling2D::validate(const char* cls, const std::vector<long long>& pool_size,
                                    const std::vector<long long>& strides, const std::string& padding,
                                    const std::string& data_format) {
  Spec s;
  positive_pair(pool_size, "pool_size", cls, s.pool);
  if (strides.empty()) {
    s.strides[0] = s.pool[0];
    s.strides[1] = s.pool[1];
  } else {
    positive_pair(strides, "strides", cls, s.strides);
  }
  s.padding = lower(padding);
  if (s.padding != "valid" && s.padding != "same")
    fail<ValueError>(cls, ": the `padding` argument must be 'valid' or 'same'. Received: padding='",
                     padding, "'");
  check_data_format(data_format, cls);
  return s;
}

Pooling2D::Pooling2D(const Spec& spec, std::string name, const char* prefix)
    : Layer(name.empty() ? unique_name(prefix) : std::move(name)),
      pool_{spec.pool[0], spec.pool[1]},
      strides_{spec.strides[0], spec.strides[1]},
      padding_(spec.padding) {}

Pooling2D::Args Pooling2D::args_from_config(const json& c) {
  auto pair = [&](const char* key) {
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
  a.pool_size = pair("pool_size");
  if (a.pool_size.empty()) a.pool_size = {2, 2};
  a.strides = pair("strides");
  a.padding = c.value("padding", std::string("valid"));
  a.data_format = data_format_from(c);
  a.name = c.value("name", std::string());
  return a;
}

json Pooling2D::get_config() const {
  json c = Layer::get_config();
  c["pool_size"] = json::array({pool_[0], pool_[1]});
  c["padding"] = padding_;
  c["strides"] = json::array({strides_[0], strides_[1]});
  c["data_format"] = "channels_last";
  return c;
}

// (H, W, C) -> (H', W', C)
Shape Pooling2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 3 || shape_size(in) == 0)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects images of shape (None, height, "
                     "width, channels). Received: input_shape=", shape_str(in));
  if (shape_size(in) > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): an image is too large (more than 2^31 "
                     "values). Received: input_shape=", shape_str(in));
  const bool same = padding_ == "same";
  ax_h_ = pool_axis(in[0], pool_[0], strides_[0], same);
  ax_w_ = pool_axis(in[1], pool_[1], strides_[1], same);
  channels_ = in[2];
  if (ax_h_.out == 0 || ax_w_.out == 0)
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): with padding='valid' the pool_size (",
                     pool_[0], ", ", pool_[1], ") does not fit in the input; the computed output size "
                     "would be empty. Received: input_shape=", shape_str(in));
  return {ax_h_.out, ax_w_.out, channels_};
}

std::size_t Pooling2D::check_input(const Tensor& x) const {
  const Shape xs = shape_of(x);
  if (xs.size() != 4 || xs[1] != ax_h_.in || xs[2] != ax_w_.in || xs[3] != channels_)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects inputs of shape (N, ", ax_h_.in,
                     ", ", ax_w_.in, ", ", channels_, "). Received: shape=", shape_str(xs, false));
  return xs[0];
}

// ----- MaxPooling2D ---------------------------------------------------------------------------------

MaxPooling2D::MaxPooling2D(std::vector<long long> pool_size, std::vector<long long> strides,
                           std::string padding, const std::string& data_format, std::string name)
    : Pooling2D(validate("MaxPooling2D", pool_size, strides, padding, data_format), std::move(name),
                "max_pooling2d") {}

LayerPtr MaxPooling2D::from_config(const json& c) {
  try {
    Args a = args_from_config(c);
    return std::make_shared<MaxPooling2D>(a.pool_size, a.strides, a.padding, a.data_format, a.name);
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid MaxPooling2D config (", e.what(), "). Received: ", c.dump());
  }
}

namespace {
// x: (N, H, W, C) -> y: (N, H', W', C); with kArgmax, am (N, H', W', C) gets the offset of each
// maximum within its sample. Strictly greater keeps the first maximum; a NaN replaces it and stays.
template <bool kArgmax>
void max_pool_kernel(const PoolAxis& ax_h, const PoolAxis& ax_w, std::size_t N, std::size_t C,
                     const float* xd, float* yd, std::int32_t* am) {
  const std::size_t H = ax_h.in, W = ax_w.in, OH = ax_h.out, OW = ax_w.out;
  // One task per output row (n, oh).
  parallel_for(N * OH, grain_for(OW * C * ax_h.size * ax_w.size), [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      const std::size_t n = r / OH, oh = r % OH;
      const float* xs = xd + n * H * W * C;
      std::size_t h0, h1;
      window(ax_h, oh, h0, h1);
      for (std::size_t ow = 0; ow < OW; ++ow) {
        std::size_t w0, w1;
        window(ax_w, ow, w0, w1);
        float* yr = yd + (r * OW + ow) * C;
        std::int32_t* ar = kArgmax ? am + (r * OW + ow) * C : nullptr;
        {  // the first cell of the window starts the running maximum
          const std::size_t off = (h0 * W + w0) * C;
          const float* xr = xs + off;
          for (std::size_t c = 0; c < C; ++c) yr[c] = xr[c];
          if (kArgmax)
            for (std::size_t c = 0; c < C; ++c) ar[c] = static_cast<std::int32_t>(off + c);
        }
        for (std::size_t h = h0; h < h1; ++h) {
          for (std::size_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
            const std::size_t off = (h * W + w) * C;
            const float* xr = xs + off;
            const std::int32_t o = static_cast<std::int32_t>(off);
            for (std::size_t c = 0; c < C; ++c) {
              const float v = xr[c];
              const bool take = v > yr[c] || v != v;
              yr[c] = take ? v : yr[c];
              if (kArgmax) ar[c] = take ? o + static_cast<std::int32_t>(c) : ar[c];
            }
          }
        }
      }
    }
  });
}
}  // namespace

// x: (N, H, W, C) -> y: (N, H', W', C). Training records where each maximum came from.
void MaxPooling2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t C = channels_;
  ensure_shape(y, {N, ax_h_.out, ax_w_.out, C});
  argmax_valid_ = ctx.training;
  if (argmax_valid_) {
    argmax_.resize(y.size());
    max_pool_kernel<true>(ax_h_, ax_w_, N, C, x.data(), y.data(), argmax_.data());
  } else {
    max_pool_kernel<false>(ax_h_, ax_w_, N, C, x.data(), y.data(), nullptr);
  }
  x_ = &x;
}

void MaxPooling2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (MaxPooling2D): backward called before forward");
  const std::size_t N = shape_of(*x_)[0];
  const std::size_t OH = ax_h_.out, OW = ax_w_.out, C = channels_;
  if (shape_of(dy) != Shape{N, OH, OW, C})
    fail<ValueError>("Layer '", name_, "' (MaxPooling2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str({N, OH, OW, C}, false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(*x_));
  if (!argmax_valid_) {  // after an inference forward: find the maxima again (same comparisons)
    argmax_.resize(dy.size());
    std::vector<float> scratch(dy.size());
    max_pool_kernel<true>(ax_h_, ax_w_, N, C, x_->data(), scratch.data(), argmax_.data());
    argmax_valid_ = true;
  }
  const std::size_t in_size = ax_h_.in * ax_w_.in * C, out_size = OH * OW * C;
  const float* g = dy.data();
  float* d = dx->data();
  const std::int32_t* am = argmax_.data();
  // One task per sample: windows of one sample only touch that sample, so there are no races, and
  // each sample's sums run in a fixed order.
  parallel_for(N, grain_for(in_size + out_size), [&](std::size_t b, std::size_t e) {
    for (std::size_t n = b; n < e; ++n) {
      float* ds = d + n * in_size;
      std::fill(ds, ds + in_size, 0.f);
      const float* gs = g + n * out_size;
      const std::int32_t* as = am + n * out_size;
      for (std::size_t i = 0; i < out_size; ++i) ds[as[i]] += gs[i];
    }
  });
}

SIGNCORE_REGISTER_LAYER(MaxPooling2D);

// ----- AveragePooling2D -----------------------------------------------------------------------------

AveragePooling2D::AveragePooling2D(std::vector<long long> pool_size, std::vector<long long> strides,
                                   std::string padding, const std::string& data_format, std::string name)
    : Pooling2D(validate("AveragePooling2D", pool_size, strides, padding, data_format), std::move(name),
                "average_pooling2d") {}

LayerPtr AveragePooling2D::from_config(const json& c) {
  try {
    Args a = args_from_config(c);
    return std::make_shared<AveragePooling2D>(a.pool_size, a.strides, a.padding, a.data_format, a.name);
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid AveragePooling2D config (", e.what(), "). Received: ", c.dump());
  }
}

// x: (N, H, W, C) -> y: (N, H', W', C), the mean of the real (unpadded) cells of each window.
void AveragePooling2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t H = ax_h_.in, W = ax_w_.in, C = channels_, OH = ax_h_.out, OW = ax_w_.out;
  ensure_shape(y, {N, OH, OW, C});
  const float* xd = x.data();
  float* yd = y.data();
  parallel_for(N * OH, grain_for(OW * C * pool_[0] * pool_[1]), [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) {
      const std::size_t n = r / OH, oh = r % OH;
      const float* xs = xd + n * H * W * C;
      std::size_t h0, h1;
      window(ax_h_, oh, h0, h1);
      for (std::size_t ow = 0; ow < OW; ++ow) {
        std::size_t w0, w1;
        window(ax_w_, ow, w0, w1);
        float* yr = yd + (r * OW + ow) * C;
        {
          const float* xr = xs + (h0 * W + w0) * C;  // the first cell starts the sum
          std::copy(xr, xr + C, yr);
        }
        for (std::size_t h = h0; h < h1; ++h)
          for (std::size_t w = (h == h0 ? w0 + 1 : w0); w < w1; ++w) {
            const float* xr = xs + (h * W + w) * C;
            for (std::size_t c = 0; c < C; ++c) yr[c] += xr[c];
          }
        const float inv = 1.f / static_cast<float>((h1 - h0) * (w1 - w0));
        for (std::size_t c = 0; c < C; ++c) yr[c] *= inv;
      }
    }
  });
  x_ = &x;
}

void AveragePooling2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (AveragePooling2D): backward called before forward");
  const std::size_t N = shape_of(*x_)[0];
  const std::size_t W = ax_w_.in, OH = ax_h_.out, OW = ax_w_.out, C = channels_;
  if (shape_of(dy) != Shape{N, OH, OW, C})
    fail<ValueError>("Layer '", name_, "' (AveragePooling2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str({N, OH, OW, C}, false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(*x_));
  const std::size_t in_size = ax_h_.in * W * C, out_size = OH * OW * C;
  const float* g = dy.data();
  float* d = dx->data();
  parallel_for(N, grain_for(in_size + out_size), [&](std::size_t b, std::size_t e) {
    std::vector<float> share(C);
    for (std::size_t n = b; n < e; ++n) {
      float* ds = d + n * in_size;
      std::fill(ds, ds + in_size, 0.f);
      for (std::size_t oh = 0; oh < OH; ++oh) {
        std::size_t h0, h1;
        window(ax_h_, oh, h0, h1);
        for (std::size_t ow = 0; ow < OW; ++ow) {
          std::size_t w0, w1;
          window(ax_w_, ow, w0, w1);
          const float* gr = g + n * out_size + (oh * OW + ow) * C;
          const float inv = 1.f / static_cast<float>((h1 - h0) * (w1 - w0));
          for (std::size_t c = 0; c < C; ++c) share[c] = gr[c] * inv;
          for (std::size_t h = h0; h < h1; ++h)
            for (std::size_t w = w0; w < w1; ++w) {
              float* dr = ds + (h * W + w) * C;
              for (std::size_t c = 0; c < C; ++c) dr[c] += share[c];
            }
        }
      }
    }
  });
}

SIGNCORE_REGISTER_LAYER(AveragePooling2D);

// ----- GlobalPooling2D ------------------------------------------------------------------------------

bool GlobalPooling2D::validate(const char* cls, const std::string& data_format, bool keepdims) {
  check_data_format(data_format, cls);
  return keepdims;
}

GlobalPooling2D::GlobalPooling2D(bool keepdims, std::string name, const char* prefix)
    : Layer(name.empty() ? unique_name(prefix) : std::move(name)), keepdims_(keepdims) {}

json GlobalPooling2D::get_config() const {
  json c = Layer::get_config();
  c["data_format"] = "channels_last";
  c["keepdims"] = keepdims_;
  return c;
}

// (H, W, C) -> (C,) or (1, 1, C)
Shape GlobalPooling2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 3 || shape_size(in) == 0)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects images of shape (None, height, "
                     "width, channels). Received: input_shape=", shape_str(in));
  if (shape_size(in) > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): an image is too large (more than 2^31 "
                     "values). Received: input_shape=", shape_str(in));
  h_ = in[0];
  w_ = in[1];
  channels_ = in[2];
  return keepdims_ ? Shape{1, 1, channels_} : Shape{channels_};
}

std::size_t GlobalPooling2D::check_input(const Tensor& x) const {
  const Shape xs = shape_of(x);
  if (xs.size() != 4 || xs[1] != h_ || xs[2] != w_ || xs[3] != channels_)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects inputs of shape (N, ", h_, ", ",
                     w_, ", ", channels_, "). Received: shape=", shape_str(xs, false));
  return xs[0];
}

namespace {
Shape global_out_shape(std::size_t n, std::size_t c, bool keepdims) {
  return keepdims ? Shape{n, 1, 1, c} : Shape{n, c};
}
}  // namespace

// ----- GlobalAveragePooling2D -----------------------------------------------------------------------

GlobalAveragePooling2D::GlobalAveragePooling2D(const std::string& data_format, bool keepdims, std::string name)
    : GlobalPooling2D(validate("GlobalAveragePooling2D", data_format, keepdims), std::move(name),
                      "global_average_pooling2d") {}

LayerPtr GlobalAveragePooling2D::from_config(const json& c) {
  try {
    return std::make_shared<GlobalAveragePooling2D>(data_format_from(c), c.value("keepdims", false),
                                                    c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid GlobalAveragePooling2D config (", e.what(), "). Received: ", c.dump());
  }
}

// x: (N, H, W, C) -> y: (N, C) (or (N, 1, 1, C)) = the mean over H and W, summed in double.
void GlobalAveragePooling2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t P = h_ * w_, C = channels_;
  ensure_shape(y, global_out_shape(N, C, keepdims_));
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

void GlobalAveragePooling2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!forwarded_)
    fail<StateError>("Layer '", name_, "' (GlobalAveragePooling2D): backward called before forward");
  const std::size_t N = batch_, P = h_ * w_, C = channels_;
  if (shape_of(dy) != global_out_shape(N, C, keepdims_))
    fail<ValueError>("Layer '", name_, "' (GlobalAveragePooling2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ",
                     shape_str(global_out_shape(N, C, keepdims_), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, {N, h_, w_, C});
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

SIGNCORE_REGISTER_LAYER(GlobalAveragePooling2D);

// ----- GlobalMaxPooling2D ---------------------------------------------------------------------------

GlobalMaxPooling2D::GlobalMaxPooling2D(const std::string& data_format, bool keepdims, std::string name)
    : GlobalPooling2D(validate("GlobalMaxPooling2D", data_format, keepdims), std::move(name),
                      "global_max_pooling2d") {}

LayerPtr GlobalMaxPooling2D::from_config(const json& c) {
  try {
    return std::make_shared<GlobalMaxPooling2D>(data_format_from(c), c.value("keepdims", false),
                                                c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid GlobalMaxPooling2D config (", e.what(), "). Received: ", c.dump());
  }
}

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

// x: (N, H, W, C) -> y: (N, C) (or (N, 1, 1, C)) = the maximum over H and W (first one on ties).
void GlobalMaxPooling2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t N = check_input(x);
  const std::size_t P = h_ * w_, C = channels_;
  ensure_shape(y, global_out_shape(N, C, keepdims_));
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

void GlobalMaxPooling2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!forwarded_)
    fail<StateError>("Layer '", name_, "' (GlobalMaxPooling2D): backward called before forward");
  const std::size_t N = batch_, P = h_ * w_, C = channels_;
  if (shape_of(dy) != global_out_shape(N, C, keepdims_))
    fail<ValueError>("Layer '", name_, "' (GlobalMaxPooling2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ",
                     shape_str(global_out_shape(N, C, keepdims_), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, {N, h_, w_, C});
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

SIGNCORE_REGISTER_LAYER(GlobalMaxPooling2D);

}  // namespace signcore
