#include "signcore/layers/dropout.hpp"

#include <algorithm>
#include <cmath>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

// ----- the mask stream ------------------------------------------------------------------------------
//
// One draw from the engine keys a whole mask; value i of the mask is then a hash of (key, i), so the
// values can be made in any order, by any thread, and again in backward without storing them. The
// hash is murmur3's 32-bit finaliser applied twice, to (i * golden ratio + key low word) and then to
// that xor the key's high word (the high half of i, non-zero only past 2^32 values, goes into the
// second round). Everything is 32-bit, so the loops vectorise (8 values per AVX2 instruction): the
// earlier splitmix64 stream needed two 64-bit multiplies per value, which x86 has no vector form of,
// and cost 2.6 ns per value on 2 threads (a 4.2M-value Dropout took 11 ms forward).
// The top 24 bits give u on a grid of 2^-24; a value is kept when u >= rate.

namespace {

inline std::uint32_t fmix32(std::uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bu;
  h ^= h >> 13;
  h *= 0xc2b2ae35u;
  h ^= h >> 16;
  return h;
}

}  // namespace

DropoutStream::DropoutStream(std::uint64_t key, double rate)
    : lo_(static_cast<std::uint32_t>(key)),
      hi_(static_cast<std::uint32_t>(key >> 32)),
      // u >= rate  <=>  the 24-bit integer >= ceil(rate * 2^24): an integer comparison.
      threshold_(static_cast<std::int32_t>(std::ceil(rate * 16777216.0))),
      scale_(static_cast<float>(1.0 / (1.0 - rate))) {}

template <class Fn>
void DropoutStream::for_values(std::size_t b, std::size_t e, Fn&& fn) const {
  // Runs of constant high index word, so the inner loop is all 32-bit (and at most 2^31 long, so
  // the run's length fits the 32-bit counter).
  while (b < e) {
    const std::uint64_t top = static_cast<std::uint64_t>(b) >> 32;
    const std::size_t run_end = std::min<std::size_t>(
        {e, static_cast<std::size_t>((top + 1) << 32), b + (std::size_t{1} << 31)});
    const std::uint32_t hi = hi_ ^ static_cast<std::uint32_t>(top * 0x9e3779b9u);
    const std::uint32_t lo = lo_, n = static_cast<std::uint32_t>(run_end - b);
    const std::uint32_t first = static_cast<std::uint32_t>(b);
    const std::int32_t threshold = threshold_;
    const float scale = scale_;
    for (std::uint32_t j = 0; j < n; ++j) {
      const std::uint32_t h = fmix32(fmix32((first + j) * 0x9e3779b9u + lo) ^ hi);
      fn(j, static_cast<std::int32_t>(h >> 8) >= threshold ? scale : 0.f);
    }
    b = run_end;
  }
}

void DropoutStream::fill(float* m, std::size_t b, std::size_t e) const {
  for_values(b, e, [m = m + b](std::uint32_t j, float v) { m[j] = v; });
}

void DropoutStream::apply(const float* src, float* dst, std::size_t b, std::size_t e) const {
  for_values(b, e, [s = src + b, d = dst + b](std::uint32_t j, float v) { d[j] = s[j] * v; });
}

void fill_dropout_mask(Rng& rng, std::vector<float>& m, std::size_t n, double rate) {
  m.resize(n);
  const DropoutStream stream(rng(), rate);
  parallel_for(n, 1 << 15, [&](std::size_t b, std::size_t e) { stream.fill(m.data(), b, e); });
}

namespace {
std::string noise_str(const Dropout::NoiseShape& ns) {
  std::string s = "(";
  for (std::size_t i = 0; i < ns.size(); ++i) {
    if (i) s += ", ";
    s += ns[i] ? std::to_string(*ns[i]) : "None";
  }
  return s + (ns.size() == 1 ? ",)" : ")");
}

// Checks the rate before an automatic name is taken, so a rejected call does not use one up.
std::string checked_dropout_name(double rate, std::string name, const char* prefix) {
  if (!(rate >= 0.0 && rate < 1.0))
    fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in [0, 1). "
                     "Received: rate=", rate);
  return name.empty() ? unique_name(prefix) : std::move(name);
}
}  // namespace

Dropout::Dropout(double rate, std::optional<NoiseShape> noise_shape, std::optional<std::uint64_t> seed,
                 std::string name)
    : Dropout(rate, std::move(noise_shape), seed, std::move(name), "dropout") {}

Dropout::Dropout(double rate, std::optional<NoiseShape> noise_shape, std::optional<std::uint64_t> seed,
                 std::string name, const char* prefix)
    : Layer(checked_dropout_name(rate, std::move(name), prefix)),
      rate_(rate),
      noise_shape_(std::move(noise_shape)),
      seed_(seed),
      own_rng_(seed.value_or(0)) {}

