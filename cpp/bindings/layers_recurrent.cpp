// Python bindings of the recurrent layers: SimpleRNN, LSTM, GRU, Masking and Bidirectional.
// Constructors take Keras 3's Python signatures (argument handling shared through layer_args.hpp).
#include <memory>
#include <string>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "recurrent_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/bidirectional.hpp"
#include "signcore/layers/masking.hpp"
#include "signcore/layers/recurrent.hpp"

namespace signcore::bindings {

namespace {

void use_cudnn_arg(const py::handle& obj, const char* cls) {
  if (py::isinstance<py::str>(obj) && obj.cast<std::string>() == "auto") return;
  if (py::isinstance<py::bool_>(obj)) {
    if (!obj.cast<bool>()) return;
    fail<ValueError>(cls, ": use_cudnn=True was specified, but cuDNN is not supported for this layer "
                     "configuration with this backend. Pass use_cudnn='auto' to fallback to a "
                     "non-cuDNN implementation.");
  }
  fail<ValueError>(cls, ": invalid value received for argument `use_cudnn`. Expected one of "
                   "{'auto', True, False}. Received: use_cudnn=", repr_of(obj));
}

int implementation_arg(py::kwargs& kwargs, const char* cls) {
  if (!kwargs.contains("implementation")) return 2;
  py::object v = kwargs["implementation"];
  PyDict_DelItemString(kwargs.ptr(), "implementation");
  const long long i = int_arg(v, "implementation", cls);
  if (i != 1 && i != 2)
    fail<ValueError>(cls, ": `implementation` must be 1 or 2. Received: implementation=", i);
  return static_cast<int>(i);
}

py::object seed_of(const Recurrent& l) {
  return l.options().seed ? py::object(py::int_(*l.options().seed)) : py::object(py::none());
}

}  // namespace

void bind_layers_recurrent(py::module_& m) {
  // ----- the shared base --------------------------------------------------------------------------------
  py::class_<Recurrent, Layer, std::shared_ptr<Recurrent>>(
      m, "_RecurrentBase", "Base class of SimpleRNN, LSTM and GRU (not constructible).")
      .def_property_readonly("units", &Recurrent::units)
      .def_property_readonly("activation",
                             [](const Recurrent& l) { return activation_function(l.activation()); })
      .def_property_readonly("use_bias", [](const Recurrent& l) { return l.options().use_bias; })
      .def_property_readonly("dropout", [](const Recurrent& l) { return l.options().dropout; })
      .def_property_readonly("recurrent_dropout",
                             [](const Recurrent& l) { return l.options().recurrent_dropout; })
      .def_property_readonly("return_sequences", &Recurrent::return_sequences)
      .def_property_readonly("return_state", &Recurrent::return_state)
      .def_property_readonly("state_count", &Recurrent::state_count,
                             "How many states a return_state call returns (LSTM 2: h, c; else 1).")
      .def_property_readonly("go_backwards", &Recurrent::go_backwards)
      .def_property_readonly("stateful", [](const Recurrent&) { return false; })
      .def_property_readonly("unroll", [](const Recurrent& l) { return l.options().unroll; })
      .def_property_readonly("zero_output_for_mask",
                             [](const Recurrent& l) { return l.options().zero_output_for_mask; })
      .def_property_readonly("seed", &seed_of)
      .def_property_readonly("kernel_initializer",
                             [](const Recurrent& l) { return l.options().kernel_initializer; })
      .def_property_readonly("recurrent_initializer",
                             [](const Recurrent& l) { return l.options().recurrent_initializer; })
      .def_property_readonly("bias_initializer",
                             [](const Recurrent& l) { return l.options().bias_initializer; });

  // ----- SimpleRNN ----------------------------------------------------------------------------------------
  py::class_<SimpleRNN, Recurrent, std::shared_ptr<SimpleRNN>>(m, "SimpleRNN", R"doc(
Fully-connected RNN where the output is fed back as the new input:
`h_t = activation(x_t @ kernel + bias + h_{t-1} @ recurrent_kernel)`, `h_0 = 0`.

Args:
    units: Positive integer, dimensionality of the output space.
    activation: Activation name. Default "tanh"; None means linear.
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer for the `kernel` (features, units). Default "glorot_uniform".
    recurrent_initializer: Initializer for the `recurrent_kernel` (units, units). Default "orthogonal".
    bias_initializer: Initializer for the bias (units,). Default "zeros".
    dropout: Fraction of the input features to drop (training only), in [0, 1). One mask per
        batch, reused at every time step.
    recurrent_dropout: Fraction of the recurrent state to drop (training only), in [0, 1).
    return_sequences: Return the full sequence (batch, timesteps, units) instead of the last
        output (batch, units). The sequence mask, if any, is then passed on.
    return_state: Whether the functional call also returns the final state(s): `[output, h]`, or
        `[output, h, c]` for LSTM (functional models only).
    go_backwards: Process the sequence backwards (and return the reversed sequence).
    stateful: Must be False.
    unroll: Accepted for compatibility; ignored.
    seed: Seed of the layer's own random engine for the dropout masks.
    zero_output_for_mask: With return_sequences, masked steps output zeros instead of the output
        of the previous step.

Call with a mask (bool (batch, timesteps), True = use the step) from `layer(x, mask=m)` or from a
Masking layer: on a masked step the state and the output carry over unchanged.

Input shape: (batch, timesteps, features). Output shape: (batch, units) or (batch, timesteps, units).
)doc")
      .def(py::init([](const py::object& units, const py::object& activation, const py::object& use_bias,
                       const py::object& kernel_initializer, const py::object& recurrent_initializer,
                       const py::object& bias_initializer, const py::object& kernel_regularizer,
                       const py::object& recurrent_regularizer, const py::object& bias_regularizer,
                       const py::object& activity_regularizer, const py::object& kernel_constraint,
                       const py::object& recurrent_constraint, const py::object& bias_constraint,
                       const py::object& dropout, const py::object& recurrent_dropout,
                       const py::object& return_sequences, const py::object& return_state,
                       const py::object& go_backwards, const py::object& stateful,
                       const py::object& unroll, const py::object& seed,
                       const py::object& zero_output_for_mask, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "SimpleRNN";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             CommonArgs a{units, activation, use_bias, kernel_initializer, recurrent_initializer,
                          bias_initializer, dropout, recurrent_dropout, return_sequences,
                          return_state, go_backwards, stateful, unroll, seed, zero_output_for_mask,
                          kernel_regularizer, recurrent_regularizer, bias_regularizer,
                          activity_regularizer, kernel_constraint, recurrent_constraint,
                          bias_constraint};
             RecurrentOptions o = common_options(a, cls);
             o.name = b.name;
             return finish(std::make_shared<SimpleRNN>(std::move(o)), b);
           }),
           py::arg("units"), py::arg("activation") = "tanh", py::arg("use_bias") = true,
           py::arg("kernel_initializer") = "glorot_uniform",
           py::arg("recurrent_initializer") = "orthogonal", py::arg("bias_initializer") = "zeros",
           py::arg("kernel_regularizer") = py::none(), py::arg("recurrent_regularizer") = py::none(),
           py::arg("bias_regularizer") = py::none(), py::arg("activity_regularizer") = py::none(),
           py::arg("kernel_constraint") = py::none(), py::arg("recurrent_constraint") = py::none(),
           py::arg("bias_constraint") = py::none(), py::arg("dropout") = 0.0,
           py::arg("recurrent_dropout") = 0.0, py::arg("return_sequences") = false,
           py::arg("return_state") = false, py::arg("go_backwards") = false,
           py::arg("stateful") = false, py::arg("unroll") = false, py::arg("seed") = py::none(),
           py::kw_only(), py::arg("zero_output_for_mask") = false, py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("SimpleRNN", py_to_json(c)); });

