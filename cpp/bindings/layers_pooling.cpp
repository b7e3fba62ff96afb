// Python bindings of the pooling layers (MaxPooling2D/3D, AveragePooling2D/3D,
// GlobalAveragePooling2D/3D, GlobalMaxPooling2D/3D), BatchNormalization and SpatialDropout2D. Constructors take Keras's Python
// signatures (argument handling shared through layer_args.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/batch_norm.hpp"
#include "signcore/layers/dropout.hpp"
#include "signcore/layers/pooling.hpp"
#include "signcore/parameters.hpp"
#include "signcore/random.hpp"

namespace signcore::bindings {

namespace {

// A real number (int, float or anything with __float__), not a bool.
double float_arg(const py::handle& obj, const char* arg, const char* cls) {
  if (!py::isinstance<py::bool_>(obj) &&
      (py::isinstance<py::int_>(obj) || py::isinstance<py::float_>(obj) || py::hasattr(obj, "__float__")))
    return py::float_(py::reinterpret_borrow<py::object>(obj)).cast<double>();
  fail<ValueError>(cls, ": `", arg, "` must be a float. Received: ", arg, "=", repr_of(obj));
}

// pool_size / strides: an int or a tuple of `rank` positive ints; strides None means pool_size.
std::vector<long long> pool_tuple(const py::handle& obj, std::size_t rank, const char* arg, const char* cls) {
  if (obj.is_none()) return {};
  return int_tuple_arg(obj, rank, arg, cls);
}

py::tuple size_tuple(const std::vector<std::size_t>& v) {
  py::tuple t(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) t[i] = v[i];
  return t;
}

std::string data_format_str(const py::handle& obj, const char* cls) {
  data_format_arg(obj, cls);
  return "channels_last";
}

// The windowed poolings (2-D and 3-D) share one constructor signature.
template <class L>
void bind_pooling(py::module_& m, const char* cls, std::size_t rank, const char* doc) {
  py::class_<L, Layer, std::shared_ptr<L>>(m, cls, doc)
      .def(py::init([cls, rank](const py::object& pool_size, const py::object& strides, const py::object& padding,
                          const py::object& data_format, const py::object& name, const py::object& trainable,
                          const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const auto ps = pool_tuple(pool_size, rank, "pool_size", cls);
             if (ps.empty())
               fail<ValueError>(cls, ": the `pool_size` argument must be a tuple of ", rank,
                                " integers > 0. Received: pool_size=None");
             const auto st = pool_tuple(strides, rank, "strides", cls);
             const std::string pad = padding_arg(padding, cls);
             const std::string fmt = data_format_str(data_format, cls);
             return finish(std::make_shared<L>(ps, st, pad, fmt, b.name), b);
           }),
           py::arg("pool_size") = rank == 3 ? py::tuple(py::make_tuple(2, 2, 2)) : py::tuple(py::make_tuple(2, 2)),
           py::arg("strides") = py::none(),
           py::arg("padding") = "valid", py::arg("data_format") = py::none(), py::kw_only(),
           py::arg("name") = py::none(), py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("pool_size", [](const L& l) { return size_tuple(l.pool_size()); })
      .def_property_readonly("strides", [](const L& l) { return size_tuple(l.strides()); })
      .def_property_readonly("padding", [](const L& l) { return l.padding(); })
      .def_property_readonly("data_format", [](const L&) { return "channels_last"; })
      .def_static("from_config", [cls](const py::dict& c) { return layer_from_config(cls, py_to_json(c)); });
}

template <class L>
void bind_global_pooling(py::module_& m, const char* cls, const char* doc) {
  py::class_<L, Layer, std::shared_ptr<L>>(m, cls, doc)
      .def(py::init([cls](const py::object& data_format, const py::object& keepdims, const py::object& name,
                          const py::object& trainable, const py::object& input_shape,
                          const py::object& dtype, py::kwargs kwargs) {
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const std::string fmt = data_format_str(data_format, cls);
             if (!py::isinstance<py::bool_>(keepdims) && !py::isinstance<py::int_>(keepdims))
               fail<ValueError>(cls, ": `keepdims` must be a bool. Received: keepdims=", repr_of(keepdims));
             return finish(std::make_shared<L>(fmt, py::bool_(keepdims).cast<bool>(), b.name), b);
           }),
           py::arg("data_format") = py::none(), py::arg("keepdims") = false, py::kw_only(),
           py::arg("name") = py::none(), py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("keepdims", &L::keepdims)
      .def_property_readonly("data_format", [](const L&) { return "channels_last"; })
      .def_static("from_config", [cls](const py::dict& c) { return layer_from_config(cls, py_to_json(c)); });
}

// Median seconds of `repeats` timed forward and backward calls of a fresh layer on x (N, ...),
// measured in C++ with the GIL released, so no NumPy conversion or copy is counted. For
// benchmarks/bench_pool_bn.py.
py::tuple bench_layer(const LayerPtr& layer, const FloatArray& x_arr, const FloatArray& dy_arr,
                      bool training, int repeats) {
  if (layer->built())
    fail<ValueError>("_bench_layer needs a layer that is not part of a model. Received: '", layer->name(), "'");
  if (repeats < 1) fail<ValueError>("_bench_layer: repeats must be at least 1. Received: ", repeats);
  Tensor x = to_tensor(x_arr), dy = to_tensor(dy_arr);
  const Shape xs = shape_of(x);
  if (xs.size() < 2) fail<ValueError>("_bench_layer: x needs a batch axis. Received: shape=", shape_str(xs, false));
  Parameters params;
  const Shape out = layer->build_in({Shape(xs.begin() + 1, xs.end())}, params);
  params.allocate();
  if (shape_of(dy) != with_batch(xs[0], out)) {
    layer->reset_build();
    fail<ValueError>("_bench_layer: dy must have shape ", shape_str(with_batch(xs[0], out), false),
                     ". Received: shape=", shape_str(shape_of(dy), false));
  }
  std::vector<double> tf, tb;
  try {
    py::gil_scoped_release release;
    Rng rng(0);
    Context ctx;
    ctx.training = training;
    ctx.rng = &rng;
    Tensor y, dx;
    std::vector<Tensor*> dinputs{&dx};
    using clock = std::chrono::steady_clock;
    for (int i = -2; i < repeats; ++i) {  // two untimed warm-up rounds
      const auto t0 = clock::now();
      layer->forward({&x}, y, ctx);
      const auto t1 = clock::now();
      params.zero_grads();
      const auto t2 = clock::now();
      layer->backward(dy, dinputs);
      const auto t3 = clock::now();
      if (i >= 0) {
        tf.push_back(std::chrono::duration<double>(t1 - t0).count());
        tb.push_back(std::chrono::duration<double>(t3 - t2).count());
      }
    }
  } catch (...) {
    layer->reset_build();  // the Parameters it points to are gone
    throw;
  }
  layer->reset_build();
  auto median = [](std::vector<double> v) {
    std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    return v[v.size() / 2];
  };
  return py::make_tuple(median(tf), median(tb));
}

}  // namespace

void bind_layers_pooling(py::module_& m) {
  // ----- MaxPooling2D / AveragePooling2D --------------------------------------------------------------
  bind_pooling<MaxPooling2D>(m, "MaxPooling2D", 2, R"doc(
Max pooling for 2D images: the maximum over a `pool_size` window, moved by `strides`.

Args:
    pool_size: Integer or tuple of 2 integers, the (height, width) of the window. Default (2, 2).
    strides: Integer, tuple of 2 integers, or None (= pool_size).
    padding: "valid" (no padding) or "same" (output ceil(input / stride); the padding, split with
        the extra row / column at the bottom / right, never wins the maximum). Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).

The gradient goes to the first maximum of each window (row by row, left to right) on ties.

Input shape: (batch_size, height, width, channels).
Output shape: (batch_size, pooled_height, pooled_width, channels), with pooled_height =
floor((height - pool_height) / stride) + 1 for "valid", ceil(height / stride) for "same".
)doc");
  bind_pooling<AveragePooling2D>(m, "AveragePooling2D", 2, R"doc(
Average pooling for 2D images: the mean over a `pool_size` window, moved by `strides`.

Args:
    pool_size: Integer or tuple of 2 integers, the (height, width) of the window. Default (2, 2).
    strides: Integer, tuple of 2 integers, or None (= pool_size).
    padding: "valid" (no padding) or "same" (output ceil(input / stride); windows that overlap the
        border average only their real cells, as TensorFlow/Keras). Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).

Input shape: (batch_size, height, width, channels).
Output shape: (batch_size, pooled_height, pooled_width, channels), as MaxPooling2D.
)doc");

