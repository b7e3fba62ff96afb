// Keyword-argument handling shared by the layer binding files (layers.cpp, layers_conv.cpp, ...):
// Keras's base-layer keywords (name, trainable, input_shape/input_dim, dtype), the error for unknown
// keywords, and the conversions of activation, initializer, integer, tuple, padding and data_format
// arguments. Every error names the value received. Include it from binding files only.
#pragma once

#include <cctype>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "signcore/activations.hpp"
#include "signcore/errors.hpp"
#include "signcore/tensor.hpp"

namespace signcore::bindings {

// Raised for unknown keyword arguments. Keras 3 raises ValueError there and Python convention is
// TypeError; this type is both, so either `except` catches it.
inline PyObject* unrecognized_kwargs_error = nullptr;

inline std::string repr_of(const py::handle& o) { return py::repr(o).cast<std::string>(); }

// ----- argument normalisation --------------------------------------------------------------------

// The keywords every layer takes (Keras's base Layer), checked before the layer is created so a
// rejected call does not use up an automatic name.
struct BaseArgs {
  std::string name;
  bool trainable = true;
  std::optional<Shape> input_shape;
};

inline Shape positive_shape(const py::handle& obj, const char* arg, const char* cls) {
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
    fail<TypeError>(cls, ": `", arg, "` must be a tuple of positive integers. Received: ", arg, "=",
                    repr_of(obj));
  Shape s;
  for (auto d : obj.cast<py::sequence>()) {
    if (!py::isinstance<py::int_>(d) || py::isinstance<py::bool_>(d) || d.cast<long long>() <= 0)
      fail<ValueError>(cls, ": `", arg, "` must hold positive integers (no batch axis, no None). "
                       "Received: ", arg, "=", repr_of(obj));
    s.push_back(d.cast<std::size_t>());
  }
  return s;
}

inline BaseArgs base_args(const char* cls, const py::object& name, const py::object& trainable,
                   const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
  BaseArgs b;
  py::object shape_arg = input_shape;
  if (kwargs.contains("input_dim")) {  // Keras's Dense(32, input_dim=784)
    py::object dim = kwargs["input_dim"];
    PyDict_DelItemString(kwargs.ptr(), "input_dim");
    if (!dim.is_none()) shape_arg = py::make_tuple(dim);
  }
  if (py::len(kwargs) > 0) {
    const std::string msg = std::string("Unrecognized keyword arguments passed to ") + cls + ": " +
                            repr_of(kwargs);
    PyErr_SetString(unrecognized_kwargs_error, msg.c_str());
    throw py::error_already_set();
  }
  if (!dtype.is_none()) {
    std::string d = py::str(py::hasattr(dtype, "name") ? dtype.attr("name") : dtype);
    if (d != "float32")
      fail<ValueError>(cls, ": signcore computes in float32 only. Received: dtype=", repr_of(dtype));
  }
  if (!name.is_none()) {
    if (!py::isinstance<py::str>(name))
      fail<TypeError>(cls, ": `name` must be a string. Received: name=", repr_of(name));
    b.name = name.cast<std::string>();
  }
  b.trainable = py::bool_(trainable);
  if (!shape_arg.is_none()) b.input_shape = positive_shape(shape_arg, "input_shape", cls);
  return b;
}

template <class L>
std::shared_ptr<L> finish(std::shared_ptr<L> layer, const BaseArgs& b) {
  if (!b.trainable) layer->set_trainable(false);
  layer->input_shape_hint = b.input_shape;
  return layer;
}

// None -> "linear"; a string (validated by the layer); or one of signcore.activations' functions.
inline std::string activation_arg(const py::handle& obj, const char* cls) {
  if (obj.is_none()) return "linear";
  if (py::isinstance<py::str>(obj)) {
    const std::string s = obj.cast<std::string>();
    return s.empty() ? "linear" : s;
  }
  if (py::hasattr(obj, "_signcore_name")) return obj.attr("_signcore_name").cast<std::string>();
  fail<ValueError>(cls, ": `activation` must be None or the name of an activation (e.g. \"relu\"); "
                   "Python functions cannot run inside signcore's C++ layers. Received: activation=",
                   repr_of(obj));
}

inline std::string initializer_arg(const py::handle& obj, const char* arg, const char* cls) {
  if (py::isinstance<py::str>(obj)) return obj.cast<std::string>();
  if (py::hasattr(obj, "_signcore_name")) {
    if (py::hasattr(obj, "seed") && !obj.attr("seed").is_none())
      fail<ValueError>(cls, ": seeded initializer objects are not supported in layers; use "
                       "signcore.utils.set_random_seed instead. Received: ", arg, "=", repr_of(obj));
    return obj.attr("_signcore_name").cast<std::string>();
  }
  fail<ValueError>(cls, ": `", arg, "` must be the name of an initializer (e.g. \"glorot_uniform\"). "
                   "Received: ", arg, "=", repr_of(obj));
}

// Keras converts integral floats; anything else is an error naming the value.
inline long long int_arg(const py::handle& obj, const char* arg, const char* cls) {
  if (py::isinstance<py::bool_>(obj))
    fail<ValueError>(cls, ": `", arg, "` must be an integer. Received: ", arg, "=", repr_of(obj));
  if (py::isinstance<py::int_>(obj) || py::hasattr(obj, "__index__"))  // int, NumPy integers
    return py::int_(py::reinterpret_borrow<py::object>(obj)).cast<long long>();
  if (py::isinstance<py::float_>(obj)) {
    const double v = obj.cast<double>();
    if (v == static_cast<double>(static_cast<long long>(v))) return static_cast<long long>(v);
  }
  fail<ValueError>(cls, ": `", arg, "` must be an integer. Received: ", arg, "=", repr_of(obj));
}

inline void unsupported_none(const py::handle& obj, const char* arg, const char* cls) {
  if (!obj.is_none())
    fail<ValueError>(cls, ": signcore does not support `", arg, "` yet; leave it None. Received: ",
                     arg, "=", repr_of(obj));
}

inline py::tuple keras_shape(const Shape& s) {  // (None, d1, ..., dk)
  py::list l;
  l.append(py::none());
  for (auto d : s) l.append(d);
  return py::tuple(l);
}

inline py::tuple plain_shape(const Shape& s) {
  py::list l;
  for (auto d : s) l.append(d);
  return py::tuple(l);
}

inline py::object activation_function(ActivationKind kind) {
  return py::module_::import("signcore.activations").attr("get")(activation_name(kind));
}

// Keras's standardize_tuple: an int, or a sequence of exactly `n` integers, each > 0 (>= 0 with
// allow_zero). ValueError naming the argument and the value otherwise.
inline std::vector<long long> int_tuple_arg(const py::handle& obj, std::size_t n, const char* arg,
                                            const char* cls, bool allow_zero = false) {
  std::vector<long long> v;
  const auto bad = [&]() {
    fail<ValueError>(cls, ": the `", arg, "` argument must be a tuple of ", n, " integers",
                     allow_zero ? " >= 0" : " > 0", ". Received: ", arg, "=", repr_of(obj));
  };
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
    auto seq = obj.cast<py::sequence>();
    if (py::len(seq) != n) bad();
    for (auto d : seq) {
      if (py::isinstance<py::bool_>(d) || !(py::isinstance<py::int_>(d) || py::hasattr(d, "__index__")))
        bad();
      v.push_back(py::int_(py::reinterpret_borrow<py::object>(d)).cast<long long>());
    }
  } else if (!py::isinstance<py::bool_>(obj) &&
             (py::isinstance<py::int_>(obj) || py::hasattr(obj, "__index__"))) {
    v.assign(n, py::int_(py::reinterpret_borrow<py::object>(obj)).cast<long long>());
  } else {
    bad();
  }
  for (long long d : v)
    if (d < 0 || (d == 0 && !allow_zero)) bad();
  return v;
}

// Keras's standardize_padding for the convolution and pooling layers: "valid" or "same",
// case-insensitive; returned lower-case.
inline std::string padding_arg(const py::handle& obj, const char* cls) {
  if (py::isinstance<py::str>(obj)) {
    std::string s = obj.cast<std::string>();
    for (auto& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (s == "valid" || s == "same") return s;
  }
  fail<ValueError>(cls, ": the `padding` argument must be one of \"valid\", \"same\". Received: "
                   "padding=", repr_of(obj));
}

// None or "channels_last" (signcore is channels-last throughout); anything else is a ValueError.
inline void data_format_arg(const py::handle& obj, const char* cls) {
  if (obj.is_none()) return;
  if (py::isinstance<py::str>(obj) && obj.cast<std::string>() == "channels_last") return;
  fail<ValueError>(cls, ": signcore supports data_format=\"channels_last\" only (inputs shaped "
                   "(batch, height, width, channels)). Received: data_format=", repr_of(obj));
}

}  // namespace signcore::bindings
