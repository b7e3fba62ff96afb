// Python bindings of the convolution layers: Conv2D, Conv3D and ZeroPadding2D. Constructors take Keras's
// Python signatures (argument handling shared with layers.cpp through layer_args.hpp).
#include <algorithm>
#include <chrono>
#include <ctime>
#include <memory>
#include <random>
#include <utility>
#include <string>
#include <type_traits>
#include <vector>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/conv2d.hpp"
#include "signcore/layers/padding.hpp"
#include "signcore/parameters.hpp"
#include "signcore/random.hpp"

namespace signcore::bindings {

namespace {

template <class A>
py::tuple tuple2(const A& a) {
  return py::make_tuple(a[0], a[1]);
}

// ZeroPadding2D's padding: an int, (symmetric_height, symmetric_width) or
// ((top, bottom), (left, right)); every entry a non-negative integer.
std::array<std::array<long long, 2>, 2> zero_padding_arg(const py::handle& obj) {
  const char* cls = "ZeroPadding2D";
  auto bad = [&]() {
    fail<ValueError>("ZeroPadding2D: `padding` should be either an int >= 0, a tuple of 2 ints "
                     "(symmetric_height_pad, symmetric_width_pad), or a tuple of 2 tuples of 2 ints "
                     "((top_pad, bottom_pad), (left_pad, right_pad)). Received: padding=",
                     repr_of(obj));
  };
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj)) {
    if (py::isinstance<py::bool_>(obj) || !(py::isinstance<py::int_>(obj) || py::hasattr(obj, "__index__")))
      bad();
    const long long k = int_arg(obj, "padding", cls);
    if (k < 0) bad();
    return {{{k, k}, {k, k}}};
  }
  auto seq = obj.cast<py::sequence>();
  if (py::len(seq) != 2) bad();
  std::array<std::array<long long, 2>, 2> p{};
  for (std::size_t a = 0; a < 2; ++a) {
    const char* name = a == 0 ? "1st entry of padding" : "2nd entry of padding";
    const auto v = int_tuple_arg(seq[a], 2, name, cls, /*allow_zero=*/true);
    p[a] = {v[0], v[1]};
  }
  return p;
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Times one layer in C++ alone (no NumPy copies): builds it for `input_shape` (per sample), fills
// x and dy with normal noise, then runs `iters` steps of forward (training mode) and, if
// `backward`, backward with dx requested or not. Returns the wall-clock seconds of each step and
// the CPU seconds of the calling thread (all the work when one thread is configured).
std::pair<std::vector<double>, std::vector<double>> benchmark_layer(const LayerPtr& layer, const Shape& input_shape,
                                    std::size_t batch, std::size_t iters, bool backward,
                                    bool need_dx) {
  Parameters params;
  const Shape out = layer->build_in({input_shape}, params);
  params.allocate();
  Rng rng(1234);
  std::normal_distribution<float> normal(0.f, 1.f);
  Tensor x = Tensor::from_shape(with_batch(batch, input_shape));
  for (auto& v : x) v = normal(rng);
  Tensor dy = Tensor::from_shape(with_batch(batch, out));
  for (auto& v : dy) v = normal(rng);
  Tensor y, dx;
  Context ctx;
  ctx.training = true;
  ctx.rng = &rng;
  std::vector<double> times, cpu;
  for (std::size_t i = 0; i < iters; ++i) {
    const double c0 = thread_cpu_seconds();
    const auto t0 = std::chrono::steady_clock::now();
    layer->forward({&x}, y, ctx);
    if (backward) {
      params.zero_grads();
      layer->backward(dy, {need_dx ? &dx : nullptr});
    }
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(thread_cpu_seconds() - c0);
  }
  layer->reset_build();
  return {times, cpu};
}

py::tuple size_tuple(const std::vector<std::size_t>& v) {
  py::tuple t(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) t[i] = v[i];
  return t;
}

py::tuple ones(std::size_t rank) { return rank == 3 ? py::tuple(py::make_tuple(1, 1, 1)) : py::tuple(py::make_tuple(1, 1)); }

// The checked integers as the layer's constructor takes them: Conv2D::Pair or Conv3D::Triple.
template <class L>
auto sizes(const std::vector<long long>& v) {
  if constexpr (std::is_same_v<L, Conv3D>) {
    return Conv3D::Triple{v[0], v[1], v[2]};
  } else {
    return Conv2D::Pair{v[0], v[1]};
  }
}

// Conv2D and Conv3D share one constructor signature (Keras 3's), with `rank` values per tuple.
template <class L>
void bind_convolution(py::module_& m, const char* cls, std::size_t rank, const char* doc) {
  py::class_<L, Layer, std::shared_ptr<L>>(m, cls, doc)
      .def(py::init([cls, rank](const py::object& filters, const py::object& kernel_size,
                       const py::object& strides, const py::object& padding,
                       const py::object& data_format, const py::object& dilation_rate,
                       const py::object& groups, const py::object& activation, bool use_bias,
                       const py::object& kernel_initializer, const py::object& bias_initializer,
                       const py::object& kernel_regularizer, const py::object& bias_regularizer,
                       const py::object& activity_regularizer, const py::object& kernel_constraint,
                       const py::object& bias_constraint, const py::object& name,
                       const py::object& trainable, const py::object& input_shape,
                       const py::object& dtype, py::kwargs kwargs) {
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const long long f = int_arg(filters, "filters", cls);
             if (f <= 0)
               fail<ValueError>("Invalid value for argument `filters`. Expected a strictly positive "
                                "value. Received: filters=", f);
             const auto ks = int_tuple_arg(kernel_size, rank, "kernel_size", cls);
             const auto st = int_tuple_arg(strides, rank, "strides", cls);
             const std::string pad = padding_arg(padding, cls);
             data_format_arg(data_format, cls);
             const auto dil = int_tuple_arg(dilation_rate, rank, "dilation_rate", cls);
             const long long g = int_arg(groups, "groups", cls);
             const std::string act = activation_arg(activation, cls);
             const std::string ki = initializer_arg(kernel_initializer, "kernel_initializer", cls);
             const std::string bi = initializer_arg(bias_initializer, "bias_initializer", cls);
             unsupported_none(kernel_regularizer, "kernel_regularizer", cls);
             unsupported_none(bias_regularizer, "bias_regularizer", cls);
             unsupported_none(activity_regularizer, "activity_regularizer", cls);
             unsupported_none(kernel_constraint, "kernel_constraint", cls);
             unsupported_none(bias_constraint, "bias_constraint", cls);
             // The C++ constructor validates the rest before it takes an automatic name.
             return finish(std::make_shared<L>(f, sizes<L>(ks), sizes<L>(st), pad, "channels_last",
                                               sizes<L>(dil), g, act, use_bias, ki, bi, b.name),
                           b);
           }),
           py::arg("filters"), py::arg("kernel_size"), py::arg("strides") = ones(rank),
           py::arg("padding") = "valid", py::arg("data_format") = py::none(),
           py::arg("dilation_rate") = ones(rank), py::arg("groups") = 1,
           py::arg("activation") = py::none(), py::arg("use_bias") = true,
           py::arg("kernel_initializer") = "glorot_uniform", py::arg("bias_initializer") = "zeros",
           py::arg("kernel_regularizer") = py::none(), py::arg("bias_regularizer") = py::none(),
           py::arg("activity_regularizer") = py::none(), py::arg("kernel_constraint") = py::none(),
           py::arg("bias_constraint") = py::none(), py::kw_only(), py::arg("name") = py::none(),
           py::arg("trainable") = true, py::arg("input_shape") = py::none(),
           py::arg("dtype") = py::none())
      .def_property_readonly("filters", &L::filters)
      .def_property_readonly("kernel_size", [](const L& l) { return size_tuple(l.kernel_sizes()); })
      .def_property_readonly("strides", [](const L& l) { return size_tuple(l.stride_sizes()); })
      .def_property_readonly("padding", [](const L& l) { return conv_padding_name(l.padding()); })
      .def_property_readonly("data_format", [](const L&) { return "channels_last"; })
      .def_property_readonly("dilation_rate", [](const L& l) { return size_tuple(l.dilation_sizes()); })
      .def_property_readonly("groups", [](const L&) { return 1; })
      .def_property_readonly("use_bias", &L::use_bias)
      .def_property_readonly("activation", [](const L& l) { return activation_function(l.activation()); })
      .def_static("from_config", [cls](const py::dict& c) { return layer_from_config(cls, py_to_json(c)); });
}

}  // namespace

