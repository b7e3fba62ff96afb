// Python bindings of the Layer base class, the core layers (Dense, Activation, Dropout, Flatten,
// Reshape), the activation and initialiser functions, and LayerHarness (layer-level tests).
// Constructors take Keras's Python signatures; unknown keywords raise Keras's message.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "signcore/activations.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/activation.hpp"
#include "signcore/layers/dense.hpp"
#include "signcore/layers/dropout.hpp"
#include "signcore/layers/layer.hpp"
#include "signcore/layers/reshape.hpp"
#include "signcore/parameters.hpp"
#include "signcore/random.hpp"

namespace signcore::bindings {

namespace {

// ----- weights -----------------------------------------------------------------------------------

py::list get_weights(const Layer& layer) {
  py::list out;
  if (!layer.built()) return out;
  Parameters& p = *layer.params();
  for (std::size_t id : layer.weight_indices()) {
    const Weight& w = p.weights()[id];
    Tensor t = Tensor::from_shape(w.shape);
    std::copy(p.value(id), p.value(id) + w.size, t.data());
    out.append(to_numpy(std::move(t)));
  }
  return out;
}

void set_weights(Layer& layer, const py::sequence& weights) {
  const auto& ids = layer.weight_indices();
  if (!layer.built() && py::len(weights) > 0)
    fail<ValueError>("Layer '", layer.name(), "' is not built yet, so it has no weights to set; add "
                     "it to a model and build it first. Received: a list of ", py::len(weights),
                     " arrays");
  if (py::len(weights) != ids.size())
    fail<ValueError>("You called set_weights(weights) on layer '", layer.name(),
                     "' with a weight list of length ", py::len(weights), ", but the layer was "
                     "expecting ", ids.size(), " weights.");
  if (ids.empty()) return;
  Parameters& p = *layer.params();
  std::vector<FloatArray> arrays;
  for (std::size_t k = 0; k < ids.size(); ++k) {
    auto a = FloatArray::ensure(weights[k]);
    if (!a) {
      PyErr_Clear();
      fail<ValueError>("Layer '", layer.name(), "': weight ", k, " is not convertible to a float32 "
                       "array. Received: ", repr_of(weights[k]));
    }
    const Weight& w = p.weights()[ids[k]];
    Shape got(a.shape(), a.shape() + a.ndim());
    if (got != w.shape)
      fail<ValueError>("Layer '", layer.name(), "' weight '", w.name, "' has shape ",
                       shape_str(w.shape, false), ", which is not compatible with the provided "
                       "weight shape. Received: shape=", shape_str(got, false));
    arrays.push_back(std::move(a));
  }
  for (std::size_t k = 0; k < ids.size(); ++k)
    std::copy(arrays[k].data(), arrays[k].data() + arrays[k].size(), p.value(ids[k]));
}

// ----- LayerHarness --------------------------------------------------------------------------------

// Owns a Parameters and drives one layer outside any model: build, forward, backward, and flat
// access to the parameter values and gradients. For the gradient checks in tests/gradcheck.py.
class LayerHarness {
 public:
  LayerHarness(LayerPtr layer, std::vector<Shape> input_shapes)
      : layer_(std::move(layer)), input_shapes_(std::move(input_shapes)) {
    output_shape_ = layer_->build_in(input_shapes_, params_);
    params_.allocate();
  }