  // ----- LSTM ---------------------------------------------------------------------------------------------
  py::class_<LSTM, Recurrent, std::shared_ptr<LSTM>>(m, "LSTM", R"doc(
Long Short-Term Memory layer (Hochreiter 1997), Keras's gate order i, f, c, o:
`z = x_t @ kernel + h_{t-1} @ recurrent_kernel + bias`, `i, f, o = recurrent_activation(z_i, z_f, z_o)`,
`c_t = f * c_{t-1} + i * activation(z_c)`, `h_t = o * activation(c_t)`.

Args:
    units: Positive integer, dimensionality of the output space.
    activation: Activation name. Default "tanh"; None means linear.
    recurrent_activation: Activation of the gates. Default "sigmoid".
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer for the `kernel` (features, 4 * units).
    recurrent_initializer: Initializer for the `recurrent_kernel` (units, 4 * units).
    bias_initializer: Initializer for the bias (4 * units,).
    unit_forget_bias: Add 1 to the bias of the forget gate at initialization (the forget block
        starts at 1).
    dropout: Fraction of the input features to drop (training only), in [0, 1).
    recurrent_dropout: Fraction of the recurrent state to drop (training only), in [0, 1). With
        recurrent_dropout > 0 each gate gets its own masks (Keras's implementation 1).
    seed: Seed of the layer's own random engine for the dropout masks.
    return_sequences: Return the full sequence instead of the last output.
    return_state: Also return the final state(s) (functional call). go_backwards: Process the
    sequence backwards.
    stateful: Must be False. unroll: Ignored. use_cudnn: "auto" or False (no cuDNN on CPU).
    zero_output_for_mask: With return_sequences, masked steps output zeros.

Input shape: (batch, timesteps, features). Output shape: (batch, units) or (batch, timesteps, units).
)doc")
      .def(py::init([](const py::object& units, const py::object& activation,
                       const py::object& recurrent_activation, const py::object& use_bias,
                       const py::object& kernel_initializer, const py::object& recurrent_initializer,
                       const py::object& bias_initializer, const py::object& unit_forget_bias,
                       const py::object& kernel_regularizer, const py::object& recurrent_regularizer,
                       const py::object& bias_regularizer, const py::object& activity_regularizer,
                       const py::object& kernel_constraint, const py::object& recurrent_constraint,
                       const py::object& bias_constraint, const py::object& dropout,
                       const py::object& recurrent_dropout, const py::object& seed,
                       const py::object& return_sequences, const py::object& return_state,
                       const py::object& go_backwards, const py::object& stateful,
                       const py::object& unroll, const py::object& use_cudnn,
                       const py::object& zero_output_for_mask, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "LSTM";
             const int impl = implementation_arg(kwargs, cls);
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             CommonArgs a{units, activation, use_bias, kernel_initializer, recurrent_initializer,
                          bias_initializer, dropout, recurrent_dropout, return_sequences,
                          return_state, go_backwards, stateful, unroll, seed, zero_output_for_mask,
                          kernel_regularizer, recurrent_regularizer, bias_regularizer,
                          activity_regularizer, kernel_constraint, recurrent_constraint,
                          bias_constraint};
             RecurrentOptions o = common_options(a, cls);
             o.recurrent_activation = activation_arg(recurrent_activation, cls);
             parse_activation(o.recurrent_activation);
             o.unit_forget_bias = bool_arg(unit_forget_bias, "unit_forget_bias", cls);
             use_cudnn_arg(use_cudnn, cls);
             o.implementation = impl;
             o.name = b.name;
             return finish(std::make_shared<LSTM>(std::move(o)), b);
           }),
           py::arg("units"), py::arg("activation") = "tanh",
           py::arg("recurrent_activation") = "sigmoid", py::arg("use_bias") = true,
           py::arg("kernel_initializer") = "glorot_uniform",
           py::arg("recurrent_initializer") = "orthogonal", py::arg("bias_initializer") = "zeros",
           py::arg("unit_forget_bias") = true, py::arg("kernel_regularizer") = py::none(),
           py::arg("recurrent_regularizer") = py::none(), py::arg("bias_regularizer") = py::none(),
           py::arg("activity_regularizer") = py::none(), py::arg("kernel_constraint") = py::none(),
           py::arg("recurrent_constraint") = py::none(), py::arg("bias_constraint") = py::none(),
           py::arg("dropout") = 0.0, py::arg("recurrent_dropout") = 0.0,
           py::arg("seed") = py::none(), py::arg("return_sequences") = false,
           py::arg("return_state") = false, py::arg("go_backwards") = false,
           py::arg("stateful") = false, py::arg("unroll") = false, py::arg("use_cudnn") = "auto",
           py::kw_only(), py::arg("zero_output_for_mask") = false, py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("recurrent_activation",
                             [](const LSTM& l) { return activation_function(l.recurrent_activation()); })
      .def_property_readonly("unit_forget_bias", [](const LSTM& l) { return l.options().unit_forget_bias; })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("LSTM", py_to_json(c)); });

