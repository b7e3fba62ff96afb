// Argument handling shared by the recurrent layers' binding files (layers_recurrent.cpp for
// SimpleRNN, LSTM and GRU; layers_conv_lstm.cpp for ConvLSTM2D): dropout rates, booleans, the
// NotImplementedError for stateful, and the Keras arguments every recurrent layer
// takes, checked before the layer is created. Include it from binding files only.
#pragma once

#include <string>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/recurrent.hpp"

namespace signcore::bindings {

[[noreturn]] inline void not_implemented(const std::string& msg) {
  PyErr_SetString(PyExc_NotImplementedError, msg.c_str());
  throw py::error_already_set();
}

inline double rate_arg(const py::handle& obj, const char* arg, const char* cls) {
  if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::float_>(obj) || py::isinstance<py::int_>(obj) ||
                                          py::hasattr(obj, "__float__")))
    fail<ValueError>(cls, ": `", arg, "` must be a float in [0, 1). Received: ", arg, "=", repr_of(obj));
  const double r = py::float_(py::reinterpret_borrow<py::object>(obj)).cast<double>();
  if (!(r >= 0.0 && r < 1.0))
    fail<ValueError>(cls, ": invalid value received for argument `", arg, "`. Expected a float value "
                     "in [0, 1). Received: ", arg, "=", repr_of(obj));
  return r;
}

inline bool bool_arg(const py::handle& obj, const char* arg, const char* cls) {
  if (!py::isinstance<py::bool_>(obj) && !py::isinstance<py::int_>(obj) && !obj.is_none() &&
      !py::hasattr(obj, "__bool__"))
    fail<TypeError>(cls, ": `", arg, "` must be a boolean. Received: ", arg, "=", repr_of(obj));
  return py::bool_(py::reinterpret_borrow<py::object>(obj));
}

// The arguments SimpleRNN, LSTM, GRU and ConvLSTM2D share (units: ConvLSTM2D's filters), checked
// before the layer is created.
struct CommonArgs {
  py::object units, activation, use_bias, kernel_initializer, recurrent_initializer,
      bias_initializer, dropout, recurrent_dropout, return_sequences, return_state, go_backwards,
      stateful, unroll, seed, zero_output_for_mask;
  // regularizers and constraints (unsupported: must be None)
  py::object kernel_regularizer, recurrent_regularizer, bias_regularizer, activity_regularizer,
      kernel_constraint, recurrent_constraint, bias_constraint;
};

inline RecurrentOptions common_options(const CommonArgs& a, const char* cls) {
  RecurrentOptions o;
  o.units = int_arg(a.units, "units", cls);
  if (o.units <= 0)
    fail<ValueError>("Received an invalid value for argument `units`, expected a positive integer. "
                     "Received: units=", o.units);
  o.activation = activation_arg(a.activation, cls);
  parse_activation(o.activation);
  o.use_bias = bool_arg(a.use_bias, "use_bias", cls);
  o.kernel_initializer = initializer_arg(a.kernel_initializer, "kernel_initializer", cls);
  o.recurrent_initializer = initializer_arg(a.recurrent_initializer, "recurrent_initializer", cls);
  o.bias_initializer = initializer_arg(a.bias_initializer, "bias_initializer", cls);
  check_initializer(o.kernel_initializer);
  check_initializer(o.recurrent_initializer);
  check_initializer(o.bias_initializer);
  unsupported_none(a.kernel_regularizer, "kernel_regularizer", cls);
  unsupported_none(a.recurrent_regularizer, "recurrent_regularizer", cls);
  unsupported_none(a.bias_regularizer, "bias_regularizer", cls);
  unsupported_none(a.activity_regularizer, "activity_regularizer", cls);
  unsupported_none(a.kernel_constraint, "kernel_constraint", cls);
  unsupported_none(a.recurrent_constraint, "recurrent_constraint", cls);
  unsupported_none(a.bias_constraint, "bias_constraint", cls);
  o.dropout = rate_arg(a.dropout, "dropout", cls);
  o.recurrent_dropout = rate_arg(a.recurrent_dropout, "recurrent_dropout", cls);
  o.return_sequences = bool_arg(a.return_sequences, "return_sequences", cls);
  o.return_state = bool_arg(a.return_state, "return_state", cls);
  o.go_backwards = bool_arg(a.go_backwards, "go_backwards", cls);
  if (bool_arg(a.stateful, "stateful", cls))
    not_implemented(std::string(cls) + ": stateful=True is not supported (the state is reset to "
                    "zeros for every batch). Received: stateful=True");
  o.unroll = bool_arg(a.unroll, "unroll", cls);
  if (!a.seed.is_none()) {
    const long long s = int_arg(a.seed, "seed", cls);
    if (s < 0) fail<ValueError>(cls, ": `seed` must be a non-negative integer. Received: seed=", s);
    o.seed = static_cast<std::uint64_t>(s);
  }
  o.zero_output_for_mask = bool_arg(a.zero_output_for_mask, "zero_output_for_mask", cls);
  return o;
}

}  // namespace signcore::bindings
