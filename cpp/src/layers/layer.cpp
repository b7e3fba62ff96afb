#include "signcore/layers/layer.hpp"

#include <map>

#include "signcore/errors.hpp"

namespace signcore {

json Layer::get_config() const {
  json c{{"name", name_}, {"trainable", trainable_}};
  if (input_shape_hint) {
    json shape = json::array({nullptr});
    for (auto d : *input_shape_hint) shape.push_back(d);
    c["batch_input_shape"] = shape;
  }
  return c;
}

Shape Layer::build_in(const std::vector<Shape>& input_shapes, Parameters& params) {
  if (params_) fail<ValueError>("Layer '", name_, "' is already part of a built model; create a new layer");
  params_ = &params;
  try {
    output_shape_ = build(input_shapes, params);
  } catch (...) {
    reset_build();
    throw;
  }
  return output_shape_;
}

Shape Layer::compute_output_shape(const std::vector<Shape>& input_shapes) {
  if (params_) fail<ValueError>("Layer '", name_, "' is already part of a built model; shared layers are not supported yet");
  Parameters scratch;
  const std::vector<std::size_t> ids = weight_ids_;
  Shape out = build_in(input_shapes, scratch);
  reset_build();
  weight_ids_ = ids;
  return out;
}

std::string Layer::summary_shape() const { return shape_str(output_shape_); }

void Layer::reset_build() {
  params_ = nullptr;
  weight_ids_.clear();
  output_shape_.clear();
}

void Layer::set_trainable(bool t) {
  trainable_ = t;
  if (params_) params_->set_trainable(this, t);
}

std::size_t Layer::add_weight(Parameters& params, const std::string& name, const Shape& shape,
                              const std::string& initializer, bool learnable) {
  const std::size_t id = params.add(this, name_ + "/" + name, shape, initializer, learnable);
  params.weight(id).trainable = learnable && trainable_;
  weight_ids_.push_back(id);
  return id;
}

void Layer::expect_inputs(const std::vector<Shape>& input_shapes, std::size_t n) const {
  if (input_shapes.size() != n)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects ", n, " input(s). Received: ",
                     input_shapes.size(), " inputs");
}

namespace {
std::map<std::string, LayerFactory>& registry() {
  static std::map<std::string, LayerFactory> r;
  return r;
}
}  // namespace

std::string unique_name(const std::string& prefix) {
  static std::map<std::string, int> counters;
  const int n = counters[prefix]++;
  return n == 0 ? prefix : prefix + "_" + std::to_string(n);
}

std::string snake_case(const std::string& class_name) {
  std::string out;
  for (std::size_t i = 0; i < class_name.size(); ++i) {
    const char c = class_name[i];
    const bool upper = c >= 'A' && c <= 'Z';
    if (upper && i > 0) {
      const char prev = class_name[i - 1];
      const bool next_lower = i + 1 < class_name.size() && class_name[i + 1] >= 'a' && class_name[i + 1] <= 'z';
      if ((prev >= 'a' && prev <= 'z') || ((prev >= 'A' && prev <= 'Z') && next_lower)) out += '_';
    }
    out += upper ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return out;
}

bool register_layer(const std::string& class_name, LayerFactory factory) {
  registry()[class_name] = factory;
  return true;
}

LayerPtr layer_from_config(const std::string& class_name, const json& config) {
  auto it = registry().find(class_name);
  if (it == registry().end()) fail<ValueError>("Unknown layer class. Received: '", class_name, "'");
  LayerPtr layer = it->second(config);
  if (config.contains("trainable")) layer->set_trainable(config["trainable"].get<bool>());
  if (config.contains("batch_input_shape") && config["batch_input_shape"].is_array()) {
    Shape s;
    const auto& b = config["batch_input_shape"];
    for (std::size_t i = 1; i < b.size(); ++i) {
      // From Python the sizes arrive as signed integers; from a saved file as unsigned ones.
      if (!b[i].is_number_integer() || b[i].get<long long>() <= 0)
        fail<ValueError>("batch_input_shape must hold positive sizes after the batch axis. Received: ", b.dump());
      s.push_back(static_cast<std::size_t>(b[i].get<long long>()));
    }
    layer->input_shape_hint = s;
  }
  return layer;
}

}  // namespace signcore
