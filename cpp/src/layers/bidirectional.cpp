#include "signcore/layers/bidirectional.hpp"

#include <algorithm>
#include <cstring>

#include "signcore/errors.hpp"

namespace signcore {

namespace {

Bidirectional::Merge parse_merge(const std::string& m) {
  if (m == "concat") return Bidirectional::Merge::Concat;
  if (m == "sum") return Bidirectional::Merge::Sum;
  if (m == "mul") return Bidirectional::Merge::Mul;
  if (m == "ave") return Bidirectional::Merge::Ave;
  fail<ValueError>("Invalid merge mode. Merge mode should be one of {\"sum\", \"mul\", \"ave\", "
                   "\"concat\"}. Received: merge_mode='", m, "'");
}

std::shared_ptr<Recurrent> as_recurrent(const LayerPtr& layer, const char* arg) {
  auto r = std::dynamic_pointer_cast<Recurrent>(layer);
  if (!r)
    fail<ValueError>("Bidirectional wraps a recurrent layer (SimpleRNN, LSTM or GRU). Received: ", arg,
                     "=", layer ? layer->class_name() + " '" + layer->name() + "'" : std::string("None"));
  return r;
}

std::string without_prefix(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0 ? s.substr(prefix.size()) : s;
}

// A fresh copy of `layer` from its config, renamed, optionally with go_backwards set.
std::shared_ptr<Recurrent> copy_of(const Recurrent& layer, const std::string& name, bool backwards) {
  json c = layer.get_config();
  c.erase("batch_input_shape");
  c["name"] = name;
  if (backwards) c["go_backwards"] = true;
  return as_recurrent(layer_from_config(layer.class_name(), c), "layer");
}

}  // namespace

std::string Bidirectional::merge_name(Merge m) {
  switch (m) {
    case Merge::Concat: return "concat";
    case Merge::Sum: return "sum";
    case Merge::Mul: return "mul";
    case Merge::Ave: return "ave";
  }
  return "concat";
}

Bidirectional::Bidirectional(const LayerPtr& layer, const std::string& merge_mode,
                             const LayerPtr& backward_layer, std::string name)
    : Layer("bidirectional"), merge_(parse_merge(merge_mode)) {
  const auto tmpl = as_recurrent(layer, "layer");
  for (const LayerPtr& l : {layer, backward_layer})
    if (l && std::static_pointer_cast<Recurrent>(l)->return_state())
      fail<ValueError>("Bidirectional does not support wrapped layers with return_state=True in "
                       "signcore yet. Received: layer '", l->name(), "' with return_state=True");
  if (backward_layer) {
    backward_ = as_recurrent(backward_layer, "backward_layer");
    if (backward_->built())
      fail<ValueError>("Bidirectional: backward_layer '", backward_->name(), "' is already part of a "
                       "built model; pass a new layer");
  }
  forward_ = copy_of(*tmpl, "forward_" + without_prefix(tmpl->name(), "forward_"), false);
  if (!backward_)
    backward_ = copy_of(*tmpl, "backward_" + without_prefix(tmpl->name(), "backward_"), true);
  if (forward_->go_backwards() == backward_->go_backwards())
    fail<ValueError>("Forward layer and backward layer should have different `go_backwards` value. "
                     "Received: forward_layer.go_backwards=", forward_->go_backwards() ? "True" : "False",
                     ", backward_layer.go_backwards=", backward_->go_backwards() ? "True" : "False");
  if (forward_->return_sequences() != backward_->return_sequences())
    fail<ValueError>("Forward layer and backward layer are expected to have the same value for "
                     "attribute \"return_sequences\", got \"", forward_->return_sequences() ? "True" : "False",
                     "\" for forward layer and \"", backward_->return_sequences() ? "True" : "False",
                     "\" for backward layer");
  // Keras: with return_sequences, masked steps output zeros in both directions.
  forward_->set_zero_output_for_mask(forward_->return_sequences());
  backward_->set_zero_output_for_mask(backward_->return_sequences());
  if (tmpl->input_shape_hint) input_shape_hint = tmpl->input_shape_hint;
  set_name(name.empty() ? unique_name("bidirectional") : std::move(name));
}

LayerPtr Bidirectional::from_config(const json& c) {
  try {
    const json& l = c.at("layer");
    LayerPtr layer = layer_from_config(l.at("class_name").get<std::string>(), l.at("config"));
    LayerPtr back;
    if (c.contains("backward_layer") && !c["backward_layer"].is_null()) {
      const json& b = c["backward_layer"];
      back = layer_from_config(b.at("class_name").get<std::string>(), b.at("config"));
    }
    std::string merge = "concat";
    if (c.contains("merge_mode")) {
      if (c["merge_mode"].is_null())
        fail<ValueError>("Bidirectional: merge_mode=None (two outputs) is not supported. Received: ",
                         c.dump());
      merge = c["merge_mode"].get<std::string>();
    }
    return std::make_shared<Bidirectional>(layer, merge, back, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid Bidirectional config (", e.what(), "). Received: ", c.dump());
  }
}

json Bidirectional::get_config() const {
  json c = Layer::get_config();
  c["merge_mode"] = merge_name(merge_);
  c["layer"] = {{"class_name", forward_->class_name()}, {"config", forward_->get_config()}};
  c["backward_layer"] = {{"class_name", backward_->class_name()}, {"config", backward_->get_config()}};
  return c;
}

const std::shared_ptr<Recurrent>& Bidirectional::forward_layer() {
  if (!built()) forward_->reset_build();
  return forward_;
}

const std::shared_ptr<Recurrent>& Bidirectional::backward_layer() {
  if (!built()) backward_->reset_build();
  return backward_;
}

void Bidirectional::set_trainable(bool t) {
  Layer::set_trainable(t);  // the weights are owned by this layer
  forward_->set_trainable(t);
  backward_->set_trainable(t);
}

// Builds both layers into `params` and takes their weights over (owner, names, trainable flag).
Shape Bidirectional::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  forward_->reset_build();  // from an earlier output-shape inference, if any
  backward_->reset_build();
  const Shape out = forward_->build_in(input_shapes, params);
  backward_->build_in(input_shapes, params);
  for (const auto& sub : {forward_, backward_})
    for (std::size_t id : sub->weight_indices()) {
      Weight& w = params.weight(id);
      w.owner = this;
      w.name = name_ + "/" + w.name;
      w.trainable = w.learnable && trainable_;
      weight_ids_.push_back(id);
    }
  Shape s = out;
  if (merge_ == Merge::Concat) s.back() *= 2;
  return s;
}

// y = merge(yf, flip(yb)) with return_sequences, else merge(yf, yb).
void Bidirectional::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  forward_->forward(inputs, yf_, ctx);
  backward_->forward(inputs, yb_, ctx);
  const Shape fs = shape_of(yf_);
  const std::size_t U = fs.back(), N = fs[0];
  const bool seq = forward_->return_sequences();
  const std::size_t T = seq ? fs[1] : 1;
  Shape ys = fs;
  if (merge_ == Merge::Concat) ys.back() = 2 * U;
  ensure_shape(y, ys);
  const std::size_t W = ys.back();
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t t = 0; t < T; ++t) {
      const float* a = yf_.data() + (n * T + t) * U;
      const float* b = yb_.data() + (n * T + (T - 1 - t)) * U;
      float* o = y.data() + (n * T + t) * W;
      switch (merge_) {
        case Merge::Concat:
          std::memcpy(o, a, U * sizeof(float));
          std::memcpy(o + U, b, U * sizeof(float));
          break;
        case Merge::Sum:
          for (std::size_t u = 0; u < U; ++u) o[u] = a[u] + b[u];
          break;
        case Merge::Mul:
          for (std::size_t u = 0; u < U; ++u) o[u] = a[u] * b[u];
          break;
        case Merge::Ave:
          for (std::size_t u = 0; u < U; ++u) o[u] = (a[u] + b[u]) / 2.f;
          break;
      }
    }
  forwarded_ = true;
}

