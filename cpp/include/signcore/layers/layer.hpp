// The layer contract, written down once.
//
// Life cycle
//   1. Construction validates the arguments (ValueError naming the bad value).
//   2. build(input_shapes, params) is called once by the model with the per-sample input shapes
//      (no batch axis). The layer checks them, declares its weights with params.add(...) in Keras
//      order, remembers the indices and the Parameters, and returns its per-sample output shape.
//   3. forward(inputs, y, ctx) computes y (whose buffer the model owns and reuses between batches)
//      and caches whatever backward needs. `inputs` and `y` stay alive and unchanged until the
//      matching backward, so a layer may keep pointers to them instead of copies.
//   4. backward(dy, dinputs) takes dL/dy for the last forward, writes dL/dx into each non-null
//      entry of dinputs (a null entry means no one needs that gradient: skip the work) and
//      ACCUMULATES (+=) the gradients of its weights into params.grad(i). The model zeroes all
//      gradients once per step, before the forward pass.
//
// Shapes in comments use fixed letters: N batch, T time, H W height width, C channels, F features.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "signcore/parameters.hpp"
#include "signcore/random.hpp"
#include "signcore/tensor.hpp"

namespace signcore {

using json = nlohmann::json;

struct Context {
  bool training = false;
  Rng* rng = nullptr;  // dropout masks etc.; never null during forward
  // Sequence mask (N, T) for this call: 1 = use the step, 0 = skip it (Keras's boolean mask), or
  // null. It stays alive until the matching backward.
  const Tensor* mask = nullptr;
};

// What a layer does with a sequence mask (Keras's supports_masking / compute_mask):
// None drops it, PassThrough hands the incoming mask on unchanged, Compute makes a new one.
enum class MaskMode { None, PassThrough, Compute };

class Layer {
 public:
  explicit Layer(std::string name) : name_(std::move(name)) {}
  virtual ~Layer() = default;
  Layer(const Layer&) = delete;
  Layer& operator=(const Layer&) = delete;

  // Keras class name: "Dense", "Conv2D", ...
  virtual std::string class_name() const = 0;

  // Called by the model: attaches the parameters, calls build() and records the output shape.
  Shape build_in(const std::vector<Shape>& input_shapes, Parameters& params);
  // Forget a failed or abandoned build (the model discards its Parameters).
  void reset_build();

  virtual Shape build(const std::vector<Shape>& input_shapes, Parameters& params) = 0;
  virtual void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) = 0;
  virtual void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) = 0;

  // Masking. Layers that keep the time axis and do not mix steps pass the mask on.
  virtual MaskMode mask_mode() const { return MaskMode::None; }
  // For MaskMode::Compute: write the output mask (N, T) from the inputs and the incoming mask.
  virtual void compute_mask(const std::vector<const Tensor*>& inputs, const Tensor* mask,
                            Tensor& out_mask) const {}

  // Output shape for these input shapes without building (used when layers are called on
  // symbolic inputs): runs build() against a scratch Parameters and forgets it again.
  Shape compute_output_shape(const std::vector<Shape>& input_shapes);

  // The arguments that rebuild this layer (Keras get_config keys). Base adds name and trainable.
  virtual json get_config() const;

  // Graph hooks. connect() is called by Model::add_node with the layers that produce this node's
  // inputs (null for model inputs), before build: a layer that reads another layer's state (the
  // states of a return_state recurrent layer) finds it there. An internal layer is part of another
  // layer's call (summary() and Model.layers leave it out). summary_shape() is the "Output Shape"
  // column (a list of shapes for a layer with several outputs).
  virtual void connect(const std::vector<std::shared_ptr<Layer>>& input_layers) {}
  virtual bool internal() const { return false; }
  virtual std::string summary_shape() const;
  // Activation fusion (Model::build): a layer that can apply the activation of the Activation layer
  // that alone reads its output takes it over when asked (true), and the model then skips that
  // layer. Its own config is unchanged. fuse_activation(nullptr) undoes it.
  virtual bool fuse_activation(const Layer* activation) { return false; }
  // Normalisation fusion (Model::build): a layer that can apply the per-channel map of the
  // BatchNormalization whose output it alone reads takes it over when asked (true); it then reads
  // that layer's input instead, and the BatchNormalization writes no output. nullptr undoes it.
  virtual bool fuse_normalization(const Layer* batch_norm) { return false; }
  // Relu hand-off (Model::build): a layer whose output is relu(z) and whose only reader applies the
  // relu's derivative itself (a BatchNormalization, which holds that output as its input) is told
  // so, and then takes its output gradient as dL/dz. A layer without a relu output returns false.
  virtual bool receive_relu_masked_gradient(bool on) { return false; }
  // Whether an inference forward returns the (single) input unchanged (Dropout): the model then
  // skips the layer in inference and its readers take the input itself (Model::build).
  virtual bool identity_in_inference() const { return false; }

  // Keras's `input_shape=` argument on a first layer (per sample, no batch axis).
  std::optional<Shape> input_shape_hint;

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  bool trainable() const { return trainable_; }
  virtual void set_trainable(bool t);
  bool built() const { return params_ != nullptr; }
  const Shape& output_shape() const { return output_shape_; }
  Parameters* params() const { return params_; }
  // The indices of this layer's weights in params(), Keras order.
  const std::vector<std::size_t>& weight_indices() const { return weight_ids_; }

 protected:
  // For build(): declare a weight and remember its index.
  std::size_t add_weight(Parameters& params, const std::string& name, const Shape& shape,
                         const std::string& initializer, bool learnable = true);
  // For build(): throw ValueError unless exactly `n` inputs were given.
  void expect_inputs(const std::vector<Shape>& input_shapes, std::size_t n) const;

  std::string name_;
  bool trainable_ = true;
  Parameters* params_ = nullptr;
  std::vector<std::size_t> weight_ids_;
  Shape output_shape_;
};

using LayerPtr = std::shared_ptr<Layer>;

// Keras-style automatic names: unique_name("dense") gives "dense", then "dense_1", "dense_2", ...
std::string unique_name(const std::string& prefix);
// "Conv2D" -> "conv2d", "BatchNormalization" -> "batch_normalization" (Keras's to_snake_case).
std::string snake_case(const std::string& class_name);

// Rebuild a layer from (class_name, config) as written by get_config(); ValueError for an unknown
// class. Each layer file registers itself with SIGNCORE_REGISTER_LAYER.
LayerPtr layer_from_config(const std::string& class_name, const json& config);

using LayerFactory = LayerPtr (*)(const json& config);
bool register_layer(const std::string& class_name, LayerFactory factory);
#define SIGNCORE_REGISTER_LAYER(Cls)                                                           \
  static const bool signcore_registered_##Cls = ::signcore::register_layer(                     \
      #Cls, [](const ::signcore::json& c) -> ::signcore::LayerPtr { return Cls::from_config(c); })

}  // namespace signcore
