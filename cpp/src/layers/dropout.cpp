#include "signcore/layers/dropout.hpp"

#include <algorithm>
#include <cmath>

#include "signcore/errors.hpp"

namespace signcore {

namespace {
std::string noise_str(const Dropout::NoiseShape& ns) {
  std::string s = "(";
  for (std::size_t i = 0; i < ns.size(); ++i) {
    if (i) s += ", ";
    s += ns[i] ? std::to_string(*ns[i]) : "None";
  }
  return s + (ns.size() == 1 ? ",)" : ")");
}
}  // namespace

Dropout::Dropout(double rate, std::optional<NoiseShape> noise_shape, std::optional<std::uint64_t> seed,
                 std::string name)
    : Layer(name.empty() ? unique_name("dropout") : std::move(name)),
      rate_(rate),
      noise_shape_(std::move(noise_shape)),
      seed_(seed),
      own_rng_(seed.value_or(0)) {
  if (!(rate >= 0.0 && rate < 1.0))
    fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in [0, 1). "
                     "Received: rate=", rate);
}

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
  const Shape xs = shape_of(x);
  ensure_shape(y, xs);
  applied_ = ctx.training && rate_ > 0.0;
  if (!applied_) {
    std::copy(x.data(), x.data() + x.size(), y.data());
    return;
  }
  Rng& rng = seed_ ? own_rng_ : *ctx.rng;
  const float scale = static_cast<float>(1.0 / (1.0 - rate_));
  const double rate = rate_;
  // A uniform draw in [0, 1) from the top 24 bits; the value is kept when u >= rate.
  auto draw = [&rng, rate, scale]() -> float {
    const double u = static_cast<double>(rng() >> 40) * (1.0 / 16777216.0);
    return u >= rate ? scale : 0.f;
  };

  ensure_shape(mask_, xs);
  float* mask = mask_.data();
  const Shape ms = resolve_noise_shape(xs);
  if (ms == xs) {
    for (std::size_t i = 0; i < mask_.size(); ++i) mask[i] = draw();
  } else {
    // Draw the small mask, then broadcast it: mask strides are 0 on the broadcast axes.
    std::vector<float> small(shape_size(ms));
    for (auto& v : small) v = draw();
    const std::size_t rank = xs.size();
    std::vector<std::size_t> mstride(rank, 0);
    std::size_t s = 1;
    for (std::size_t i = rank; i-- > 0;) {
      mstride[i] = ms[i] == 1 && xs[i] != 1 ? 0 : s;
      s *= ms[i];
    }
    std::vector<std::size_t> idx(rank, 0);
    std::size_t m = 0;  // offset into `small` for the multi-index idx
    for (std::size_t i = 0; i < mask_.size(); ++i) {
      mask[i] = small[m];
      for (std::size_t a = rank; a-- > 0;) {  // increment idx, last axis fastest
        if (++idx[a] < xs[a]) {
          m += mstride[a];
          break;
        }
        m -= mstride[a] * (xs[a] - 1);
        idx[a] = 0;
      }
    }
  }
  const float* xd = x.data();
  float* yd = y.data();
  for (std::size_t i = 0; i < x.size(); ++i) yd[i] = xd[i] * mask[i];
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
  if (mask_.size() != dy.size())
    fail<ValueError>("Layer '", name_, "' (Dropout): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(shape_of(mask_), false));
  const float* mask = mask_.data();
  for (std::size_t i = 0; i < dy.size(); ++i) d[i] = g[i] * mask[i];
}

SIGNCORE_REGISTER_LAYER(Dropout);

}  // namespace signcore
