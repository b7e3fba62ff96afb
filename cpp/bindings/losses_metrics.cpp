// Losses and metrics: the classes with Keras's keyword signatures (in _core.losses and
// _core.metrics), make_loss / make_metric, and the confusion matrix.
#include <cstdint>
#include <vector>

#include "bindings.hpp"
#include "signcore/errors.hpp"
#include "signcore/losses.hpp"
#include "signcore/metrics.hpp"

namespace signcore::bindings {

namespace {

using json = nlohmann::json;
using namespace pybind11::literals;

// Keras's common loss arguments that only have one supported value here.
json loss_config(py::object reduction, const std::string& name, py::object dtype) {
  json c{{"name", name}};
  c["reduction"] = reduction.is_none() ? json("sum_over_batch_size") : py_to_json(reduction);
  if (!dtype.is_none() && py::str(dtype).cast<std::string>() != "float32")
    fail<ValueError>("Losses compute in float32 only. Received: dtype=", py::repr(dtype).cast<std::string>());
  return c;
}

void check_dtype(py::object dtype) {
  if (!dtype.is_none() && py::str(dtype).cast<std::string>() != "float32")
    fail<ValueError>("Metrics compute in float32 only. Received: dtype=", py::repr(dtype).cast<std::string>());
}

template <class T>
std::shared_ptr<T> make_as(const std::string& cls, const json& config) {
  return std::static_pointer_cast<T>(make_loss(cls, config));
}

// Pickling a loss: its class name and config, rebuilt with make_loss.
template <class T, class Cls>
void add_loss_pickle(Cls& cls) {
  cls.def(py::pickle(
      [](const T& l) { return py::make_tuple(l.class_name(), json_to_py(l.get_config())); },
      [](const py::tuple& t) {
        if (t.size() != 2) fail<ValueError>("invalid pickled loss. Received: ", t.size(), " fields");
        auto loss = std::dynamic_pointer_cast<T>(make_loss(t[0].cast<std::string>(), py_to_json(t[1])));
        if (!loss) fail<ValueError>("invalid pickled loss. Received: class_name=", t[0].cast<std::string>());
        return loss;
      }));
}

// Pickling a metric: its config and running totals; `make` builds it from the config.
template <class T, class Cls, class Make>
void add_metric_pickle(Cls& cls, Make make) {
  cls.def(py::pickle(
      [](const T& me) { return py::make_tuple(json_to_py(me.get_config()), me.total(), me.count()); },
      [make](const py::tuple& t) {
        if (t.size() != 3) fail<ValueError>("invalid pickled metric. Received: ", t.size(), " fields");
        std::shared_ptr<T> me = make(py_to_json(t[0]));
        me->add(t[1].cast<double>(), t[2].cast<double>());
        return me;
      }));
}

std::string config_name(const json& c, const char* def) {
  return c.contains("name") && c["name"].is_string() ? c["name"].get<std::string>() : def;
}

template <class T>
struct Tag {
  using type = T;
};

Shape shape_from(const py::handle& seq) {
  Shape s;
  for (auto d : seq) s.push_back(d.is_none() ? 1 : d.cast<std::size_t>());
  return s;
}

py::array matrix_out(std::vector<std::int64_t>&& v, std::size_t k) {
  py::array_t<std::int64_t> a({k, k});
  std::copy(v.begin(), v.end(), a.mutable_data());
  return std::move(a);
}

py::array matrix_out(std::vector<double>&& v, std::size_t k) {
  py::array_t<double> a({k, k});
  std::copy(v.begin(), v.end(), a.mutable_data());
  return std::move(a);
}

}  // namespace

void bind_losses_metrics(py::module_& m) {
  // --- losses ---------------------------------------------------------------------------------
  py::module_ ml = m.def_submodule("losses", "Losses (C++).");
  py::class_<Loss, LossPtr>(ml, "Loss", "Base class of the losses. Call it as loss(y_true, y_pred).")
      .def_property_readonly("name", &Loss::name)
      .def_property_readonly("class_name", &Loss::class_name)
      .def_property_readonly("sparse", &Loss::sparse)
      .def_property_readonly("binary", &Loss::binary)
      .def_property_readonly("reduction", [](const Loss&) { return "sum_over_batch_size"; })
      .def("get_config", [](const Loss& l) { return json_to_py(l.get_config()); })
      .def(
          "__call__",
          [](const Loss& l, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            py::gil_scoped_release release;
            return l.compute(p, t, nullptr);
          },
          "y_true"_a, "y_pred"_a, "The mean loss over the batch, as a Python float.")
      .def(
          "_value_and_grad",
          [](const Loss& l, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            Tensor dp;
            double v;
            {
              py::gil_scoped_release release;
              v = l.compute(p, t, &dp);
            }
            return py::make_tuple(v, to_numpy(std::move(dp)));
          },
          "y_true"_a, "y_pred"_a, "(loss, dloss/dy_pred): the value and its gradient (for tests).")
      .def("__repr__", [](const Loss& l) { return "<" + l.class_name() + " name='" + l.name() + "'>"; });

  auto cce = py::class_<CategoricalCrossentropy, Loss, std::shared_ptr<CategoricalCrossentropy>>(ml, "CategoricalCrossentropy")
      .def(py::init([](bool from_logits, double label_smoothing, int axis, py::object reduction,
                       const std::string& name, py::object dtype) {
             json c = loss_config(reduction, name, dtype);
             c["from_logits"] = from_logits, c["label_smoothing"] = label_smoothing, c["axis"] = axis;
             return make_as<CategoricalCrossentropy>("CategoricalCrossentropy", c);
           }),
           "from_logits"_a = false, "label_smoothing"_a = 0.0, "axis"_a = -1,
           "reduction"_a = "sum_over_batch_size", "name"_a = "categorical_crossentropy", "dtype"_a = py::none())
      .def_property_readonly("from_logits", &CategoricalCrossentropy::from_logits)
      .def_property_readonly("label_smoothing", &CategoricalCrossentropy::label_smoothing);

  auto scce = py::class_<SparseCategoricalCrossentropy, Loss, std::shared_ptr<SparseCategoricalCrossentropy>>(
      ml, "SparseCategoricalCrossentropy")
      .def(py::init([](bool from_logits, py::object ignore_class, py::object reduction, const std::string& name,
                       py::object dtype) {
             json c = loss_config(reduction, name, dtype);
             c["from_logits"] = from_logits, c["ignore_class"] = py_to_json(ignore_class);
             return make_as<SparseCategoricalCrossentropy>("SparseCategoricalCrossentropy", c);
           }),
           "from_logits"_a = false, "ignore_class"_a = py::none(), "reduction"_a = "sum_over_batch_size",
           "name"_a = "sparse_categorical_crossentropy", "dtype"_a = py::none())
      .def_property_readonly("from_logits", &SparseCategoricalCrossentropy::from_logits);

  auto bce = py::class_<BinaryCrossentropy, Loss, std::shared_ptr<BinaryCrossentropy>>(ml, "BinaryCrossentropy")
      .def(py::init([](bool from_logits, double label_smoothing, int axis, py::object reduction,
                       const std::string& name, py::object dtype) {
             json c = loss_config(reduction, name, dtype);
             c["from_logits"] = from_logits, c["label_smoothing"] = label_smoothing, c["axis"] = axis;
             return make_as<BinaryCrossentropy>("BinaryCrossentropy", c);
           }),
           "from_logits"_a = false, "label_smoothing"_a = 0.0, "axis"_a = -1,
           "reduction"_a = "sum_over_batch_size", "name"_a = "binary_crossentropy", "dtype"_a = py::none())
      .def_property_readonly("from_logits", &BinaryCrossentropy::from_logits)
      .def_property_readonly("label_smoothing", &BinaryCrossentropy::label_smoothing);

  auto mse = py::class_<MeanSquaredError, Loss, std::shared_ptr<MeanSquaredError>>(ml, "MeanSquaredError")
      .def(py::init([](py::object reduction, const std::string& name, py::object dtype) {
             return make_as<MeanSquaredError>("MeanSquaredError", loss_config(reduction, name, dtype));
           }),
           "reduction"_a = "sum_over_batch_size", "name"_a = "mean_squared_error", "dtype"_a = py::none());

  auto mae = py::class_<MeanAbsoluteError, Loss, std::shared_ptr<MeanAbsoluteError>>(ml, "MeanAbsoluteError")
      .def(py::init([](py::object reduction, const std::string& name, py::object dtype) {
             return make_as<MeanAbsoluteError>("MeanAbsoluteError", loss_config(reduction, name, dtype));
           }),
           "reduction"_a = "sum_over_batch_size", "name"_a = "mean_absolute_error", "dtype"_a = py::none());

  add_loss_pickle<CategoricalCrossentropy>(cce);
  add_loss_pickle<SparseCategoricalCrossentropy>(scce);
  add_loss_pickle<BinaryCrossentropy>(bce);
  add_loss_pickle<MeanSquaredError>(mse);
  add_loss_pickle<MeanAbsoluteError>(mae);

  m.def(
      "make_loss", [](const std::string& name, py::object config) {
        return make_loss(name, config.is_none() ? json::object() : py_to_json(config));
      },
      "name"_a, "config"_a = py::none(), "A loss from its name or class name and a get_config() dict.");
  m.def("canonical_loss_name", &canonical_loss_name, "identifier"_a);

  // --- metrics --------------------------------------------------------------------------------
  py::module_ mm = m.def_submodule("metrics", "Metrics (C++).");
  py::class_<Metric, MetricPtr>(mm, "Metric", "Base class of the streaming metrics.")
      .def_property_readonly("name", &Metric::name)
      .def_property_readonly("class_name", &Metric::class_name)
      .def(
          "update_state",
          [](Metric& me, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            py::gil_scoped_release release;
            me.update_state(t, p);
          },
          "y_true"_a, "y_pred"_a)
      .def("result", &Metric::result)
      .def("reset_state", &Metric::reset_state)
      .def("get_config", [](const Metric& me) { return json_to_py(me.get_config()); })
      .def_property_readonly("scalar", &Metric::scalar,
                             "False for a metric whose result is a matrix (left out of the training logs).")
      .def("__repr__", [](const Metric& me) { return "<" + me.class_name() + " name='" + me.name() + "'>"; });

  auto mean = py::class_<Mean, Metric, std::shared_ptr<Mean>>(mm, "Mean")
      .def(py::init([](const std::string& name, py::object dtype) {
             check_dtype(dtype);
             return std::make_shared<Mean>(name);
           }),
           "name"_a = "mean", "dtype"_a = py::none())
      .def(
          "update_state",
          [](Mean& me, const FloatArray& values) {
            const Tensor v = to_tensor(values);
            me.update_state(v, v);
          },
          "values"_a, "Add every element of values with weight 1.")
      .def_property_readonly("total", &Mean::total)
      .def_property_readonly("count", &Mean::count);
  add_metric_pickle<Mean>(mean, [](const json& c) { return std::make_shared<Mean>(config_name(c, "mean")); });

  auto bind_mean_metric = [&](auto tag, const char* cls, const char* default_name) {
    using T = typename decltype(tag)::type;
    auto c = py::class_<T, Mean, std::shared_ptr<T>>(mm, cls)
        .def(py::init([](const std::string& name, py::object dtype) {
               check_dtype(dtype);
               return std::make_shared<T>(name);
             }),
             "name"_a = default_name, "dtype"_a = py::none())
        .def(
            "update_state",
            [](T& me, const FloatArray& y_true, const FloatArray& y_pred) {
              const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
              py::gil_scoped_release release;
              me.update_state(t, p);
            },
            "y_true"_a, "y_pred"_a);
    const std::string def = default_name;
    add_metric_pickle<T>(c, [def](const json& j) { return std::make_shared<T>(config_name(j, def.c_str())); });
  };
  bind_mean_metric(Tag<SparseCategoricalAccuracy>{}, "SparseCategoricalAccuracy",
                   "sparse_categorical_accuracy");
  bind_mean_metric(Tag<CategoricalAccuracy>{}, "CategoricalAccuracy", "categorical_accuracy");
  bind_mean_metric(Tag<MeanSquaredErrorMetric>{}, "MeanSquaredError", "mean_squared_error");
  bind_mean_metric(Tag<MeanAbsoluteErrorMetric>{}, "MeanAbsoluteError", "mean_absolute_error");

  auto binary_accuracy = py::class_<BinaryAccuracy, Mean, std::shared_ptr<BinaryAccuracy>>(mm, "BinaryAccuracy")
      .def(py::init([](const std::string& name, py::object dtype, double threshold) {
             check_dtype(dtype);
             return std::make_shared<BinaryAccuracy>(name, threshold);
           }),
           "name"_a = "binary_accuracy", "dtype"_a = py::none(), "threshold"_a = 0.5)
      .def(
          "update_state",
          [](BinaryAccuracy& me, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            py::gil_scoped_release release;
            me.update_state(t, p);
          },
          "y_true"_a, "y_pred"_a)
      .def_property_readonly("threshold", &BinaryAccuracy::threshold);
  add_metric_pickle<BinaryAccuracy>(binary_accuracy, [](const json& c) {
    const double threshold = c.contains("threshold") && c["threshold"].is_number() ? c["threshold"].get<double>() : 0.5;
    return std::make_shared<BinaryAccuracy>(config_name(c, "binary_accuracy"), threshold);
  });

  // --- top-k accuracy ---------------------------------------------------------------------------
  auto bind_top_k = [&](auto tag, const char* cls, const char* default_name) {
    using T = typename decltype(tag)::type;
    auto c = py::class_<T, Mean, std::shared_ptr<T>>(mm, cls)
        .def(py::init([](int k, const std::string& name, py::object dtype) {
               check_dtype(dtype);
               return std::make_shared<T>(k, name);
             }),
             "k"_a = 5, "name"_a = default_name, "dtype"_a = py::none())
        .def(
            "update_state",
            [](T& me, const FloatArray& y_true, const FloatArray& y_pred) {
              const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
              py::gil_scoped_release release;
              me.update_state(t, p);
            },
            "y_true"_a, "y_pred"_a)
        .def_property_readonly("k", &T::k);
    const std::string def = default_name;
    add_metric_pickle<T>(c, [def](const json& j) {
      const int k = j.contains("k") && j["k"].is_number_integer() ? j["k"].get<int>() : 5;
      return std::make_shared<T>(k, config_name(j, def.c_str()));
    });
  };
  bind_top_k(Tag<TopKCategoricalAccuracy>{}, "TopKCategoricalAccuracy", "top_k_categorical_accuracy");
  bind_top_k(Tag<SparseTopKCategoricalAccuracy>{}, "SparseTopKCategoricalAccuracy", "sparse_top_k_categorical_accuracy");

  // --- precision and recall ---------------------------------------------------------------------
  py::class_<PrecisionRecallBase, Metric, std::shared_ptr<PrecisionRecallBase>>(mm, "PrecisionRecallBase")
      .def(
          "update_state",
          [](PrecisionRecallBase& me, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            py::gil_scoped_release release;
            me.update_state(t, p);
          },
          "y_true"_a, "y_pred"_a)
      .def_property_readonly("thresholds", [](const PrecisionRecallBase& me) -> py::object {
        if (!me.threshold()) return py::none();
        return py::float_(*me.threshold());
      })
      .def_property_readonly("top_k", &PrecisionRecallBase::top_k)
      .def_property_readonly("class_id", &PrecisionRecallBase::class_id)
      .def_property_readonly("true_positives", &PrecisionRecallBase::true_positives)
      .def_property_readonly("false_positives", &PrecisionRecallBase::false_positives)
      .def_property_readonly("false_negatives", &PrecisionRecallBase::false_negatives);
  // thresholds: None, a float in [0, 1], or a list of one float (one threshold only).
  auto one_threshold = [](py::object t) -> std::optional<double> {
    if (t.is_none()) return std::nullopt;
    if (py::isinstance<py::list>(t) || py::isinstance<py::tuple>(t)) {
      auto seq = t.cast<py::sequence>();
      if (seq.size() != 1)
        fail<ValueError>("Only one threshold is supported. Received: thresholds=", py::repr(t).cast<std::string>());
      return seq[0].cast<double>();
    }
    return t.cast<double>();
  };
  auto bind_pr = [&](auto tag, const char* cls, const char* default_name) {
    using T = typename decltype(tag)::type;
    auto c = py::class_<T, PrecisionRecallBase, std::shared_ptr<T>>(mm, cls)
        .def(py::init([one_threshold, default_name](py::object thresholds, std::optional<int> top_k,
                                                    std::optional<int> class_id, py::object name, py::object dtype) {
               check_dtype(dtype);
               return std::make_shared<T>(one_threshold(thresholds), top_k, class_id,
                                          name.is_none() ? std::string(default_name) : name.cast<std::string>());
             }),
             "thresholds"_a = py::none(), "top_k"_a = py::none(), "class_id"_a = py::none(), "name"_a = py::none(),
             "dtype"_a = py::none());
    const std::string def = default_name;
    c.def(py::pickle(
        [](const T& me) {
          return py::make_tuple(json_to_py(me.get_config()), me.true_positives(), me.false_positives(),
                                me.false_negatives());
        },
        [def](const py::tuple& t) {
          if (t.size() != 4) fail<ValueError>("invalid pickled metric. Received: ", t.size(), " fields");
          const json c = py_to_json(t[0]);
          auto opt_int = [&](const char* k) -> std::optional<int> {
            if (c.contains(k) && c[k].is_number_integer()) return c[k].get<int>();
            return std::nullopt;
          };
          std::optional<double> th;
          if (c.contains("thresholds") && c["thresholds"].is_number()) th = c["thresholds"].get<double>();
          auto me = std::make_shared<T>(th, opt_int("top_k"), opt_int("class_id"), config_name(c, def.c_str()));
          me->set_counts(t[1].cast<double>(), t[2].cast<double>(), t[3].cast<double>());
          return me;
        }));
  };
  bind_pr(Tag<Precision>{}, "Precision", "precision");
  bind_pr(Tag<Recall>{}, "Recall", "recall");

  // --- confusion matrix metric -----------------------------------------------------------------
  auto cm_result = [](const ConfusionMatrix& me) -> py::array {
    const std::size_t k = me.num_classes();
    if (me.normalize().empty()) return matrix_out(std::vector<std::int64_t>(me.counts()), k);
    return matrix_out(me.matrix(), k);
  };
  py::class_<ConfusionMatrix, Metric, std::shared_ptr<ConfusionMatrix>>(mm, "ConfusionMatrix")
      .def(py::init([](std::size_t num_classes, py::object normalize, const std::string& name, py::object dtype) {
             check_dtype(dtype);
             return std::make_shared<ConfusionMatrix>(num_classes, normalize.is_none() ? "" : normalize.cast<std::string>(),
                                                      name);
           }),
           "num_classes"_a, "normalize"_a = py::none(), "name"_a = "confusion_matrix", "dtype"_a = py::none())
      .def(
          "update_state",
          [](ConfusionMatrix& me, const FloatArray& y_true, const FloatArray& y_pred) {
            const Tensor t = to_tensor(y_true), p = to_tensor(y_pred);
            py::gil_scoped_release release;
            me.update_state(t, p);
          },
          "y_true"_a, "y_pred"_a)
      .def("result", cm_result, "The (num_classes, num_classes) matrix: int64 counts, or float64 when normalized.")
      .def("accuracy", &ConfusionMatrix::result, "trace / total of the counts so far.")
      .def_property_readonly("num_classes", &ConfusionMatrix::num_classes)
      .def_property_readonly("normalize", [](const ConfusionMatrix& me) -> py::object {
        if (me.normalize().empty()) return py::none();
        return py::str(me.normalize());
      })
      .def(py::pickle(
          [](const ConfusionMatrix& me) { return py::make_tuple(json_to_py(me.get_config()), me.counts()); },
          [](const py::tuple& t) {
            if (t.size() != 2) fail<ValueError>("invalid pickled metric. Received: ", t.size(), " fields");
            const json c = py_to_json(t[0]);
            const std::string norm = c.contains("normalize") && c["normalize"].is_string() ? c["normalize"].get<std::string>() : "";
            auto me = std::make_shared<ConfusionMatrix>(c.at("num_classes").get<std::size_t>(), norm,
                                                        config_name(c, "confusion_matrix"));
            me->set_counts(t[1].cast<std::vector<std::int64_t>>());
            return me;
          }));

  // The base classes are also reachable as _core.Loss / _core.Metric (isinstance checks).
  m.attr("Loss") = ml.attr("Loss");
  m.attr("Metric") = mm.attr("Metric");

  m.def(
      "make_metric",
      [](const std::string& name, py::object y_true_shape, py::object y_pred_shape, const Loss* loss) {
        return make_metric(name, shape_from(y_true_shape), shape_from(y_pred_shape), loss);
      },
      "name"_a, "y_true_shape"_a, "y_pred_shape"_a, "loss"_a = nullptr,
      "Resolve a metric name for batches of these shapes, as compile() does.");

  m.def(
      "confusion_matrix",
      [](py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> labels,
         py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> predictions, std::size_t num_classes,
         const std::string& normalize) -> py::array {
        std::vector<std::int64_t> t(labels.data(), labels.data() + labels.size());
        std::vector<std::int64_t> p(predictions.data(), predictions.data() + predictions.size());
        if (normalize.empty()) return matrix_out(confusion_counts(t, p, num_classes), num_classes);
        return matrix_out(confusion_matrix(t, p, num_classes, normalize), num_classes);
      },
      "labels"_a, "predictions"_a, "num_classes"_a, "normalize"_a = "",
      "Confusion matrix of integer labels (rows: true class, columns: predicted class).");

  m.def(
      "class_scores",
      [](py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> y_true,
         py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> y_pred,
         py::array_t<std::int64_t, py::array::c_style | py::array::forcecast> labels, double zero_division) {
        std::vector<std::int64_t> t(y_true.data(), y_true.data() + y_true.size());
        std::vector<std::int64_t> p(y_pred.data(), y_pred.data() + y_pred.size());
        std::vector<std::int64_t> l(labels.data(), labels.data() + labels.size());
        ClassScores s = class_scores(t, p, l, zero_division);
        py::dict d;
        d["precision"] = py::array(py::cast(s.precision));
        d["recall"] = py::array(py::cast(s.recall));
        d["f1"] = py::array(py::cast(s.f1));
        d["support"] = py::array(py::cast(s.support));
        d["tp"] = py::array(py::cast(s.tp));
        d["fp"] = py::array(py::cast(s.fp));
        d["fn"] = py::array(py::cast(s.fn));
        return d;
      },
      "y_true"_a, "y_pred"_a, "labels"_a, "zero_division"_a = 0.0,
      "Per-label precision, recall, F1, support and tp/fp/fn counts (scikit-learn's definitions).");
}

}  // namespace signcore::bindings
