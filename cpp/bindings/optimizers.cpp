// Optimisers: Keras's classes and keyword signatures over signcore's C++ optimisers, plus
// ParameterSet, a small holder of weights and gradients that lets tests drive one step at a time.
#include <cstring>
#include <sstream>

#include "bindings.hpp"
#include "signcore/errors.hpp"
#include "signcore/optimizers.hpp"

namespace signcore::bindings {

namespace {

// A Parameters of its own (weights "w0", "w1", ... initialised to zeros, no owning layer).
struct ParameterSet {
  Parameters params;

  void check_count(const py::list& arrays, const char* what) const {
    if (arrays.size() != params.weights().size())
      fail<ValueError>(what, " needs one array per weight (", params.weights().size(),
                       "). Received: ", arrays.size(), " arrays");
  }

  // Copy `arrays` into the value (grads=false) or gradient buffer, checking every shape.
  void assign(const py::list& arrays, bool grads) {
    check_count(arrays, grads ? "set_grads" : "set_values");
    for (std::size_t i = 0; i < arrays.size(); ++i) {
      auto a = arrays[i].cast<FloatArray>();
      const Weight& w = params.weights()[i];
      const Shape shape(a.shape(), a.shape() + a.ndim());
      if (shape != w.shape)
        fail<ValueError>("array ", i, " must have shape ", shape_str(w.shape, false),
                         ". Received: shape=", shape_str(shape, false));
      float* dst = grads ? params.grad(i) : params.value(i);
      std::memcpy(dst, a.data(), w.size * sizeof(float));
    }
  }