  bind_pooling<MaxPooling3D>(m, "MaxPooling3D", 3, R"doc(
Max pooling for 3D data (spatial or spatio-temporal, e.g. video): the maximum over a `pool_size`
window, moved by `strides`.

Args:
    pool_size: Integer or tuple of 3 integers, the (depth, height, width) of the window.
        Default (2, 2, 2).
    strides: Integer, tuple of 3 integers, or None (= pool_size).
    padding: "valid" (no padding) or "same" (output ceil(input / stride); the padding, split with
        the extra plane / row / column at the back / bottom / right, never wins the maximum).
        Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).

The gradient goes to the first maximum of each window (plane by plane, row by row, left to right)
on ties.

Input shape: (batch_size, depth, height, width, channels), e.g. (batch, frames, height, width,
channels) for video.
Output shape: (batch_size, pooled_depth, pooled_height, pooled_width, channels), with pooled_depth
= floor((depth - pool_depth) / stride) + 1 for "valid", ceil(depth / stride) for "same"; likewise
for the height and width.

Example:
    >>> layer = MaxPooling3D(pool_size=(1, 2, 2))  # halve each frame, keep the frames
    >>> # (None, 20, 148, 148, 4) -> (None, 20, 74, 74, 4)
)doc");
  bind_pooling<AveragePooling3D>(m, "AveragePooling3D", 3, R"doc(
Average pooling for 3D data (spatial or spatio-temporal): the mean over a `pool_size` window, moved
by `strides`.

Args:
    pool_size: Integer or tuple of 3 integers, the (depth, height, width) of the window.
        Default (2, 2, 2).
    strides: Integer, tuple of 3 integers, or None (= pool_size).
    padding: "valid" (no padding) or "same" (output ceil(input / stride); windows that overlap the
        border average only their real cells, as TensorFlow/Keras). Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).

Input shape: (batch_size, depth, height, width, channels).
Output shape: (batch_size, pooled_depth, pooled_height, pooled_width, channels), as MaxPooling3D.
)doc");

  // ----- Global pooling -------------------------------------------------------------------------------
  bind_global_pooling<GlobalAveragePooling2D>(m, "GlobalAveragePooling2D", R"doc(
Global average pooling for 2D images: the mean of each channel over height and width.

Args:
    data_format: None or "channels_last" (signcore is channels-last throughout).
    keepdims: If True the spatial axes are kept with size 1.

Input shape: (batch_size, height, width, channels).
Output shape: (batch_size, channels), or (batch_size, 1, 1, channels) with keepdims=True.
)doc");
  bind_global_pooling<GlobalMaxPooling2D>(m, "GlobalMaxPooling2D", R"doc(
Global max pooling for 2D images: the maximum of each channel over height and width (the gradient
goes to the first maximum on ties).

Args:
    data_format: None or "channels_last" (signcore is channels-last throughout).
    keepdims: If True the spatial axes are kept with size 1.

Input shape: (batch_size, height, width, channels).
Output shape: (batch_size, channels), or (batch_size, 1, 1, channels) with keepdims=True.
)doc");

  bind_global_pooling<GlobalAveragePooling3D>(m, "GlobalAveragePooling3D", R"doc(
Global average pooling for 3D data: the mean of each channel over depth, height and width.

Args:
    data_format: None or "channels_last" (signcore is channels-last throughout).
    keepdims: If True the spatial axes are kept with size 1.

Input shape: (batch_size, depth, height, width, channels).
Output shape: (batch_size, channels), or (batch_size, 1, 1, 1, channels) with keepdims=True.
)doc");
  bind_global_pooling<GlobalMaxPooling3D>(m, "GlobalMaxPooling3D", R"doc(
Global max pooling for 3D data: the maximum of each channel over depth, height and width (the
gradient goes to the first maximum on ties).

Args:
    data_format: None or "channels_last" (signcore is channels-last throughout).
    keepdims: If True the spatial axes are kept with size 1.

Input shape: (batch_size, depth, height, width, channels).
Output shape: (batch_size, channels), or (batch_size, 1, 1, 1, channels) with keepdims=True.
)doc");

  // ----- BatchNormalization ---------------------------------------------------------------------------
  py::class_<BatchNormalization, Layer, std::shared_ptr<BatchNormalization>>(m, "BatchNormalization", R"doc(
Normalises its inputs over every axis but the last (channel) one, then scales and shifts:
`gamma * (x - mean) / sqrt(var + epsilon) + beta`.

During training (`fit`, `train_on_batch`) it uses the mean and the (biased) variance of the current
batch and updates the moving statistics: `moving = moving * momentum + batch * (1 - momentum)`. At
inference (`predict`, `evaluate`), and always when the layer is frozen (`trainable = False`, as in
Keras 3), it uses the moving statistics instead.

Args:
    axis: The channel axis; signcore normalises the last axis only (-1, the default).
    momentum: Momentum of the moving average.
    epsilon: Small float added to the variance to avoid dividing by zero.
    center: If True, add the learned offset `beta`.
    scale: If True, multiply by the learned `gamma`.
    beta_initializer, gamma_initializer, moving_mean_initializer, moving_variance_initializer:
        Initializer names.

Weights, in order: gamma (if scale), beta (if center), moving_mean, moving_variance, each of shape
(channels,); the last two are non-trainable.

Input shape: arbitrary, channels last, e.g. (batch_size, features) or (batch_size, height, width,
channels). Output shape: same as the input.
)doc")
      .def(py::init([](const py::object& axis, const py::object& momentum, const py::object& epsilon,
                       bool center, bool scale, const py::object& beta_initializer,
                       const py::object& gamma_initializer, const py::object& moving_mean_initializer,
                       const py::object& moving_variance_initializer, const py::object& beta_regularizer,
                       const py::object& gamma_regularizer, const py::object& beta_constraint,
                       const py::object& gamma_constraint, const py::object& synchronized,
                       const py::object& name, const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "BatchNormalization";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const long long ax = int_arg(axis, "axis", cls);
             const double mom = float_arg(momentum, "momentum", cls);
             const double eps = float_arg(epsilon, "epsilon", cls);
             const std::string bi = initializer_arg(beta_initializer, "beta_initializer", cls);
             const std::string gi = initializer_arg(gamma_initializer, "gamma_initializer", cls);
             const std::string mi = initializer_arg(moving_mean_initializer, "moving_mean_initializer", cls);
             const std::string vi =
                 initializer_arg(moving_variance_initializer, "moving_variance_initializer", cls);
             unsupported_none(beta_regularizer, "beta_regularizer", cls);
             unsupported_none(gamma_regularizer, "gamma_regularizer", cls);
             unsupported_none(beta_constraint, "beta_constraint", cls);
             unsupported_none(gamma_constraint, "gamma_constraint", cls);
             if (py::bool_(synchronized))
               fail<ValueError>(cls, ": synchronized=True is for multi-device training, which signcore "
                                "does not do. Received: synchronized=", repr_of(synchronized));
             // The C++ constructor validates the rest before it takes an automatic name.
             return finish(std::make_shared<BatchNormalization>(ax, mom, eps, center, scale, bi, gi, mi, vi,
                                                                b.name),
                           b);
           }),
           py::arg("axis") = -1, py::arg("momentum") = 0.99, py::arg("epsilon") = 1e-3,
           py::arg("center") = true, py::arg("scale") = true, py::arg("beta_initializer") = "zeros",
           py::arg("gamma_initializer") = "ones", py::arg("moving_mean_initializer") = "zeros",
           py::arg("moving_variance_initializer") = "ones", py::arg("beta_regularizer") = py::none(),
           py::arg("gamma_regularizer") = py::none(), py::arg("beta_constraint") = py::none(),
           py::arg("gamma_constraint") = py::none(), py::arg("synchronized") = false, py::kw_only(),
           py::arg("name") = py::none(), py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("axis", &BatchNormalization::axis)
      .def_property_readonly("momentum", &BatchNormalization::momentum)
      .def_property_readonly("epsilon", &BatchNormalization::epsilon)
      .def_property_readonly("center", &BatchNormalization::center)
      .def_property_readonly("scale", &BatchNormalization::scale)
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("BatchNormalization", py_to_json(c)); });

  // ----- SpatialDropout2D -----------------------------------------------------------------------------
  py::class_<SpatialDropout2D, Dropout, std::shared_ptr<SpatialDropout2D>>(m, "SpatialDropout2D", R"doc(
Spatial 2D dropout: during training whole feature maps (one channel of one sample) are set to 0
with probability `rate`, and the others are scaled by 1 / (1 - rate). At inference it does nothing.
Use it after convolutions, whose neighbouring pixels are strongly correlated.

Args:
    rate: Float in [0, 1). Fraction of the channels to drop.
    data_format: None or "channels_last" (signcore is channels-last throughout).
    seed: Optional integer; the layer then draws its masks from its own random engine.

Input shape: (batch_size, height, width, channels). Output shape: same as the input.
)doc")
      .def(py::init([](const py::object& rate, const py::object& data_format, const py::object& seed,
                       const py::object& name, const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "SpatialDropout2D";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             if (py::isinstance<py::bool_>(rate) ||
                 !(py::isinstance<py::int_>(rate) || py::isinstance<py::float_>(rate) ||
                   py::hasattr(rate, "__float__")))
               fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in "
                                "[0, 1). Received: rate=", repr_of(rate));
             const double r = py::float_(rate).cast<double>();
             if (!(r >= 0.0 && r < 1.0))
               fail<ValueError>("Invalid value received for argument `rate`. Expected a float value in "
                                "[0, 1). Received: rate=", repr_of(rate));
             const std::string fmt = data_format_str(data_format, cls);
             std::optional<std::uint64_t> sd;
             if (!seed.is_none()) {
               const long long s = int_arg(seed, "seed", cls);
               if (s < 0)
                 fail<ValueError>(cls, ": `seed` must be a non-negative integer. Received: seed=", s);
               sd = static_cast<std::uint64_t>(s);
             }
             return finish(std::make_shared<SpatialDropout2D>(r, fmt, sd, b.name), b);
           }),
           py::arg("rate"), py::arg("data_format") = py::none(), py::arg("seed") = py::none(), py::kw_only(),
           py::arg("name") = py::none(), py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("data_format", [](const SpatialDropout2D&) { return "channels_last"; })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("SpatialDropout2D", py_to_json(c)); });

  m.def("_bench_layer", &bench_layer, py::arg("layer"), py::arg("x"), py::arg("dy"),
        py::arg("training") = true, py::arg("repeats") = 10,
        "(forward, backward) median seconds of a fresh layer on x, timed in C++ (benchmarks only).");
}

}  // namespace signcore::bindings