  // `mask` (optional, (N, T), bool or 0/1) is passed as ctx.mask, as a model passes a sequence mask.
  py::array forward(const py::list& xs, bool training, std::uint64_t seed, const py::object& mask) {
    if (py::len(xs) != input_shapes_.size())
      fail<ValueError>("LayerHarness.forward expects ", input_shapes_.size(), " input(s). Received: ",
                       py::len(xs));
    inputs_.clear();
    for (std::size_t i = 0; i < input_shapes_.size(); ++i) {
      auto arr = FloatArray::ensure(xs[i]);
      if (!arr) {
        PyErr_Clear();
        fail<TypeError>("LayerHarness.forward: input ", i, " is not convertible to a float32 array. "
                        "Received: ", repr_of(xs[i]));
      }
      Tensor t = to_tensor(arr);
      const Shape s = shape_of(t);
      if (s.empty() || Shape(s.begin() + 1, s.end()) != input_shapes_[i])
        fail<ValueError>("LayerHarness.forward: input ", i, " must have shape ",
                         shape_str(input_shapes_[i]), ". Received: shape=", shape_str(s, false));
      inputs_.push_back(std::move(t));
    }
    has_mask_ = !mask.is_none();
    if (has_mask_) {
      auto m = FloatArray::ensure(mask);
      if (!m || m.ndim() != 2) {
        PyErr_Clear();
        fail<ValueError>("LayerHarness.forward: mask must be a (batch, timesteps) array. Received: ",
                         repr_of(mask));
      }
      mask_ = to_tensor(m);
    }
    {
      py::gil_scoped_release release;
      rng_.seed(seed);
      Context ctx;
      ctx.training = training;
      ctx.rng = &rng_;
      ctx.mask = has_mask_ ? &mask_ : nullptr;
      std::vector<const Tensor*> in;
      for (auto& t : inputs_) in.push_back(&t);
      layer_->forward(in, y_, ctx);
    }
    forwarded_ = true;
    return to_numpy(Tensor(y_));
  }

  // Zeroes the gradients (unless zero_grads is false, to test accumulation), then runs backward.
  // `need[i]` false passes a null dinput for input i (its entry in the result is None).
  py::list backward(const FloatArray& dy_arr, std::optional<std::vector<bool>> need, bool zero) {
    if (!forwarded_) fail<StateError>("LayerHarness.backward called before forward");
    Tensor dy = to_tensor(dy_arr);
    if (shape_of(dy) != shape_of(y_))
      fail<ValueError>("LayerHarness.backward: dy must have the output's shape ",
                       shape_str(shape_of(y_), false), ". Received: shape=", shape_str(shape_of(dy), false));
    const std::size_t n = inputs_.size();
    if (need && need->size() != n)
      fail<ValueError>("LayerHarness.backward: `need` must have one flag per input (", n,
                       "). Received: ", need->size(), " flags");
    std::vector<Tensor> dx(n);
    std::vector<Tensor*> dptr(n, nullptr);
    for (std::size_t i = 0; i < n; ++i) {
      if (need && !(*need)[i]) continue;
      // Start from huge values so a layer that forgets to write dx (or adds into it) is caught.
      dx[i] = Tensor::from_shape(shape_of(inputs_[i]));
      std::fill(dx[i].begin(), dx[i].end(), 1e30f);
      dptr[i] = &dx[i];
    }
    {
      py::gil_scoped_release release;
      if (zero) params_.zero_grads();
      layer_->backward(dy, dptr);
    }
    py::list out;
    for (std::size_t i = 0; i < n; ++i)
      out.append(dptr[i] ? py::object(to_numpy(std::move(dx[i]))) : py::object(py::none()));
    return out;
  }

  py::array param_values() const { return flat_copy(params_.values()); }
  py::array param_grads() { return flat_copy(params_.grads()); }
  void set_param_values(const FloatArray& flat) {
    if (static_cast<std::size_t>(flat.size()) != params_.total())
      fail<ValueError>("LayerHarness.set_param_values expects ", params_.total(),
                       " values. Received: ", flat.size());
    std::copy(flat.data(), flat.data() + flat.size(), params_.values().begin());
  }
  void zero_grads() { params_.zero_grads(); }

  py::list weights() const {  // [(name, shape, trainable, offset, size)]
    py::list out;
    for (const Weight& w : params_.weights())
      out.append(py::make_tuple(w.name, plain_shape(w.shape), w.trainable, w.offset, w.size));
    return out;
  }

  const LayerPtr& layer() const { return layer_; }
  const Shape& output_shape() const { return output_shape_; }

 private:
  static py::array flat_copy(const std::vector<float>& v) {
    Tensor t = Tensor::from_shape({v.size()});
    std::copy(v.begin(), v.end(), t.data());
    return to_numpy(std::move(t));
  }

