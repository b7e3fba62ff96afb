#include "signcore/layers/reshape.hpp"

#include <algorithm>

#include "signcore/errors.hpp"

namespace signcore {

namespace {
std::string target_str(const std::vector<long long>& t) {
  std::string s = "(";
  for (std::size_t i = 0; i < t.size(); ++i) s += (i ? ", " : "") + std::to_string(t[i]);
  return s + (t.size() == 1 ? ",)" : ")");
}

// Copy x into y with y's new shape; shared by Flatten and Reshape forward and backward.
void copy_as(const Tensor& src, Tensor& dst, const Shape& shape) {
  ensure_shape(dst, shape);
  std::copy(src.data(), src.data() + src.size(), dst.data());
}

std::size_t batch_of(const Tensor& t) { return t.dimension() ? t.shape()[0] : 0; }
}  // namespace

// ----- Flatten ----------------------------------------------------------------------------------

Flatten::Flatten(const std::string& data_format, std::string name)
    : Layer(name.empty() ? unique_name("flatten") : std::move(name)) {
  if (!data_format.empty() && data_format != "channels_last")
    fail<ValueError>("signcore's Flatten supports data_format='channels_last' only. Received: "
                     "data_format='", data_format, "'");
}

LayerPtr Flatten::from_config(const json& c) {
  try {
    const auto fmt = c.contains("data_format") && c["data_format"].is_string()
                         ? c["data_format"].get<std::string>() : std::string();
    return std::make_shared<Flatten>(fmt, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Flatten config (", e.what(), "). Received: ", c.dump());
  }
}

json Flatten::get_config() const {
  json c = Layer::get_config();
  c["data_format"] = "channels_last";
  return c;
}

Shape Flatten::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  input_shape_ = input_shapes[0];
  return {shape_size(input_shape_)};
}

// x: (N, d1, ..., dk) -> y: (N, d1 * ... * dk)
void Flatten::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t n = batch_of(x);
  if (x.size() != n * shape_size(input_shape_))
    fail<ValueError>("Layer '", name_, "' (Flatten) expects inputs of shape ",
                     shape_str(input_shape_), ". Received: shape=", shape_str(shape_of(x), false));
  copy_as(x, y, {n, shape_size(input_shape_)});
}

void Flatten::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  const std::size_t n = batch_of(dy);
  if (dy.size() != n * shape_size(input_shape_))
    fail<ValueError>("Layer '", name_, "' (Flatten): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected (", n, ", ",
                     shape_size(input_shape_), ")");
  copy_as(dy, *dx, with_batch(n, input_shape_));
}

SIGNCORE_REGISTER_LAYER(Flatten);

// ----- Reshape ----------------------------------------------------------------------------------

Reshape::Reshape(std::vector<long long> target_shape, std::string name)
    : Layer(name.empty() ? unique_name("reshape") : std::move(name)),
      target_shape_(std::move(target_shape)) {
  const auto unknown = std::count(target_shape_.begin(), target_shape_.end(), -1LL);
  const bool bad = std::any_of(target_shape_.begin(), target_shape_.end(),
                               [](long long d) { return d == 0 || d < -1; });
  if (unknown > 1 || bad)
    fail<ValueError>("Reshape's target_shape must hold positive sizes and at most one -1 (inferred). "
                     "Received: target_shape=", target_str(target_shape_));
}

LayerPtr Reshape::from_config(const json& c) {
  try {
    return std::make_shared<Reshape>(c.at("target_shape").get<std::vector<long long>>(),
                                     c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Reshape config (", e.what(), "). Received: ", c.dump());
  }
}

json Reshape::get_config() const {
  json c = Layer::get_config();
  c["target_shape"] = target_shape_;
  return c;
}

Shape Reshape::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  input_shape_ = input_shapes[0];
  const std::size_t total = shape_size(input_shape_);
  std::size_t known = 1;
  for (long long d : target_shape_)
    if (d > 0) known *= static_cast<std::size_t>(d);
  const bool has_unknown =
      std::find(target_shape_.begin(), target_shape_.end(), -1LL) != target_shape_.end();
  if (has_unknown ? (known == 0 || total % known != 0) : known != total)
    fail<ValueError>("Layer '", name_, "' (Reshape): the total size of the new array must be "
                     "unchanged. Received: input_shape=", shape_str(input_shape_),
                     ", target_shape=", target_str(target_shape_));
  Shape out;
  for (long long d : target_shape_) out.push_back(d > 0 ? static_cast<std::size_t>(d) : total / known);
  return out;
}

// x: (N, ...) -> y: (N, target...)
void Reshape::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const std::size_t n = batch_of(x);
  if (x.size() != n * shape_size(input_shape_))
    fail<ValueError>("Layer '", name_, "' (Reshape) expects inputs of shape ",
                     shape_str(input_shape_), ". Received: shape=", shape_str(shape_of(x), false));
  copy_as(x, y, with_batch(n, output_shape_));
}

void Reshape::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  const std::size_t n = batch_of(dy);
  if (dy.size() != n * shape_size(input_shape_))
    fail<ValueError>("Layer '", name_, "' (Reshape): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ",
                     shape_str(with_batch(n, output_shape_), false));
  copy_as(dy, *dx, with_batch(n, input_shape_));
}

SIGNCORE_REGISTER_LAYER(Reshape);

}  // namespace signcore