  // ----- GRU ----------------------------------------------------------------------------------------------
  py::class_<GRU, Recurrent, std::shared_ptr<GRU>>(m, "GRU", R"doc(
Gated Recurrent Unit (Cho et al. 2014), Keras's gate order z, r, h:
`z, r = recurrent_activation(x_t @ W_zr + b_zr + h_{t-1} @ U_zr + b'_zr)`,
`h~ = activation(x_t @ W_h + b_h + r * (h_{t-1} @ U_h + b'_h))` (reset_after=True; with False,
`h~ = activation(x_t @ W_h + b_h + (r * h_{t-1}) @ U_h)`), `h_t = z * h_{t-1} + (1 - z) * h~`.

Args:
    units: Positive integer, dimensionality of the output space.
    activation: Activation name. Default "tanh"; None means linear.
    recurrent_activation: Activation of the gates. Default "sigmoid".
    use_bias: Whether the layer uses a bias: (2, 3 * units) with reset_after (input and recurrent
        biases, as cuDNN), else (3 * units,).
    kernel_initializer, recurrent_initializer, bias_initializer: Initializer names.
    dropout, recurrent_dropout: Fractions to drop (training only), in [0, 1).
    seed: Seed of the layer's own random engine for the dropout masks.
    return_sequences, return_state (must be False), go_backwards, stateful (must be False),
    unroll (ignored): as SimpleRNN.
    reset_after: Apply the reset gate after the recurrent matrix multiplication (default True).
    use_cudnn: "auto" or False. zero_output_for_mask: as SimpleRNN.

Input shape: (batch, timesteps, features). Output shape: (batch, units) or (batch, timesteps, units).
)doc")
      .def(py::init([](const py::object& units, const py::object& activation,
                       const py::object& recurrent_activation, const py::object& use_bias,
                       const py::object& kernel_initializer, const py::object& recurrent_initializer,
                       const py::object& bias_initializer, const py::object& kernel_regularizer,
                       const py::object& recurrent_regularizer, const py::object& bias_regularizer,
                       const py::object& activity_regularizer, const py::object& kernel_constraint,
                       const py::object& recurrent_constraint, const py::object& bias_constraint,
                       const py::object& dropout, const py::object& recurrent_dropout,
                       const py::object& seed, const py::object& return_sequences,
                       const py::object& return_state, const py::object& go_backwards,
                       const py::object& stateful, const py::object& unroll,
                       const py::object& reset_after, const py::object& use_cudnn,
                       const py::object& zero_output_for_mask, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "GRU";
             const int impl = implementation_arg(kwargs, cls);
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             CommonArgs a{units, activation, use_bias, kernel_initializer, recurrent_initializer,
                          bias_initializer, dropout, recurrent_dropout, return_sequences,
                          return_state, go_backwards, stateful, unroll, seed, zero_output_for_mask,
                          kernel_regularizer, recurrent_regularizer, bias_regularizer,
                          activity_regularizer, kernel_constraint, recurrent_constraint,
                          bias_constraint};
             RecurrentOptions o = common_options(a, cls);
             o.recurrent_activation = activation_arg(recurrent_activation, cls);
             parse_activation(o.recurrent_activation);
             o.reset_after = bool_arg(reset_after, "reset_after", cls);
             use_cudnn_arg(use_cudnn, cls);
             o.implementation = impl;
             o.name = b.name;
             return finish(std::make_shared<GRU>(std::move(o)), b);
           }),
           py::arg("units"), py::arg("activation") = "tanh",
           py::arg("recurrent_activation") = "sigmoid", py::arg("use_bias") = true,
           py::arg("kernel_initializer") = "glorot_uniform",
           py::arg("recurrent_initializer") = "orthogonal", py::arg("bias_initializer") = "zeros",
           py::arg("kernel_regularizer") = py::none(), py::arg("recurrent_regularizer") = py::none(),
           py::arg("bias_regularizer") = py::none(), py::arg("activity_regularizer") = py::none(),
           py::arg("kernel_constraint") = py::none(), py::arg("recurrent_constraint") = py::none(),
           py::arg("bias_constraint") = py::none(), py::arg("dropout") = 0.0,
           py::arg("recurrent_dropout") = 0.0, py::arg("seed") = py::none(),
           py::arg("return_sequences") = false, py::arg("return_state") = false,
           py::arg("go_backwards") = false, py::arg("stateful") = false,
           py::arg("unroll") = false, py::arg("reset_after") = true, py::arg("use_cudnn") = "auto",
           py::kw_only(), py::arg("zero_output_for_mask") = false, py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("recurrent_activation",
                             [](const GRU& l) { return activation_function(l.recurrent_activation()); })
      .def_property_readonly("reset_after", [](const GRU& l) { return l.options().reset_after; })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("GRU", py_to_json(c)); });

  // ----- RecurrentState (internal: made by the functional call of a return_state layer) ----------------
  py::class_<RecurrentState, Layer, std::shared_ptr<RecurrentState>>(
      m, "_RecurrentState",
      "Final state `index` (0: h, 1: LSTM's c) of the return_state recurrent layer whose output it is\n"
      "called on. Made by `LSTM(..., return_state=True)(x)`; not for direct use.")
      .def(py::init<long long, std::string>(), py::arg("index"), py::arg("name") = "")
      .def_property_readonly("index", &RecurrentState::index);

  // ----- Masking ------------------------------------------------------------------------------------------
  py::class_<Masking, Layer, std::shared_ptr<Masking>>(m, "Masking", R"doc(
Masks a sequence by using a mask value to skip timesteps.

For each timestep of each sample, if all its features equal `mask_value`, the timestep is masked
(skipped) in the downstream layers that support masking (SimpleRNN, LSTM, GRU, Bidirectional, and
the layers that pass a mask on, such as Dense), and its output values are zeroed.

Args:
    mask_value: The value that marks a padded timestep. Default 0.0.

Input shape: (batch, timesteps, features). Output shape: the same.
)doc")
      .def(py::init([](const py::object& mask_value, const py::object& name, const py::object& trainable,
                       const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Masking";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             if (py::isinstance<py::bool_>(mask_value) ||
                 !(py::isinstance<py::float_>(mask_value) || py::isinstance<py::int_>(mask_value) ||
                   py::hasattr(mask_value, "__float__")))
               fail<ValueError>("Masking: `mask_value` must be a number. Received: mask_value=",
                                repr_of(mask_value));
             const double v = py::float_(mask_value).cast<double>();
             return finish(std::make_shared<Masking>(v, b.name), b);
           }),
           py::arg("mask_value") = 0.0, py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("mask_value", &Masking::mask_value)
      .def_property_readonly("supports_masking", [](const Masking&) { return true; })
      .def_static("from_config", [](const py::dict& c) { return layer_from_config("Masking", py_to_json(c)); });

  // ----- Bidirectional ------------------------------------------------------------------------------------
  py::class_<Bidirectional, Layer, std::shared_ptr<Bidirectional>>(m, "Bidirectional", R"doc(
Bidirectional wrapper for RNNs: runs `layer` forward in time and a copy of it backward
(go_backwards=True), then merges the two outputs.

Args:
    layer: A SimpleRNN, LSTM or GRU. It serves as a template: the wrapper builds fresh copies
        named "forward_<name>" and "backward_<name>" (the weights of `layer` itself are not used).
    merge_mode: "concat" (default), "sum", "mul" or "ave". None (two outputs) is not supported.
    weights: Must be None.
    backward_layer: Optional layer for the backward direction (used as is); it must have
        go_backwards=True and the same return_sequences as `layer`.

With return_sequences, the backward output is flipped back to time order before the merge, and
masked steps output zeros in both directions (as Keras).

Input shape: (batch, timesteps, features). Output shape: (batch, [timesteps,] 2 * units) for
"concat", (batch, [timesteps,] units) otherwise. Weights: the forward layer's, then the backward's.
)doc")
      .def(py::init([](const py::object& layer, const py::object& merge_mode, const py::object& weights,
                       const py::object& backward_layer, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "Bidirectional";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             unsupported_none(weights, "weights", cls);
             if (merge_mode.is_none())
               not_implemented("Bidirectional: merge_mode=None returns the two directions as two "
                               "outputs, and signcore layers have a single output. Use \"concat\", "
                               "\"sum\", \"mul\" or \"ave\". Received: merge_mode=None");
             if (!py::isinstance<py::str>(merge_mode))
               fail<ValueError>("Invalid merge mode. Merge mode should be one of {\"sum\", \"mul\", "
                                "\"ave\", \"concat\", None}. Received: merge_mode=", repr_of(merge_mode));
             auto as_layer = [&](const py::object& o, const char* arg) -> LayerPtr {
               if (o.is_none()) return nullptr;
               if (!py::isinstance<Layer>(o))
                 fail<ValueError>("Please initialize `Bidirectional` layer with a layer instance. "
                                  "Received: ", arg, "=", repr_of(o));
               return o.cast<LayerPtr>();
             };
             LayerPtr l = as_layer(layer, "layer");
             if (!l) fail<ValueError>("Bidirectional needs a layer. Received: layer=None");
             auto bl = std::make_shared<Bidirectional>(l, merge_mode.cast<std::string>(),
                                                       as_layer(backward_layer, "backward_layer"), b.name);
             if (!b.input_shape) b.input_shape = bl->input_shape_hint;  // from the wrapped layer
             return finish(bl, b);
           }),
           py::arg("layer"), py::arg("merge_mode") = "concat", py::arg("weights") = py::none(),
           py::arg("backward_layer") = py::none(), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("forward_layer", &Bidirectional::forward_layer)
      .def_property_readonly("backward_layer", &Bidirectional::backward_layer)
      .def_property_readonly("merge_mode",
                             [](const Bidirectional& l) { return Bidirectional::merge_name(l.merge_mode()); })
      .def_property_readonly("return_sequences",
                             [](Bidirectional& l) { return l.forward_layer()->return_sequences(); })
      .def_property_readonly("return_state", [](const Bidirectional&) { return false; })
      .def_property_readonly("stateful", [](const Bidirectional&) { return false; })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("Bidirectional", py_to_json(c)); });
}

}  // namespace signcore::bindings