  LayerPtr layer_;
  std::vector<Shape> input_shapes_;
  Parameters params_;
  Shape output_shape_;
  std::vector<Tensor> inputs_;
  Tensor y_;
  Tensor mask_;  // kept alive until backward, as a model does
  bool has_mask_ = false;
  Rng rng_;
  bool forwarded_ = false;
};

}  // namespace

void bind_layers(py::module_& m) {
  unrecognized_kwargs_error = PyErr_NewException(
      "signcore._core.UnrecognizedArgumentsError",
      py::make_tuple(py::handle(PyExc_TypeError), py::handle(PyExc_ValueError)).release().ptr(), nullptr);
  m.attr("UnrecognizedArgumentsError") = py::handle(unrecognized_kwargs_error);

  // ----- Layer ---------------------------------------------------------------------------------------
  py::class_<Layer, LayerPtr>(m, "Layer", "Base class of all signcore layers (built in C++).")
      .def_property("name", [](const Layer& l) { return l.name(); },
                    [](Layer& l, const std::string& n) {
                      if (n.empty()) fail<ValueError>("A layer name cannot be empty. Received: name=''");
                      l.set_name(n);
                    })
      .def_property("trainable", &Layer::trainable,
                    [](Layer& l, bool t) { l.set_trainable(t); },
                    "Whether the layer's weights are updated by fit (settable at any time).")
      .def_property_readonly("built", &Layer::built)
      .def_property_readonly("class_name", &Layer::class_name)
      .def_property_readonly("output_shape",
                             [](const Layer& l) {
                               if (!l.built())
                                 throw py::attribute_error("Layer '" + l.name() +
                                                           "' has no defined output shape yet: it has "
                                                           "not been built in a model.");
                               return keras_shape(l.output_shape());
                             })
      .def_property(
          "input_shape_hint",
          [](const Layer& l) -> py::object {
            if (!l.input_shape_hint) return py::none();
            return plain_shape(*l.input_shape_hint);
          },
          [](Layer& l, const py::object& s) {
            if (s.is_none()) l.input_shape_hint.reset();
            else l.input_shape_hint = positive_shape(s, "input_shape", l.class_name().c_str());
          },
          "The per-sample `input_shape=` given to the constructor (no batch axis), or None.")
      .def("get_config", [](const Layer& l) { return json_to_py(l.get_config()); })
      .def("count_params",
           [](const Layer& l) {
             if (!l.built())
               fail<ValueError>("You tried to call count_params on layer '", l.name(),
                                "', but the layer isn't built. Add it to a model and build it first.");
             std::size_t n = 0;
             for (std::size_t id : l.weight_indices()) n += l.params()->weights()[id].size;
             return n;
           })
      .def("get_weights", &get_weights, "The layer's weights as NumPy arrays (copies), Keras order.")
      .def("set_weights", &set_weights, py::arg("weights"),
           "Set the layer's weights from a list of arrays with the shapes get_weights() returns.")
      .def_property_readonly("weight_names",
                             [](const Layer& l) {
                               py::list out;
                               if (l.built())
                                 for (std::size_t id : l.weight_indices())
                                   out.append(l.params()->weights()[id].name);
                               return out;
                             })
      .def("__repr__", [](const Layer& l) {
        return "<" + l.class_name() + " name=" + l.name() + ", built=" + (l.built() ? "True" : "False") +
               ">";
      });

  m.def("layer_from_config",
        [](const std::string& class_name, const py::dict& config) {
          return layer_from_config(class_name, py_to_json(config));
        },
        py::arg("class_name"), py::arg("config"),
        "Rebuild a layer from its class name and get_config() dictionary.");

  // ----- Dense ----------------------------------------------------------------------------------------
  py::class_<Dense, Layer, std::shared_ptr<Dense>>(m, "Dense", R"doc(
Just your regular densely-connected NN layer: `output = activation(dot(input, kernel) + bias)`.

Args:
    units: Positive integer, dimensionality of the output space.
    activation: Activation name (e.g. "relu"). None means linear.
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer name for the kernel weights matrix.
    bias_initializer: Initializer name for the bias vector.

Input shape: (batch_size, ..., input_dim). Output shape: (batch_size, ..., units).
)doc")
      .def(py::init([](const py::object& units, const py::object& activation, bool use_bias,
                       const py::object& kernel_initializer, const py::object& bias_initializer,
                       const py::object& kernel_regularizer, const py::object& bias_regularizer,
                       const py::object& activity_regularizer, const py::object& kernel_constraint,
                       const py::object& bias_constraint, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Dense";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const long long u = int_arg(units, "units", cls);
             const std::string act = activation_arg(activation, cls);
             const std::string ki = initializer_arg(kernel_initializer, "kernel_initializer", cls);
             const std::string bi = initializer_arg(bias_initializer, "bias_initializer", cls);
             unsupported_none(kernel_regularizer, "kernel_regularizer", cls);
             unsupported_none(bias_regularizer, "bias_regularizer", cls);
             unsupported_none(activity_regularizer, "activity_regularizer", cls);
             unsupported_none(kernel_constraint, "kernel_constraint", cls);
             unsupported_none(bias_constraint, "bias_constraint", cls);
             if (u <= 0)  // checked here too so a rejected call does not use up a name
               fail<ValueError>("Received an invalid value for argument `units`, expected a positive "
                                "integer. Received: units=", u);
             parse_activation(act);
             check_initializer(ki);
             check_initializer(bi);
             return finish(std::make_shared<Dense>(u, act, use_bias, ki, bi, b.name), b);
           }),
           py::arg("units"), py::arg("activation") = py::none(), py::arg("use_bias") = true,
           py::arg("kernel_initializer") = "glorot_uniform", py::arg("bias_initializer") = "zeros",
           py::arg("kernel_regularizer") = py::none(), py::arg("bias_regularizer") = py::none(),
           py::arg("activity_regularizer") = py::none(), py::arg("kernel_constraint") = py::none(),
           py::arg("bias_constraint") = py::none(), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("units", &Dense::units)
      .def_property_readonly("use_bias", &Dense::use_bias)
      .def_property_readonly("activation", [](const Dense& l) { return activation_function(l.activation()); })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("Dense", py_to_json(c)); });