void bind_layers_conv(py::module_& m) {
  // ----- Conv2D / Conv3D -----------------------------------------------------------------------------------
  bind_convolution<Conv2D>(m, "Conv2D", 2, R"doc(
2D convolution layer: `output = activation(conv2d(inputs, kernel) + bias)`, over channels-last
images (the kernel is cross-correlated with the input, as in Keras).

Args:
    filters: Positive integer, the number of output channels.
    kernel_size: Integer or tuple of 2 integers, the (height, width) of the convolution window.
    strides: Integer or tuple of 2 integers, the stride along height and width. `strides > 1` is
        incompatible with `dilation_rate > 1`.
    padding: "valid" (no padding) or "same" (pad with zeros so that the output has
        ceil(input / stride) rows and columns; an odd padding pixel goes at the bottom / right).
        Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).
    dilation_rate: Integer or tuple of 2 integers, the dilation of the convolution window.
    groups: Must be 1 (grouped convolutions are not supported).
    activation: Activation name (e.g. "relu"). None means linear.
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer name for the kernel, shaped (kh, kw, in_channels, filters).
    bias_initializer: Initializer name for the bias vector, shaped (filters,).

Input shape: (batch_size, height, width, channels).
Output shape: (batch_size, new_height, new_width, filters), with new_height =
floor((height - dilated_kernel_height) / stride) + 1 for "valid", ceil(height / stride) for "same";
likewise for the width.
)doc");
  bind_convolution<Conv3D>(m, "Conv3D", 3, R"doc(
3D convolution layer (e.g. spatial convolution over volumes, or spatio-temporal convolution over
video): `output = activation(conv3d(inputs, kernel) + bias)`, channels last (the kernel is
cross-correlated with the input, as in Keras).

Args:
    filters: Positive integer, the number of output channels.
    kernel_size: Integer or tuple of 3 integers, the (depth, height, width) of the window.
    strides: Integer or tuple of 3 integers, the stride along depth, height and width.
        `strides > 1` is incompatible with `dilation_rate > 1`.
    padding: "valid" (no padding) or "same" (pad with zeros so that the output has
        ceil(input / stride) cells along each axis; an odd padding cell goes at the back / bottom /
        right). Case-insensitive.
    data_format: None or "channels_last" (signcore is channels-last throughout).
    dilation_rate: Integer or tuple of 3 integers, the dilation of the convolution window.
    groups: Must be 1 (grouped convolutions are not supported).
    activation: Activation name (e.g. "relu"). None means linear.
    use_bias: Whether the layer uses a bias vector.
    kernel_initializer: Initializer name for the kernel, shaped (kd, kh, kw, in_channels, filters).
    bias_initializer: Initializer name for the bias vector, shaped (filters,).

Computed as vol2col + one matrix product per chunk of the batch, with the bias and activation fused
(the same engine as Conv2D).

Input shape: (batch_size, depth, height, width, channels), e.g. (batch, frames, height, width,
channels) for video.
Output shape: (batch_size, new_depth, new_height, new_width, filters), with new_depth =
floor((depth - dilated_kernel_depth) / stride) + 1 for "valid", ceil(depth / stride) for "same";
likewise for the height and width.
)doc");

  // ----- ZeroPadding2D --------------------------------------------------------------------------------
  py::class_<ZeroPadding2D, Layer, std::shared_ptr<ZeroPadding2D>>(m, "ZeroPadding2D", R"doc(
Zero-padding layer for 2D input (e.g. pictures): adds rows and columns of zeros at the top, bottom,
left and right side of each image.

Args:
    padding: Int, tuple of 2 ints, or tuple of 2 tuples of 2 ints.
        - int: the same symmetric padding for height and width.
        - (symmetric_height_pad, symmetric_width_pad).
        - ((top_pad, bottom_pad), (left_pad, right_pad)).
    data_format: None or "channels_last".

Input shape: (batch_size, rows, cols, channels).
Output shape: (batch_size, top_pad + rows + bottom_pad, left_pad + cols + right_pad, channels).
)doc")
      .def(py::init([](const py::object& padding, const py::object& data_format,
                       const py::object& name, const py::object& trainable,
                       const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "ZeroPadding2D";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             const auto p = zero_padding_arg(padding);
             data_format_arg(data_format, cls);
             return finish(std::make_shared<ZeroPadding2D>(p, "channels_last", b.name), b);
           }),
           py::arg("padding") = py::make_tuple(1, 1), py::arg("data_format") = py::none(),
           py::kw_only(), py::arg("name") = py::none(), py::arg("trainable") = true,
           py::arg("input_shape") = py::none(), py::arg("dtype") = py::none())
      .def_property_readonly("padding",
                             [](const ZeroPadding2D& l) {
                               const auto& p = l.padding();
                               return py::make_tuple(tuple2(p[0]), tuple2(p[1]));
                             })
      .def_property_readonly("data_format", [](const ZeroPadding2D&) { return "channels_last"; })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("ZeroPadding2D", py_to_json(c)); });

  // ----- tuning ---------------------------------------------------------------------------------------
  m.def("_conv_chunk_bytes", [] { return Conv2D::chunk_bytes(); },
        "Bytes of the im2col column buffer per chunk (process-wide).");
  m.def("_set_conv_chunk_bytes", [](std::size_t bytes) { Conv2D::set_chunk_bytes(bytes); },
        py::arg("bytes"), "Set the im2col chunk size in bytes (benchmarks and tuning).");
  m.def("_conv_pipelined", [] { return Conv2D::pipelined(); },
        "Whether Conv2D runs whole chunks per thread (see conv2d.cpp).");
  m.def("_set_conv_pipelined", [](bool on) { Conv2D::set_pipelined(on); }, py::arg("on"),
        "Switch Conv2D's pipelined threading on or off (process-wide; benchmarks and tuning).");
  m.def("_conv_direct", [] { return Conv2D::direct(); },
        "Whether Conv2D / Conv3D forward passes use the direct kernel where it applies.");
  m.def("_set_conv_direct", [](bool on) { Conv2D::set_direct(on); }, py::arg("on"),
        "Switch the direct forward convolution on or off (process-wide; benchmarks and tests).");
  m.def("_conv_direct_input_gradient", [] { return Conv2D::direct_input_gradient_enabled(); },
        "Whether stride-1 convolutions with few filters compute the input gradient directly.");
  m.def("_set_conv_direct_input_gradient", [](bool on) { Conv2D::set_direct_input_gradient(on); },
        py::arg("on"), "Switch the direct input gradient on or off (process-wide; benchmarks and tests).");
  m.def("_conv_direct_kernel_gradient", [] { return Conv2D::direct_kernel_gradient_enabled(); },
        "Whether convolutions compute the kernel gradient directly where the direct kernel applies.");
  m.def("_set_conv_direct_kernel_gradient", [](bool on) { Conv2D::set_direct_kernel_gradient(on); },
        py::arg("on"), "Switch the direct kernel gradient on or off (process-wide; benchmarks and tests).");
  m.def("_conv_winograd", [] { return Conv2D::winograd_enabled(); },
        "Whether 3x3 stride-1 convolutions run their forward pass as Winograd F(2x2, 3x3).");
  m.def("_set_conv_winograd", [](bool on) { Conv2D::set_winograd(on); }, py::arg("on"),
        "Switch the Winograd forward on or off (process-wide; benchmarks and tests).");
  m.def("_benchmark_layer",
        [](const LayerPtr& layer, const std::vector<std::size_t>& input_shape, std::size_t batch,
           std::size_t iters, bool backward, bool need_dx) {
          py::gil_scoped_release release;
          return benchmark_layer(layer, Shape(input_shape.begin(), input_shape.end()), batch, iters,
                                 backward, need_dx);
        },
        py::arg("layer"), py::arg("input_shape"), py::arg("batch"), py::arg("iters"),
        py::arg("backward") = true, py::arg("need_dx") = true,
        "(wall seconds, calling-thread CPU seconds) per step of forward (+ backward) of a fresh layer,\n"
        "timed in C++ without NumPy copies (benchmarks).");
}

}  // namespace signcore::bindings
