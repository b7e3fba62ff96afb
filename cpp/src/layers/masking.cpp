#include "signcore/layers/masking.hpp"

#include <algorithm>

#include "signcore/errors.hpp"

namespace signcore {

Masking::Masking(double mask_value, std::string name)
    : Layer(name.empty() ? unique_name("masking") : std::move(name)), mask_value_(mask_value) {}

LayerPtr Masking::from_config(const json& c) {
  try {
    return std::make_shared<Masking>(c.value("mask_value", 0.0), c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Masking config (", e.what(), "). Received: ", c.dump());
  }
}

json Masking::get_config() const {
  json c = Layer::get_config();
  c["mask_value"] = mask_value_;
  return c;
}

// (T, F) -> (T, F). Keras masks on any rank, but a mask here is (N, T): sequences only.
Shape Masking::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 2)
    fail<ValueError>("Layer '", name_, "' (Masking) expects sequences of shape (batch, timesteps, "
                     "features). Received: input_shape=", shape_str(in));
  T_ = in[0];
  F_ = in[1];
  return in;
}

void Masking::compute_keep(const Tensor& x, float* keep) const {
  const Shape xs = shape_of(x);
  if (xs.size() != 3 || xs[1] != T_ || xs[2] != F_)
    fail<ValueError>("Layer '", name_, "' (Masking) expects inputs of shape (N, ", T_, ", ", F_,
                     "). Received: shape=", shape_str(xs, false));
  const float v = static_cast<float>(mask_value_);
  const std::size_t rows = xs[0] * T_;
  for (std::size_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * F_;
    bool any = false;
    for (std::size_t f = 0; f < F_ && !any; ++f) any = xr[f] != v;
    keep[r] = any ? 1.f : 0.f;
  }
}

void Masking::compute_mask(const std::vector<const Tensor*>& inputs, const Tensor* mask,
                           Tensor& out_mask) const {
  const Tensor& x = *inputs[0];
  const std::size_t n = x.dimension() > 0 ? x.shape()[0] : 0;
  ensure_shape(out_mask, {n, T_});
  compute_keep(x, out_mask.data());
}

// x: (N, T, F) -> y = x * keep
void Masking::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  x_shape_ = shape_of(x);
  const std::size_t n = x_shape_.empty() ? 0 : x_shape_[0];
  keep_.resize(n * T_);
  compute_keep(x, keep_.data());
  ensure_shape(y, x_shape_);
  for (std::size_t r = 0; r < n * T_; ++r) {
    const float* xr = x.data() + r * F_;
    float* yr = y.data() + r * F_;
    if (keep_[r] != 0.f) std::copy(xr, xr + F_, yr);
    else std::fill(yr, yr + F_, 0.f);
  }
}

void Masking::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  if (shape_of(dy) != x_shape_)
    fail<ValueError>("Layer '", name_, "' (Masking): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(x_shape_, false));
  ensure_shape(*dx, x_shape_);
  for (std::size_t r = 0; r < keep_.size(); ++r) {
    const float* g = dy.data() + r * F_;
    float* d = dx->data() + r * F_;
    if (keep_[r] != 0.f) std::copy(g, g + F_, d);
    else std::fill(d, d + F_, 0.f);
  }
}

SIGNCORE_REGISTER_LAYER(Masking);

}  // namespace signcore