  // ----- Activation -----------------------------------------------------------------------------------
  py::class_<Activation, Layer, std::shared_ptr<Activation>>(m, "Activation", R"doc(
Applies an activation function to an output.

Args:
    activation: Activation name, e.g. "relu" or "softmax" (softmax normalises the last axis).

Input shape: arbitrary. Output shape: same as the input.
)doc")
      .def(py::init([](const py::object& activation, const py::object& name, const py::object& trainable,
                       const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Activation";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const std::string act = activation_arg(activation, cls);
             parse_activation(act);
             return finish(std::make_shared<Activation>(act, b.name), b);
           }),
           py::arg("activation"), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("activation",
                             [](const Activation& l) { return activation_function(l.activation()); })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("Activation", py_to_json(c)); });

  // ----- Dropout --------------------------------------------------------------------------------------
  py::class_<Dropout, Layer, std::shared_ptr<Dropout>>(m, "Dropout", R"doc(
Applies dropout to the input: during training each value is set to 0 with probability `rate` and the
others are scaled by 1 / (1 - rate), so the expected sum is unchanged. At inference it does nothing.

Args:
    rate: Float in [0, 1). Fraction of the input units to drop.
    noise_shape: Shape of the binary mask (batch axis included) broadcast against the input; None
        entries take the input's size. E.g. (None, 1, features) drops the same features at every step.
    seed: Optional integer; the layer then draws its masks from its own random engine.

Input shape: arbitrary. Output shape: same as the input.
)doc")
      .def(py::init([](const py::object& rate, const py::object& noise_shape, const py::object& seed,
                       const py::object& name, const py::object& trainable,
                       const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Dropout";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             if (!(py::isinstance<py::int_>(rate) || py::isinstance<py::float_>(rate) ||
                   py::hasattr(rate, "__float__")) || py::isinstance<py::bool_>(rate))
               fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in "
                                "[0, 1). Received: rate=", repr_of(rate));
             const double r = rate.cast<double>();
             if (!(r >= 0.0 && r < 1.0))
               fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in "
                                "[0, 1). Received: rate=", repr_of(rate));
             std::optional<Dropout::NoiseShape> ns;
             if (!noise_shape.is_none()) {
               if (!py::isinstance<py::sequence>(noise_shape) || py::isinstance<py::str>(noise_shape))
                 fail<TypeError>("Dropout: `noise_shape` must be None or a tuple of integers and None. "
                                 "Received: noise_shape=", repr_of(noise_shape));
               Dropout::NoiseShape v;
               for (auto d : noise_shape.cast<py::sequence>()) {
                 if (d.is_none()) {
                   v.emplace_back(std::nullopt);
                   continue;
                 }
                 const long long k = int_arg(d, "noise_shape", cls);
                 if (k <= 0)
                   fail<ValueError>("Dropout: `noise_shape` entries must be positive or None. "
                                    "Received: noise_shape=", repr_of(noise_shape));
                 v.emplace_back(static_cast<std::size_t>(k));
               }
               ns = std::move(v);
             }
             std::optional<std::uint64_t> sd;
             if (!seed.is_none()) {
               const long long s = int_arg(seed, "seed", cls);
               if (s < 0) fail<ValueError>("Dropout: `seed` must be a non-negative integer. Received: seed=", s);
               sd = static_cast<std::uint64_t>(s);
             }
             return finish(std::make_shared<Dropout>(r, ns, sd, b.name), b);
           }),
           py::arg("rate"), py::arg("noise_shape") = py::none(), py::arg("seed") = py::none(),
           py::kw_only(), py::arg("name") = py::none(), py::arg("trainable") = true,
           py::arg("input_shape") = py::none(), py::arg("dtype") = py::none())
      .def_property_readonly("rate", &Dropout::rate)
      .def_property_readonly("noise_shape", [](const Dropout& l) { return json_to_py(l.get_config()["noise_shape"]); })
      .def_property_readonly("seed", [](const Dropout& l) { return json_to_py(l.get_config()["seed"]); })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("Dropout", py_to_json(c)); });

  // ----- Flatten --------------------------------------------------------------------------------------
  py::class_<Flatten, Layer, std::shared_ptr<Flatten>>(m, "Flatten", R"doc(
Flattens the input. Does not affect the batch size.

Args:
    data_format: None or "channels_last" (signcore is channels-last throughout).

Input shape: (batch_size, ...). Output shape: (batch_size, product of the other axes).
)doc")
      .def(py::init([](const py::object& data_format, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Flatten";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             std::string fmt;
             if (!data_format.is_none()) {
               if (!py::isinstance<py::str>(data_format))
                 fail<ValueError>("Flatten: `data_format` must be None or 'channels_last'. Received: "
                                  "data_format=", repr_of(data_format));
               fmt = data_format.cast<std::string>();
               if (fmt != "channels_last")
                 fail<ValueError>("signcore's Flatten supports data_format='channels_last' only. "
                                  "Received: data_format='", fmt, "'");
             }
             return finish(std::make_shared<Flatten>(fmt, b.name), b);
           }),
           py::arg("data_format") = py::none(), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("Flatten", py_to_json(c)); });

  // ----- Reshape --------------------------------------------------------------------------------------
  py::class_<Reshape, Layer, std::shared_ptr<Reshape>>(m, "Reshape", R"doc(
Reshapes each sample to `target_shape` (the batch axis is kept).

Args:
    target_shape: Tuple of integers, without the batch axis. One entry may be -1: it is inferred
        from the input size.

Input shape: (batch_size, ...). Output shape: (batch_size, *target_shape).
)doc")
      .def(py::init([](const py::object& target_shape, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Reshape";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             if (!py::isinstance<py::sequence>(target_shape) || py::isinstance<py::str>(target_shape))
               fail<TypeError>("Reshape: `target_shape` must be a tuple of integers. Received: "
                               "target_shape=", repr_of(target_shape));
             std::vector<long long> t;
             for (auto d : target_shape.cast<py::sequence>()) {
               if (d.is_none())
                 fail<ValueError>("Reshape: `target_shape` cannot hold None (use -1 for one inferred "
                                  "axis; the batch axis is not part of it). Received: target_shape=",
                                  repr_of(target_shape));
               t.push_back(int_arg(d, "target_shape", cls));
             }
             const auto unknown = std::count(t.begin(), t.end(), -1LL);
             if (unknown > 1 || std::any_of(t.begin(), t.end(), [](long long d) { return d == 0 || d < -1; }))
               fail<ValueError>("Reshape's target_shape must hold positive sizes and at most one -1 "
                                "(inferred). Received: target_shape=", repr_of(target_shape));
             return finish(std::make_shared<Reshape>(t, b.name), b);
           }),
           py::arg("target_shape"), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("target_shape", [](const Reshape& l) {
        py::list out;
        for (auto d : l.target_shape()) out.append(d);
        return py::tuple(out);
      })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("Reshape", py_to_json(c)); });

  // ----- functions ------------------------------------------------------------------------------------
  m.def("_activation_names", [] {
    py::list out;
    for (const char* n : {"linear", "relu", "sigmoid", "tanh", "softmax", "leaky_relu", "elu", "gelu",
                          "selu", "softplus", "softsign", "silu", "swish", "hard_sigmoid", "exponential"})
      out.append(n);
    return out;
  });
  m.def("_check_activation", [](const std::string& name) { return activation_name(parse_activation(name)); },
        py::arg("name"), "Canonical Keras name of an activation; ValueError for unknown names.");
  m.def("_activation_forward",
        [](const std::string& name, const FloatArray& x) {
          const ActivationKind kind = parse_activation(name);
          Tensor t = to_tensor(x);
          const std::size_t cols = t.dimension() >= 1 && t.size() > 0 ? t.shape().back() : 1;
          {
            py::gil_scoped_release release;
            if (cols > 0) activation_forward(kind, t.data(), t.data(), t.size() / cols, cols);
          }
          return to_numpy(std::move(t));
        },
        py::arg("name"), py::arg("x"), "f(x) as float32 (softmax over the last axis).");
  m.def("_activation_backward",
        [](const std::string& name, const FloatArray& x, const FloatArray& dy) {
          const ActivationKind kind = parse_activation(name);
          Tensor tx = to_tensor(x), tdy = to_tensor(dy);
          if (shape_of(tx) != shape_of(tdy))
            fail<ValueError>("x and dy must have the same shape. Received: ", shape_str(shape_of(tx), false),
                             " and ", shape_str(shape_of(tdy), false));
          const std::size_t cols = tx.dimension() >= 1 && tx.size() > 0 ? tx.shape().back() : 1;
          Tensor ty = tx;
          if (cols > 0) {
            py::gil_scoped_release release;
            activation_forward(kind, tx.data(), ty.data(), tx.size() / cols, cols);
            activation_backward(kind, tx.data(), ty.data(), tdy.data(), tdy.data(), tx.size() / cols, cols);
          }
          return to_numpy(std::move(tdy));
        },
        py::arg("name"), py::arg("x"), py::arg("dy"), "dy * f'(x) as float32.");
  m.def("_check_initializer", [](const std::string& name) { check_initializer(name); }, py::arg("name"));
  m.def("_initialize",
        [](const std::string& name, const py::sequence& shape, std::optional<std::uint64_t> seed) {
          check_initializer(name);
          Shape s;
          for (auto d : shape) {
            const long long k = int_arg(d, "shape", "initializer");
            if (k < 0) fail<ValueError>("Initializer shapes must be non-negative. Received: shape=", repr_of(shape));
            s.push_back(static_cast<std::size_t>(k));
          }
          Tensor t = Tensor::from_shape(s);
          if (seed) {
            Rng rng(*seed);
            initialize(name, s, t.data(), rng);
          } else {
            initialize(name, s, t.data(), global_rng());
          }
          return to_numpy(std::move(t));
        },
        py::arg("name"), py::arg("shape"), py::arg("seed") = py::none(),
        "Draw a float32 array of `shape` from the named initializer (the global engine unless seeded).");

  // ----- LayerHarness ---------------------------------------------------------------------------------
  py::class_<LayerHarness>(m, "LayerHarness",
                           "Drives one layer outside a model (for layer tests): owns its Parameters.")
      .def(py::init([](LayerPtr layer, const std::vector<std::vector<std::size_t>>& shapes) {
             std::vector<Shape> s(shapes.begin(), shapes.end());
             return std::make_unique<LayerHarness>(std::move(layer), std::move(s));
           }),
           py::arg("layer"), py::arg("input_shapes"), py::keep_alive<2, 1>())
      .def("forward", &LayerHarness::forward, py::arg("inputs"), py::arg("training") = false,
           py::arg("seed") = 0, py::arg("mask") = py::none())
      .def("backward", &LayerHarness::backward, py::arg("dy"), py::arg("need") = py::none(),
           py::arg("zero_grads") = true)
      .def("param_values", &LayerHarness::param_values)
      .def("set_param_values", &LayerHarness::set_param_values, py::arg("values"))
      .def("param_grads", &LayerHarness::param_grads)
      .def("zero_grads", &LayerHarness::zero_grads)
      .def_property_readonly("weights", &LayerHarness::weights)
      .def_property_readonly("layer", &LayerHarness::layer)
      .def_property_readonly("output_shape",
                             [](const LayerHarness& h) { return plain_shape(h.output_shape()); });
}

}  // namespace signcore::bindings