  py::list read(bool grads) {
    py::list out;
    for (std::size_t i = 0; i < params.weights().size(); ++i) {
      const Weight& w = params.weights()[i];
      std::vector<py::ssize_t> shape(w.shape.begin(), w.shape.end());
      py::array_t<float> a(shape);
      const float* src = grads ? params.grad(i) : params.value(i);
      std::memcpy(a.mutable_data(), src, w.size * sizeof(float));
      out.append(std::move(a));
    }
    return out;
  }
};

// A config entry as Python (None when not set), e.g. "clipnorm".
py::object config_value(const Optimizer& o, const char* key) { return json_to_py(o.get_config()[key]); }

// Common keyword arguments, applied after the optimiser's own.
template <class T>
std::shared_ptr<T> with_common(std::shared_ptr<T> opt, std::optional<float> weight_decay,
                               std::optional<float> clipnorm, std::optional<float> clipvalue,
                               std::optional<float> global_clipnorm,
                               std::optional<std::string> name) {
  opt->set_clipping(clipnorm, clipvalue, global_clipnorm);
  opt->set_weight_decay(weight_decay);
  if (name) opt->name = *name;
  return opt;
}

// Pickling: the config, the iteration count and the slot state.
template <class T, class Cls>
void add_pickle(Cls& cls, const char* keras_name) {
  cls.def(py::pickle(
      [](const T& o) {
        auto& self = const_cast<T&>(o);
        const auto& st = self.state();
        py::bytes state(reinterpret_cast<const char*>(st.data()), st.size() * sizeof(float));
        const std::size_t total = self.slots() ? st.size() / self.slots() : 0;
        return py::make_tuple(json_to_py(self.get_config()), self.iterations, self.built(),
                              total, state);
      },
      [keras_name](py::tuple t) {
        if (t.size() != 5) fail<ValueError>("invalid optimizer state. Received: ", t.size(), " fields");
        auto opt = std::dynamic_pointer_cast<T>(make_optimizer(keras_name, py_to_json(t[0])));
        opt->iterations = t[1].cast<long long>();
        if (t[2].cast<bool>()) {
          const std::string bytes = t[4].cast<std::string>();
          std::vector<float> st(bytes.size() / sizeof(float));
          std::memcpy(st.data(), bytes.data(), st.size() * sizeof(float));
          opt->restore(t[3].cast<std::size_t>(), std::move(st));
        }
        return opt;
      }));
}

template <class T, class Cls>
void add_common(Cls& cls, const char* keras_name) {
  cls.def_static(
      "from_config",
      [keras_name](const py::dict& config) {
        return std::dynamic_pointer_cast<T>(make_optimizer(keras_name, py_to_json(config)));
      },
      py::arg("config"), "Create the optimizer from the dict get_config() returns.");
  add_pickle<T>(cls, keras_name);
}

}  // namespace

void bind_optimizers(py::module_& m) {
  py::class_<ParameterSet, std::shared_ptr<ParameterSet>>(
      m, "ParameterSet", "Weights and gradients in one flat buffer (for testing optimizers).")
      .def(py::init([](const std::vector<std::vector<std::size_t>>& shapes) {
             auto ps = std::make_shared<ParameterSet>();
             for (std::size_t i = 0; i < shapes.size(); ++i)
               ps->params.add(nullptr, "w" + std::to_string(i), shapes[i], "zeros", true);
             ps->params.allocate();
             return ps;
           }),
           py::arg("shapes"))
      .def("set_values", [](ParameterSet& ps, const py::list& a) { ps.assign(a, false); }, py::arg("values"))
      .def("values", [](ParameterSet& ps) { return ps.read(false); })
      .def("set_grads", [](ParameterSet& ps, const py::list& a) { ps.assign(a, true); }, py::arg("grads"))
      .def("grads", [](ParameterSet& ps) { return ps.read(true); })
      .def(
          "set_trainable",
          [](ParameterSet& ps, std::size_t i, bool trainable) {
            if (i >= ps.params.weights().size())
              fail<ValueError>("weight index out of range (", ps.params.weights().size(),
                               " weights). Received: index=", i);
            ps.params.weight(i).trainable = trainable;
          },
          py::arg("index"), py::arg("trainable"))
      .def("count_params", [](const ParameterSet& ps, bool trainable) { return ps.params.count(trainable); },
           py::arg("trainable") = true);

  py::class_<Optimizer, std::shared_ptr<Optimizer>>(m, "Optimizer",
                                                    "Base class of signcore's optimizers (Keras's API).")
      .def_property(
          "learning_rate", [](const Optimizer& o) { return config_value(o, "learning_rate"); },
          [](Optimizer& o, double lr) { o.set_learning_rate(static_cast<float>(lr)); },
          "The learning rate; may be set at any time and takes effect at the next step.")
      .def_property_readonly("iterations", [](const Optimizer& o) { return o.iterations; },
                             "Number of steps applied so far.")
      .def_property(
          "name", [](const Optimizer& o) { return o.name; },
          [](Optimizer& o, const std::string& n) { o.name = n; })
      .def_property_readonly("clipnorm", [](const Optimizer& o) { return config_value(o, "clipnorm"); })
      .def_property_readonly("clipvalue", [](const Optimizer& o) { return config_value(o, "clipvalue"); })
      .def_property_readonly("global_clipnorm",
                             [](const Optimizer& o) { return config_value(o, "global_clipnorm"); })
      .def_property_readonly("weight_decay",
                             [](const Optimizer& o) { return config_value(o, "weight_decay"); })
      .def_property_readonly("built", &Optimizer::built)
      .def("get_config", [](const Optimizer& o) { return json_to_py(o.get_config()); },
           "The optimizer's arguments as a dict; `type(opt)(**opt.get_config())` recreates it.")
      .def("variable_count", &Optimizer::variable_count, py::arg("trainable_params"),
           "Keras's number of optimizer variables for that many trainable parameters.")
      .def(
          "apply_to",
          [](Optimizer& o, ParameterSet& ps) {
            py::gil_scoped_release release;
            o.build(ps.params);
            o.apply(ps.params);
          },
          py::arg("parameters"), "Apply one step to a ParameterSet (building the optimizer if needed).")
      .def("__repr__", [](const Optimizer& o) {
        std::ostringstream os;
        os << "<" << o.class_name() << " name='" << o.name << "' learning_rate="
           << o.get_config()["learning_rate"].dump() << ">";
        return os.str();
      });

  using OptF = std::optional<float>;
  using OptS = std::optional<std::string>;

  py::class_<SGD, Optimizer, std::shared_ptr<SGD>> sgd(m, "SGD", R"doc(
Gradient descent with optional (Nesterov) momentum.

Without momentum ``w -= learning_rate * g``. With momentum
``v = momentum * v - learning_rate * g; w += v``; with ``nesterov=True``
``w += momentum * v - learning_rate * g``.

Args:
    learning_rate: Float > 0. Defaults to 0.01.
    momentum: Float in [0, 1]. Defaults to 0.0.
    nesterov: Whether to apply Nesterov momentum. Defaults to False.
    weight_decay: If set, decoupled weight decay ``w -= learning_rate * weight_decay * w``.
    clipnorm: If set, each weight's gradient is clipped to this L2 norm.
    clipvalue: If set, gradients are clipped element-wise to [-clipvalue, clipvalue].
    global_clipnorm: If set, all gradients together are clipped to this L2 norm.
    name: Defaults to "SGD".
)doc");
  sgd.def(py::init([](float lr, double momentum, bool nesterov, OptF wd, OptF cn, OptF cv, OptF gcn,
                      OptS name) {
            return with_common(std::make_shared<SGD>(lr, momentum, nesterov), wd, cn, cv, gcn, name);
          }),
          py::arg("learning_rate") = 0.01, py::arg("momentum") = 0.0, py::arg("nesterov") = false,
          py::arg("weight_decay") = py::none(), py::arg("clipnorm") = py::none(),
          py::arg("clipvalue") = py::none(), py::arg("global_clipnorm") = py::none(),
          py::arg("name") = py::none())
      .def_property_readonly("momentum", &SGD::momentum)
      .def_property_readonly("nesterov", &SGD::nesterov);
  add_common<SGD>(sgd, "sgd");

  py::class_<Adam, Optimizer, std::shared_ptr<Adam>> adam(m, "Adam", R"doc(
Adam, with Keras's form of the bias correction (epsilon outside it).

``m += (g - m)(1 - beta_1); v += (g^2 - v)(1 - beta_2);
w -= lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)``;
with ``amsgrad=True`` the running maximum of v is used.

Args:
    learning_rate: Float > 0. Defaults to 0.001.
    beta_1: Decay of the first moment, in [0, 1). Defaults to 0.9.
    beta_2: Decay of the second moment, in [0, 1). Defaults to 0.999.
    epsilon: Defaults to 1e-7.
    amsgrad: Whether to use AMSGrad. Defaults to False.
    weight_decay, clipnorm, clipvalue, global_clipnorm: as for SGD.
    name: Defaults to "adam".
)doc");
  adam.def(py::init([](float lr, double b1, double b2, double eps, bool amsgrad, OptF wd, OptF cn,
                       OptF cv, OptF gcn, OptS name) {
             return with_common(std::make_shared<Adam>(lr, b1, b2, eps, amsgrad), wd, cn, cv, gcn, name);
           }),
           py::arg("learning_rate") = 0.001, py::arg("beta_1") = 0.9, py::arg("beta_2") = 0.999,
           py::arg("epsilon") = 1e-7, py::arg("amsgrad") = false, py::arg("weight_decay") = py::none(),
           py::arg("clipnorm") = py::none(), py::arg("clipvalue") = py::none(),
           py::arg("global_clipnorm") = py::none(), py::arg("name") = py::none())
      .def_property_readonly("beta_1", &Adam::beta_1)
      .def_property_readonly("beta_2", &Adam::beta_2)
      .def_property_readonly("epsilon", &Adam::epsilon)
      .def_property_readonly("amsgrad", &Adam::amsgrad);
  add_common<Adam>(adam, "adam");

