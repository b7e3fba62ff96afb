// Conversions shared by all binding files, exception translation, threads, seeds and build config.
#include <cblas.h>
#include <opencv2/core/version.hpp>

#include <chrono>
#include <random>
#include <vector>

#include "bindings.hpp"
#include "signcore/errors.hpp"
#include "signcore/layers/layer.hpp"
#include "signcore/parallel.hpp"
#include "signcore/random.hpp"

namespace signcore::bindings {

ArrayView view_of(const FloatArray& a) {
  ArrayView v;
  v.data = a.data();
  v.shape.assign(a.shape(), a.shape() + a.ndim());
  return v;
}

py::array to_numpy(Tensor&& t) {
  auto* owner = new Tensor(std::move(t));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<Tensor*>(p); });
  std::vector<py::ssize_t> shape(owner->shape().begin(), owner->shape().end());
  return py::array_t<float>(shape, owner->data(), free_when_done);
}

Tensor to_tensor(const FloatArray& a) {
  Shape s(a.shape(), a.shape() + a.ndim());
  Tensor t = Tensor::from_shape(s);
  std::copy(a.data(), a.data() + a.size(), t.data());
  return t;
}

py::object json_to_py(const nlohmann::json& j) {
  switch (j.type()) {
    case nlohmann::json::value_t::null: return py::none();
    case nlohmann::json::value_t::boolean: return py::bool_(j.get<bool>());
    case nlohmann::json::value_t::number_integer: return py::int_(j.get<long long>());
    case nlohmann::json::value_t::number_unsigned: return py::int_(j.get<unsigned long long>());
    case nlohmann::json::value_t::number_float: return py::float_(j.get<double>());
    case nlohmann::json::value_t::string: return py::str(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      py::list l;
      for (const auto& e : j) l.append(json_to_py(e));
      return std::move(l);
    }
    case nlohmann::json::value_t::object: {
      py::dict d;
      for (auto it = j.begin(); it != j.end(); ++it) d[py::str(it.key())] = json_to_py(it.value());
      return std::move(d);
    }
    default: return py::none();
  }
}

nlohmann::json py_to_json(const py::handle& o) {
  if (o.is_none()) return nullptr;
  if (py::isinstance<py::bool_>(o)) return o.cast<bool>();
  if (py::isinstance<py::int_>(o)) return o.cast<long long>();
  if (py::isinstance<py::float_>(o)) return o.cast<double>();
  if (py::isinstance<py::str>(o)) return o.cast<std::string>();
  if (py::isinstance<py::dict>(o)) {
    nlohmann::json j = nlohmann::json::object();
    for (auto item : o.cast<py::dict>()) j[py::str(item.first).cast<std::string>()] = py_to_json(item.second);
    return j;
  }
  if (py::isinstance<py::list>(o) || py::isinstance<py::tuple>(o)) {
    nlohmann::json j = nlohmann::json::array();
    for (auto e : o) j.push_back(py_to_json(e));
    return j;
  }
  if (py::hasattr(o, "__float__")) return o.cast<double>();
  throw TypeError("cannot convert " + py::repr(o).cast<std::string>() + " to a configuration value");
}

void bind_utils(py::module_& m) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const ValueError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    } catch (const TypeError& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const IOError& e) {
      PyErr_SetString(PyExc_OSError, e.what());
    } catch (const StateError& e) {
      PyErr_SetString(PyExc_RuntimeError, e.what());
    }
  });

  m.attr("__version__") = SIGNCORE_VERSION;
  m.def("set_num_threads", &set_num_threads, py::arg("n"),
        "Set the threads used by OpenBLAS and signcore's own loops together.");
  m.def("get_num_threads", &get_num_threads);
  m.def("set_random_seed", [](std::uint64_t s) { set_random_seed(s); }, py::arg("seed"));
  m.def("unique_name", &unique_name, py::arg("prefix"),
        "Keras-style automatic name: prefix, prefix_1, prefix_2, ...");
  m.def("build_config", [] {
    py::dict d;
    d["blas"] = blas_info();
    d["blas_library"] = SIGNCORE_OPENBLAS_LIBRARY;
    d["opencv"] = std::string(CV_VERSION);
    d["compile_flags"] = SIGNCORE_COMPILE_FLAGS;
    d["num_threads"] = get_num_threads();
    return d;
  });
  // The benchmarks' reference rate: OpenBLAS's own cblas_sgemm on (n, n) x (n, n), on its own threads
  // (as many as set_num_threads). The operands live as long as the object, so a benchmark can time
  // single products in the same alternating rounds as the models.
  struct SgemmBenchmark {
    std::size_t n;
    std::vector<float> a, b, c;
  };
  py::class_<SgemmBenchmark>(m, "_SgemmBenchmark")
      .def(py::init([](std::size_t n) {
             if (n == 0 || n > 8192)
               fail<ValueError>("_SgemmBenchmark: n must be in [1, 8192]. Received: n=", n);
             SgemmBenchmark s{n, std::vector<float>(n * n), std::vector<float>(n * n), std::vector<float>(n * n)};
             std::mt19937 rng(7);
             std::normal_distribution<float> normal(0.f, 1.f);
             for (auto& v : s.a) v = normal(rng);
             for (auto& v : s.b) v = normal(rng);
             return s;
           }),
           py::arg("n"))
      .def_property_readonly("flops", [](const SgemmBenchmark& s) { return 2.0 * s.n * s.n * s.n; })
      .def("run",
           [](SgemmBenchmark& s, std::size_t iters) {
             py::gil_scoped_release release;
             std::vector<double> times;
             const int k = static_cast<int>(s.n);
             for (std::size_t i = 0; i < iters; ++i) {
               const auto t0 = std::chrono::steady_clock::now();
               cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, k, k, k, 1.f, s.a.data(), k,
                           s.b.data(), k, 0.f, s.c.data(), k);
               times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
             }
             return times;
           },
           py::arg("iters") = 1, "Wall seconds of each of `iters` products.");
}

}  // namespace signcore::bindings
