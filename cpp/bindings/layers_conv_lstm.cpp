// Python binding of ConvLSTM2D, with Keras 3's constructor signature (argument handling shared
// with the other recurrent layers through recurrent_args.hpp and layer_args.hpp).
#include <memory>
#include <string>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "recurrent_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/layers/conv_lstm2d.hpp"

namespace signcore::bindings {

namespace {

std::array<long long, 2> pair_of(const py::handle& obj, const char* arg) {
  const auto v = int_tuple_arg(obj, 2, arg, "ConvLSTM2D");
  return {v[0], v[1]};
}

template <class A>
py::tuple tuple2(const A& a) {
  return py::make_tuple(a[0], a[1]);
}

}  // namespace

void bind_layers_conv_lstm(py::module_& m) {
  py::class_<ConvLSTM2D, Layer, std::shared_ptr<ConvLSTM2D>>(m, "ConvLSTM2D", R"doc(
2D convolutional LSTM layer (Shi et al. 2015): an LSTM whose input and recurrent transformations
are convolutions, over channels-last video. Keras's gate order i, f, c, o:
`z = conv(x_t, kernel) + conv(h_{t-1}, recurrent_kernel) + bias`,
`i, f, o = recurrent_activation(z_i, z_f, z_o)`, `c_t = f * c_{t-1} + i * activation(z_c)`,
`h_t = o * activation(c_t)`, with `h_0 = c_0 = 0`. The input convolution uses `strides`, `padding`
and `dilation_rate`; the recurrent one always uses stride 1 and "same" padding.

Args:
    filters: Positive integer, the number of output channels (of h and c).
    kernel_size: Integer or tuple of 2 integers, the (height, width) of both convolution windows.
    strides: Integer or tuple of 2 integers, the strides of the input convolution. `strides > 1`
        is incompatible with `dilation_rate > 1`.
    padding: "valid" or "same" (case-insensitive), for the input convolution.
    data_format: None or "channels_last" (signcore is channels-last throughout).
    dilation_rate: Integer or tuple of 2 integers, the dilation of the input convolution.
    activation: Activation name for the candidate and the output. Default "tanh"; None is linear.
    recurrent_activation: Activation of the gates i, f, o. Default "sigmoid".
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer for the `kernel` (kh, kw, channels, 4 * filters).
        Default "glorot_uniform".
    recurrent_initializer: Initializer for the `recurrent_kernel` (kh, kw, filters, 4 * filters).
        Default "orthogonal" (over the kernel flattened to (kh * kw * filters, 4 * filters)).
    bias_initializer: Initializer for the bias (4 * filters,). Default "zeros".
    unit_forget_bias: The forget gate's bias block starts at 1.
    dropout: Fraction of the input to drop (training only), in [0, 1): one mask per gate and
        sample over the whole frame (height, width, channels), drawn once per batch and reused at
        every time step.
    recurrent_dropout: Fraction of the recurrent state h to drop (training only), in [0, 1): one
        mask per gate and sample, reused at every step.
    seed: Seed of the layer's own random engine for the dropout masks.
    return_sequences: Return the full sequence (batch, time, rows, cols, filters) instead of the
        last output. The sequence mask, if any, is then passed on.
    return_state: Must be False (not supported for ConvLSTM2D yet).
    go_backwards: Process the sequence backwards (and return the reversed sequence).
    stateful: Must be False.

Call with a mask (bool (batch, time), True = use the step): on a masked step the state and the
output carry over unchanged; a step masked for the whole batch is skipped.

Input shape: (batch, time, rows, cols, channels).
Output shape: (batch, time, new_rows, new_cols, filters) with return_sequences, else
(batch, new_rows, new_cols, filters); new_rows = floor((rows - dilated_kernel_rows) / stride) + 1
for "valid", ceil(rows / stride) for "same", likewise for the columns.
)doc")
      .def(py::init([](const py::object& filters, const py::object& kernel_size,
                       const py::object& strides, const py::object& padding,
                       const py::object& data_format, const py::object& dilation_rate,
                       const py::object& activation, const py::object& recurrent_activation,
                       const py::object& use_bias, const py::object& kernel_initializer,
                       const py::object& recurrent_initializer, const py::object& bias_initializer,
                       const py::object& unit_forget_bias, const py::object& kernel_regularizer,
                       const py::object& recurrent_regularizer, const py::object& bias_regularizer,
                       const py::object& activity_regularizer, const py::object& kernel_constraint,
                       const py::object& recurrent_constraint, const py::object& bias_constraint,
                       const py::object& dropout, const py::object& recurrent_dropout,
                       const py::object& seed, const py::object& return_sequences,
                       const py::object& return_state, const py::object& go_backwards,
                       const py::object& stateful, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "ConvLSTM2D";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const long long f = int_arg(filters, "filters", cls);
             if (f <= 0)
               fail<ValueError>("Invalid value for argument `filters`. Expected a strictly positive "
                                "value. Received: filters=", f);
             CommonArgs a{py::int_(f), activation, use_bias, kernel_initializer,
                          recurrent_initializer, bias_initializer, dropout, recurrent_dropout,
                          return_sequences, return_state, go_backwards, stateful,
                          py::bool_(false), seed, py::bool_(false), kernel_regularizer,
                          recurrent_regularizer, bias_regularizer, activity_regularizer,
                          kernel_constraint, recurrent_constraint, bias_constraint};
             ConvLSTM2DOptions o;
             o.rnn = common_options(a, cls);
             o.rnn.recurrent_activation = activation_arg(recurrent_activation, cls);
             o.rnn.unit_forget_bias = bool_arg(unit_forget_bias, "unit_forget_bias", cls);
             o.rnn.name = b.name;
             o.kernel_size = pair_of(kernel_size, "kernel_size");
             o.strides = pair_of(strides, "strides");
             o.dilation_rate = pair_of(dilation_rate, "dilation_rate");
             o.padding = padding_arg(padding, cls);
             data_format_arg(data_format, cls);
             // The C++ constructor validates the rest before it takes an automatic name.
             return finish(std::make_shared<ConvLSTM2D>(std::move(o)), b);
           }),
           py::arg("filters"), py::arg("kernel_size"), py::arg("strides") = 1,
           py::arg("padding") = "valid", py::arg("data_format") = py::none(),
           py::arg("dilation_rate") = 1, py::arg("activation") = "tanh",
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
           py::arg("stateful") = false, py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("filters", &ConvLSTM2D::filters)
      .def_property_readonly("kernel_size", [](const ConvLSTM2D& l) { return tuple2(l.kernel_size()); })
      .def_property_readonly("strides", [](const ConvLSTM2D& l) { return tuple2(l.strides()); })
      .def_property_readonly("padding", [](const ConvLSTM2D& l) { return conv_padding_name(l.padding()); })
      .def_property_readonly("data_format", [](const ConvLSTM2D&) { return "channels_last"; })
      .def_property_readonly("dilation_rate", [](const ConvLSTM2D& l) { return tuple2(l.dilation_rate()); })
      .def_property_readonly("activation",
                             [](const ConvLSTM2D& l) { return activation_function(l.activation()); })
      .def_property_readonly("recurrent_activation", [](const ConvLSTM2D& l) {
        return activation_function(l.recurrent_activation());
      })
      .def_property_readonly("use_bias", [](const ConvLSTM2D& l) { return l.options().use_bias; })
      .def_property_readonly("unit_forget_bias",
                             [](const ConvLSTM2D& l) { return l.options().unit_forget_bias; })
      .def_property_readonly("dropout", [](const ConvLSTM2D& l) { return l.options().dropout; })
      .def_property_readonly("recurrent_dropout",
                             [](const ConvLSTM2D& l) { return l.options().recurrent_dropout; })
      .def_property_readonly("return_sequences",
                             [](const ConvLSTM2D& l) { return l.options().return_sequences; })
      .def_property_readonly("return_state", [](const ConvLSTM2D&) { return false; })
      .def_property_readonly("go_backwards", [](const ConvLSTM2D& l) { return l.options().go_backwards; })
      .def_property_readonly("stateful", [](const ConvLSTM2D&) { return false; })
      .def_property_readonly("seed", [](const ConvLSTM2D& l) {
        return l.options().seed ? py::object(py::int_(*l.options().seed)) : py::object(py::none());
      })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("ConvLSTM2D", py_to_json(c)); });
}

}  // namespace signcore::bindings