  py::class_<RMSprop, Optimizer, std::shared_ptr<RMSprop>> rmsprop(m, "RMSprop", R"doc(
RMSprop: divide the gradient by a running root mean square.

``v = rho * v + (1 - rho) * g^2``; the step is ``lr * g / sqrt(v + epsilon)`` (centered:
``sqrt(v - a^2 + epsilon)`` with ``a`` the running mean of g), applied through a momentum
accumulator when ``momentum > 0``.

Args:
    learning_rate: Float > 0. Defaults to 0.001.
    rho: Discount of the running average, in [0, 1). Defaults to 0.9.
    momentum: In [0, 1]. Defaults to 0.0.
    epsilon: Defaults to 1e-7.
    centered: Normalise by the estimated variance. Defaults to False.
    weight_decay, clipnorm, clipvalue, global_clipnorm: as for SGD.
    name: Defaults to "rmsprop".
)doc");
  rmsprop.def(py::init([](float lr, double rho, double momentum, double eps, bool centered, OptF wd,
                          OptF cn, OptF cv, OptF gcn, OptS name) {
                return with_common(std::make_shared<RMSprop>(lr, rho, momentum, eps, centered), wd, cn,
                                   cv, gcn, name);
              }),
              py::arg("learning_rate") = 0.001, py::arg("rho") = 0.9, py::arg("momentum") = 0.0,
              py::arg("epsilon") = 1e-7, py::arg("centered") = false,
              py::arg("weight_decay") = py::none(), py::arg("clipnorm") = py::none(),
              py::arg("clipvalue") = py::none(), py::arg("global_clipnorm") = py::none(),
              py::arg("name") = py::none())
      .def_property_readonly("rho", &RMSprop::rho)
      .def_property_readonly("momentum", &RMSprop::momentum)
      .def_property_readonly("epsilon", &RMSprop::epsilon)
      .def_property_readonly("centered", &RMSprop::centered);
  add_common<RMSprop>(rmsprop, "rmsprop");

