#include "signcore/layers/activation.hpp"

#include "signcore/errors.hpp"

namespace signcore {

Activation::Activation(const std::string& activation, std::string name)
    : Layer(name.empty() ? unique_name("activation") : std::move(name)),
      activation_(parse_activation(activation)) {}

LayerPtr Activation::from_config(const json& c) {
  try {
    const auto act = c.contains("activation") && c["activation"].is_string()
                         ? c["activation"].get<std::string>() : std::string("linear");
    return std::make_shared<Activation>(act, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Activation config (", e.what(), "). Received: ", c.dump());
  }
}

json Activation::get_config() const {
  json c = Layer::get_config();
  c["activation"] = activation_name(activation_);
  return c;
}

Shape Activation::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  if (activation_ == ActivationKind::Softmax && !input_shapes[0].empty() && input_shapes[0].back() == 0)
    fail<ValueError>("Layer '", name_, "' (Activation softmax) needs a non-empty last axis. Received: "
                     "input_shape=", shape_str(input_shapes[0]));
  return input_shapes[0];
}

// x: (N, ...) -> y: (N, ...); softmax normalises the last axis.
void Activation::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  ensure_shape(y, shape_of(x));
  const std::size_t cols = x.dimension() >= 2 ? x.shape().back() : 1;
  const std::size_t rows = cols ? x.size() / cols : 0;
  activation_forward(activation_, x.data(), y.data(), rows, cols);
  x_ = &x;
  y_ = &y;
}

void Activation::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (Activation): backward called before forward");
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  if (dy.size() != x_->size())
    fail<ValueError>("Layer '", name_, "' (Activation): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(shape_of(*x_), false));
  ensure_shape(*dx, shape_of(*x_));
  const std::size_t cols = x_->dimension() >= 2 ? x_->shape().back() : 1;
  const std::size_t rows = cols ? x_->size() / cols : 0;
  const bool from_y = activation_backward_uses_output(activation_);
  activation_backward(activation_, from_y ? nullptr : x_->data(), from_y ? y_->data() : nullptr,
                      dy.data(), dx->data(), rows, cols);
}

SIGNCORE_REGISTER_LAYER(Activation);

}  // namespace signcore