LayerPtr Dropout::from_config(const json& c) {
  try {
    std::optional<NoiseShape> ns;
    if (c.contains("noise_shape") && !c["noise_shape"].is_null()) {
      NoiseShape v;
      for (const auto& e : c["noise_shape"]) {
        if (e.is_null()) v.emplace_back(std::nullopt);
        else if (e.get<long long>() <= 0)
          fail<ValueError>("Dropout noise_shape entries must be positive or None. Received: noise_shape=",
                           c["noise_shape"].dump());
        else v.emplace_back(static_cast<std::size_t>(e.get<long long>()));
      }
      ns = std::move(v);
    }
    std::optional<std::uint64_t> seed;
    if (c.contains("seed") && !c["seed"].is_null()) seed = c["seed"].get<std::uint64_t>();
    return std::make_shared<Dropout>(c.at("rate").get<double>(), ns, seed, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Dropout config (", e.what(), "). Received: ", c.dump());
  }
}

json Dropout::get_config() const {
  json c = Layer::get_config();
  c["rate"] = rate_;
  if (noise_shape_) {
    json ns = json::array();
    for (const auto& d : *noise_shape_) ns.push_back(d ? json(*d) : json(nullptr));
    c["noise_shape"] = ns;
  } else {
    c["noise_shape"] = nullptr;
  }
  c["seed"] = seed_ ? json(*seed_) : json(nullptr);
  return c;
}

Shape Dropout::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  if (noise_shape_) {
    const Shape& in = input_shapes[0];
    const NoiseShape& ns = *noise_shape_;
    bool ok = ns.size() == in.size() + 1;
    for (std::size_t i = 1; ok && i < ns.size(); ++i)
      ok = !ns[i] || *ns[i] == 1 || *ns[i] == in[i - 1];
    if (!ok)
      fail<ValueError>("Layer '", name_, "' (Dropout): noise_shape must have the input's rank "
                       "(batch included) and each entry None, 1 or the input's size. Received: "
                       "noise_shape=", noise_str(ns), " for input_shape=", shape_str(in));
  }
  return input_shapes[0];
}

Shape Dropout::resolve_noise_shape(const Shape& xs) const {
  if (!noise_shape_) return xs;
  const NoiseShape& ns = *noise_shape_;
  Shape ms(xs.size());
  for (std::size_t i = 0; i < xs.size(); ++i) {
    ms[i] = (i < ns.size() && ns[i]) ? *ns[i] : xs[i];
    if (i >= ns.size() || (ms[i] != xs[i] && ms[i] != 1))
      fail<ValueError>("Layer '", name_, "' (Dropout): noise_shape ", noise_str(ns),
                       " does not broadcast to the input. Received: shape=", shape_str(xs, false));
  }
  return ms;
}

// x: (N, ...) -> y: (N, ...) = x * mask
void Dropout::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  x_shape_ = shape_of(x);
  ensure_shape(y, x_shape_);
  applied_ = ctx.training && rate_ > 0.0;
  if (!applied_) {
    std::copy(x.data(), x.data() + x.size(), y.data());
    return;
  }
  // The mask is drawn in row-major order of its own (possibly smaller) shape. A mask of x's own
  // shape is never stored: forward and backward make its values again from the key (half the
  // memory traffic, and no mask as large as the activation held between the passes).
  mask_shape_ = resolve_noise_shape(x_shape_);
  Rng& rng = seed_ ? own_rng_ : *ctx.rng;
  if (mask_shape_ == x_shape_) {
    stream_ = DropoutStream(rng(), rate_);
    mask_.clear();
    mask_.shrink_to_fit();
  } else {
    fill_dropout_mask(rng, mask_, shape_size(mask_shape_), rate_);
  }
  // Strides of the mask seen through x's shape: 0 on the broadcast axes.
  const std::size_t rank = x_shape_.size();
  mask_strides_.assign(rank, 0);
  std::size_t st = 1;
  for (std::size_t i = rank; i-- > 0;) {
    mask_strides_[i] = mask_shape_[i] == 1 && x_shape_[i] != 1 ? 0 : st;
    st *= mask_shape_[i];
  }
  apply_mask(x.data(), y.data());
}