void Bidirectional::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!forwarded_) fail<StateError>("Layer '", name_, "' (Bidirectional): backward called before forward");
  const Shape fs = shape_of(yf_);
  const std::size_t U = fs.back(), N = fs[0];
  const bool seq = forward_->return_sequences();
  const std::size_t T = seq ? fs[1] : 1;
  Shape ys = fs;
  if (merge_ == Merge::Concat) ys.back() = 2 * U;
  if (shape_of(dy) != ys)
    fail<ValueError>("Layer '", name_, "' (Bidirectional): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(ys, false));
  ensure_shape(dyf_, fs);
  ensure_shape(dyb_, fs);
  const std::size_t W = ys.back();
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t t = 0; t < T; ++t) {
      const float* g = dy.data() + (n * T + t) * W;
      float* ga = dyf_.data() + (n * T + t) * U;
      float* gb = dyb_.data() + (n * T + (T - 1 - t)) * U;
      const float* a = yf_.data() + (n * T + t) * U;
      const float* b = yb_.data() + (n * T + (T - 1 - t)) * U;
      switch (merge_) {
        case Merge::Concat:
          std::memcpy(ga, g, U * sizeof(float));
          std::memcpy(gb, g + U, U * sizeof(float));
          break;
        case Merge::Sum:
          std::memcpy(ga, g, U * sizeof(float));
          std::memcpy(gb, g, U * sizeof(float));
          break;
        case Merge::Mul:
          for (std::size_t u = 0; u < U; ++u) {
            ga[u] = g[u] * b[u];
            gb[u] = g[u] * a[u];
          }
          break;
        case Merge::Ave:
          for (std::size_t u = 0; u < U; ++u) ga[u] = gb[u] = g[u] / 2.f;
          break;
      }
    }
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  forward_->backward(dyf_, {dx ? &dxf_ : nullptr});
  backward_->backward(dyb_, {dx ? &dxb_ : nullptr});
  if (!dx) return;
  ensure_shape(*dx, shape_of(dxf_));
  const float* a = dxf_.data();
  const float* b = dxb_.data();
  float* o = dx->data();
  for (std::size_t i = 0, n = dxf_.size(); i < n; ++i) o[i] = a[i] + b[i];
}

SIGNCORE_REGISTER_LAYER(Bidirectional);

}  // namespace signcore
