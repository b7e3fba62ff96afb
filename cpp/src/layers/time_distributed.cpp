#include "signcore/layers/time_distributed.hpp"

#include "signcore/errors.hpp"

namespace signcore {

namespace {

// Gives a tensor another shape of the same size while this object lives, then the old one back.
// xtensor's reshape of a container rewrites only its shape and strides: the buffer stays where it
// is, so pointers into it (held by the wrapped layer between forward and backward) stay valid. The
// tensors reshaped are owned by the model and only borrowed as const for the call.
class ScopedReshape {
 public:
  ScopedReshape(const Tensor& t, const Shape& shape) : t_(const_cast<Tensor&>(t)), old_(shape_of(t)) {
    t_.reshape(shape);
  }
  ~ScopedReshape() { t_.reshape(old_); }
  ScopedReshape(const ScopedReshape&) = delete;
  ScopedReshape& operator=(const ScopedReshape&) = delete;

 private:
  Tensor& t_;
  Shape old_;
};

// (a, b, rest...) -> (a b, rest...)
Shape fold(std::size_t n, std::size_t t, const Shape& step) { return with_batch(n * t, step); }
// (n, t, rest...)
Shape unfold(std::size_t n, std::size_t t, const Shape& step) {
  Shape s = with_batch(t, step);
  s.insert(s.begin(), n);
  return s;
}

}  // namespace

TimeDistributed::TimeDistributed(LayerPtr layer, std::string name) : Layer(std::string()), layer_(std::move(layer)) {
  if (!layer_)
    fail<ValueError>("Please initialize `TimeDistributed` layer with a layer instance. Received: layer=None");
  // The automatic name is taken last, so a rejected call does not use one up.
  name_ = name.empty() ? unique_name("time_distributed") : std::move(name);
}

LayerPtr TimeDistributed::from_config(const json& c) {
  try {
    const json& l = c.at("layer");
    LayerPtr layer = layer_from_config(l.at("class_name").get<std::string>(), l.at("config"));
    return std::make_shared<TimeDistributed>(layer, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid TimeDistributed config (", e.what(), "). Received: ", c.dump());
  }
}

json TimeDistributed::get_config() const {
  json c = Layer::get_config();
  c["layer"] = {{"class_name", layer_->class_name()}, {"config", layer_->get_config()}};
  return c;
}

const LayerPtr& TimeDistributed::layer() {
  if (!built()) layer_->reset_build();
  return layer_;
}

void TimeDistributed::set_trainable(bool t) {
  Layer::set_trainable(t);  // the weights are owned by this layer
  layer_->set_trainable(t);
}

// (T, ...) -> (T, ...out): builds the wrapped layer for one step, (...), into `params` and takes
// its weights over (owner, names, trainable flag).
Shape TimeDistributed::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() < 2 || shape_size(in) == 0)
    fail<ValueError>("Layer '", name_, "' (TimeDistributed) expects inputs of shape (None, timesteps, ...) "
                     "with at least one axis after the time axis, all sizes positive. Received: "
                     "input_shape=", shape_str(in));
  layer_->reset_build();  // from an earlier output-shape inference, if any
  in_step_.assign(in.begin() + 1, in.end());
  out_step_ = layer_->build_in({in_step_}, params);
  for (std::size_t id : layer_->weight_indices()) {
    Weight& w = params.weight(id);
    w.owner = this;
    w.name = name_ + "/" + w.name;
    w.trainable = w.learnable && trainable_ && layer_->trainable();
    weight_ids_.push_back(id);
  }
  return with_batch(in[0], out_step_);
}

// x: (N, T, ...) viewed as (N T, ...) -> the wrapped layer -> y: (N T, ...out) -> (N, T, ...out)
void TimeDistributed::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  const std::size_t T = output_shape_.empty() ? 0 : output_shape_[0];
  if (xs != unfold(xs.empty() ? 0 : xs[0], T, in_step_))
    fail<ValueError>("Layer '", name_, "' (TimeDistributed) expects inputs of shape ",
                     shape_str(unfold(0, T, in_step_), true).replace(1, 4, "N"),
                     ". Received: shape=", shape_str(xs, false));
  const std::size_t N = xs[0];
  Context inner = ctx;
  inner.mask = nullptr;  // the (N, T) mask is not a mask of the folded batch
  {
    ScopedReshape folded(x, fold(N, T, in_step_));
    layer_->forward({&x}, y, inner);
  }
  y.reshape(unfold(N, T, out_step_));
  x_ = &x;
  y_ = &y;
}

void TimeDistributed::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (TimeDistributed): backward called before forward");
  const std::size_t N = x_->shape()[0], T = output_shape_[0];
  if (shape_of(dy) != shape_of(*y_))
    fail<ValueError>("Layer '", name_, "' (TimeDistributed): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(shape_of(*y_), false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  {
    ScopedReshape fx(*x_, fold(N, T, in_step_));
    ScopedReshape fy(*y_, fold(N, T, out_step_));
    ScopedReshape fdy(dy, fold(N, T, out_step_));
    layer_->backward(dy, {dx});
  }
  if (dx) dx->reshape(unfold(N, T, in_step_));
}

SIGNCORE_REGISTER_LAYER(TimeDistributed);

}  // namespace signcore