void Dropout::apply_mask(const float* src, float* dst) const {
  const float* mask = mask_.data();
  const std::size_t size = shape_size(x_shape_), rank = x_shape_.size();
  if (size == 0) return;
  constexpr std::size_t kGrain = 1 << 14;  // values per parallel chunk, at least
  if (mask_shape_ == x_shape_) {
    parallel_for(size, kGrain, [&](std::size_t b, std::size_t e) { stream_.apply(src, dst, b, e); });
    return;
  }
  // The broadcast axes (mask 1, x larger). When they are one contiguous run [a0, a1), x is
  // (P, Q, R) and the mask (P, R): each of the P * Q rows of R values uses mask row p.
  std::size_t a0 = rank, a1 = 0;
  for (std::size_t i = 0; i < rank; ++i)
    if (mask_strides_[i] == 0) {
      a0 = std::min(a0, i);
      a1 = i + 1;
    }
  bool run = true;
  for (std::size_t i = a0; i < a1; ++i) run = run && (mask_strides_[i] == 0 || x_shape_[i] == 1);
  if (run) {
    std::size_t P = 1, Q = 1, R = 1;
    for (std::size_t i = 0; i < a0; ++i) P *= x_shape_[i];
    for (std::size_t i = a0; i < a1; ++i) Q *= x_shape_[i];
    for (std::size_t i = a1; i < rank; ++i) R *= x_shape_[i];
    if (R == 1) {  // one mask value per block of Q values
      parallel_for(P, std::max<std::size_t>(1, kGrain / Q), [&](std::size_t b, std::size_t e) {
        for (std::size_t p = b; p < e; ++p) {
          const float v = mask[p];
          for (std::size_t q = 0; q < Q; ++q) dst[p * Q + q] = src[p * Q + q] * v;
        }
      });
    } else {
      parallel_for(P * Q, std::max<std::size_t>(1, kGrain / R), [&](std::size_t b, std::size_t e) {
        std::size_t p = b / Q, q = b % Q;  // row = p Q + q, advanced without dividing
        for (std::size_t row = b; row < e; ++row) {
          const float* s = src + row * R;
          const float* m = mask + p * R;
          float* d = dst + row * R;
          for (std::size_t r = 0; r < R; ++r) d[r] = s[r] * m[r];
          if (++q == Q) {
            q = 0;
            ++p;
          }
        }
      });
    }
    return;
  }
  // Otherwise row by row along the last axis; an odometer over the other axes tracks the mask offset.
  const std::size_t L = x_shape_.back(), ls = mask_strides_.back();
  std::vector<std::size_t> idx(rank, 0);
  std::size_t m = 0;
  for (std::size_t row = 0; row < size / L; ++row) {
    const float* s = src + row * L;
    float* d = dst + row * L;
    if (ls == 0) {
      const float v = mask[m];
      for (std::size_t j = 0; j < L; ++j) d[j] = s[j] * v;
    } else {
      const float* mr = mask + m;
      for (std::size_t j = 0; j < L; ++j) d[j] = s[j] * mr[j];
    }
    for (std::size_t a = rank - 1; a-- > 0;) {  // next row: increment idx over the leading axes
      if (++idx[a] < x_shape_[a]) {
        m += mask_strides_[a];
        break;
      }
      m -= mask_strides_[a] * (x_shape_[a] - 1);
      idx[a] = 0;
    }
  }
}

void Dropout::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  ensure_shape(*dx, shape_of(dy));
  const float* g = dy.data();
  float* d = dx->data();
  if (!applied_) {
    std::copy(g, g + dy.size(), d);
    return;
  }
  if (shape_of(dy) != x_shape_)
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(x_shape_, false));
  apply_mask(g, d);
}

SIGNCORE_REGISTER_LAYER(Dropout);

// ----- SpatialDropout2D -----------------------------------------------------------------------------

namespace {
std::optional<Dropout::NoiseShape> spatial_noise_shape(const std::string& data_format) {
  if (!data_format.empty() && data_format != "channels_last") {
    if (data_format == "channels_first")
      fail<ValueError>("SpatialDropout2D: signcore is channels-last throughout; data_format="
                       "'channels_first' is not supported. Received: data_format='", data_format, "'");
    fail<ValueError>("SpatialDropout2D: the `data_format` argument must be one of 'channels_last' or "
                     "'channels_first'. Received: data_format='", data_format, "'");
  }
  // (N, 1, 1, C): one draw per sample and channel.
  return Dropout::NoiseShape{std::nullopt, std::size_t{1}, std::size_t{1}, std::nullopt};
}
}  // namespace

SpatialDropout2D::SpatialDropout2D(double rate, const std::string& data_format,
                                   std::optional<std::uint64_t> seed, std::string name)
    : Dropout(rate, spatial_noise_shape(data_format), seed, std::move(name), "spatial_dropout2d") {}

LayerPtr SpatialDropout2D::from_config(const json& c) {
  try {
    std::optional<std::uint64_t> seed;
    if (c.contains("seed") && !c["seed"].is_null()) seed = c["seed"].get<std::uint64_t>();
    const std::string fmt =
        c.contains("data_format") && c["data_format"].is_string() ? c["data_format"].get<std::string>() : "";
    return std::make_shared<SpatialDropout2D>(c.at("rate").get<double>(), fmt, seed,
                                              c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid SpatialDropout2D config (", e.what(), "). Received: ", c.dump());
  }
}

json SpatialDropout2D::get_config() const {
  json c = Dropout::get_config();
  c.erase("noise_shape");
  c["data_format"] = "channels_last";
  return c;
}

// (H, W, C) -> (H, W, C)
Shape SpatialDropout2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  if (input_shapes[0].size() != 3)
    fail<ValueError>("Layer '", name_, "' (SpatialDropout2D) expects images of shape (None, height, "
                     "width, channels). Received: input_shape=", shape_str(input_shapes[0]));
  return Dropout::build(input_shapes, params);
}

SIGNCORE_REGISTER_LAYER(SpatialDropout2D);

}  // namespace signcore