  py::class_<Adagrad, Optimizer, std::shared_ptr<Adagrad>> adagrad(m, "Adagrad", R"doc(
Adagrad: per-parameter rates from the accumulated squared gradients.

``acc += g^2; w -= lr * g / sqrt(acc + epsilon)``, with ``acc`` starting at
``initial_accumulator_value``.

Args:
    learning_rate: Float > 0. Defaults to 0.001.
    initial_accumulator_value: Non-negative. Defaults to 0.1.
    epsilon: Defaults to 1e-7.
    weight_decay, clipnorm, clipvalue, global_clipnorm: as for SGD.
    name: Defaults to "adagrad".
)doc");
  adagrad.def(py::init([](float lr, double init, double eps, OptF wd, OptF cn, OptF cv, OptF gcn,
                          OptS name) {
                return with_common(std::make_shared<Adagrad>(lr, init, eps), wd, cn, cv, gcn, name);
              }),
              py::arg("learning_rate") = 0.001, py::arg("initial_accumulator_value") = 0.1,
              py::arg("epsilon") = 1e-7, py::arg("weight_decay") = py::none(),
              py::arg("clipnorm") = py::none(), py::arg("clipvalue") = py::none(),
              py::arg("global_clipnorm") = py::none(), py::arg("name") = py::none())
      .def_property_readonly("initial_accumulator_value", &Adagrad::initial_accumulator_value)
      .def_property_readonly("epsilon", &Adagrad::epsilon);
  add_common<Adagrad>(adagrad, "adagrad");

  py::class_<Adadelta, Optimizer, std::shared_ptr<Adadelta>> adadelta(m, "Adadelta", R"doc(
Adadelta: steps scaled by the ratio of running RMS of updates and of gradients.

``ag = rho * ag + (1 - rho) * g^2; d = -sqrt(ad + eps) / sqrt(ag + eps) * g;
ad = rho * ad + (1 - rho) * d^2; w += lr * d``.

Args:
    learning_rate: Float > 0. Defaults to 0.001 (the original paper corresponds to 1.0).
    rho: Decay rate, in [0, 1). Defaults to 0.95.
    epsilon: Defaults to 1e-7.
    weight_decay, clipnorm, clipvalue, global_clipnorm: as for SGD.
    name: Defaults to "adadelta".
)doc");
  adadelta.def(py::init([](float lr, double rho, double eps, OptF wd, OptF cn, OptF cv, OptF gcn,
                           OptS name) {
                 return with_common(std::make_shared<Adadelta>(lr, rho, eps), wd, cn, cv, gcn, name);
               }),
               py::arg("learning_rate") = 0.001, py::arg("rho") = 0.95, py::arg("epsilon") = 1e-7,
               py::arg("weight_decay") = py::none(), py::arg("clipnorm") = py::none(),
               py::arg("clipvalue") = py::none(), py::arg("global_clipnorm") = py::none(),
               py::arg("name") = py::none())
      .def_property_readonly("rho", &Adadelta::rho)
      .def_property_readonly("epsilon", &Adadelta::epsilon);
  add_common<Adadelta>(adadelta, "adadelta");

  m.def(
      "make_optimizer",
      [](const std::string& name, const py::object& config) {
        return make_optimizer(name, config.is_none() ? json::object() : py_to_json(config));
      },
      py::arg("name"), py::arg("config") = py::none(),
      "Create an optimizer by (case-insensitive) name with Keras defaults overridden by `config`.");
}

}  // namespace signcore::bindings
