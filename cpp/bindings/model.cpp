// signcore._core.Model: graph construction, compile, and the batch loop with the GIL released.
#include "bindings.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"

#include <cmath>
#include <optional>

namespace signcore::bindings {
namespace {

std::vector<ArrayView> views(const std::vector<FloatArray>& xs) {
  std::vector<ArrayView> v;
  for (const auto& a : xs) v.push_back(view_of(a));
  return v;
}

// Text goes to Python's sys.stdout (so it shows in Jupyter); Ctrl-C is checked between batches.
void connect_python(Model& m) {
  m.text_sink = [](const std::string& s) {
    py::gil_scoped_acquire gil;
    py::object out = py::module_::import("sys").attr("stdout");
    out.attr("write")(s);
    out.attr("flush")();
  };
  m.interrupt_check = [] {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  };
}

py::object logs_to_py(const Logs& logs) {
  py::dict d;
  for (const auto& [k, v] : logs.items()) d[py::str(k)] = v;
  return std::move(d);
}

py::array weight_copy(Model& m, std::size_t i) {
  const Weight& w = m.params().weights().at(i);
  Tensor t = Tensor::from_shape(w.shape);
  std::copy(m.params().value(i), m.params().value(i) + w.size, t.data());
  return to_numpy(std::move(t));
}

// A Python data source: a Sequence-like object (len() and [index] giving batches, optional
// on_epoch_end()) or an iterator/generator (next() giving batches). A batch is (x, y) or x, where x
// is an array or a list/tuple of arrays (one per model input). The GIL is taken only to fetch.
class PyBatchSource : public BatchSource {
 public:
  explicit PyBatchSource(py::object obj) : obj_(std::move(obj)) {
    indexable_ = py::hasattr(obj_, "__getitem__") && py::hasattr(obj_, "__len__") && !py::hasattr(obj_, "__next__");
    if (indexable_) {
      batches_ = py::len(obj_);
    } else if (py::hasattr(obj_, "__next__")) {
      iter_ = obj_;
    } else if (py::hasattr(obj_, "__iter__")) {
      iter_ = obj_.attr("__iter__")();
    } else {
      fail<TypeError>("data must be arrays, a Sequence (len() and [i]) or an iterator of batches. Received: ",
                      py::repr(obj_).cast<std::string>());
    }
    if (!indexable_ && py::hasattr(obj_, "__len__")) batches_ = py::len(obj_);
  }
  ~PyBatchSource() override {
    py::gil_scoped_acquire gil;
    obj_ = py::object();
    iter_ = py::object();
  }
  std::size_t num_batches() const override { return batches_; }
  bool has_targets() const override { return true; }  // checked per batch

  void get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) override {
    py::gil_scoped_acquire gil;
    py::object batch;
    if (indexable_) {
      batch = obj_.attr("__getitem__")(index);
    } else {
      try {
        batch = iter_.attr("__next__")();
      } catch (py::error_already_set& e) {
        if (e.matches(PyExc_StopIteration))
          fail<ValueError>("the data iterator ran out after ", index, " batches; give steps_per_epoch (or steps) no larger than that");
        throw;
      }
    }
    py::object xs = batch, ys = py::none();
    if (py::isinstance<py::tuple>(batch)) {
      const auto t = batch.cast<py::tuple>();
      if (t.size() == 3 && !t[2].is_none()) fail<ValueError>("sample weights from a data source are not supported yet");
      if (t.size() < 1 || t.size() > 3) fail<ValueError>("a batch must be x or (x, y). Received a tuple of ", t.size());
      xs = t[0];
      if (t.size() >= 2) ys = t[1];
    }
    x.clear();
    if (py::isinstance<py::list>(xs) || py::isinstance<py::tuple>(xs)) {
      for (auto a : xs) x.push_back(to_tensor(checked(a, "x")));
    } else {
      x.push_back(to_tensor(checked(xs, "x")));
    }
    if (y) {
      if (ys.is_none()) fail<ValueError>("training and evaluation need (x, y) batches; the data yielded x only");
      *y = to_tensor(checked(ys, "y"));
    }
  }

  void on_epoch_end() override {
    py::gil_scoped_acquire gil;
    if (py::hasattr(obj_, "on_epoch_end")) obj_.attr("on_epoch_end")();
  }

 private:
  static FloatArray checked(py::handle a, const char* what) {
    py::array arr = py::array::ensure(a);
    if (!arr) fail<TypeError>("a batch's ", what, " must be an array. Received: ", py::repr(a).cast<std::string>());
    const char kind = arr.dtype().kind();
    if (kind != 'f' && kind != 'i' && kind != 'u' && kind != 'b')
      fail<TypeError>("a batch's ", what, " must hold numbers. Received dtype ", py::str(arr.dtype()).cast<std::string>());
    FloatArray f = FloatArray::ensure(arr);
    const float* p = f.data();
    for (py::ssize_t i = 0, n = f.size(); i < n; ++i)
      if (!std::isfinite(p[i])) fail<ValueError>("a batch's ", what, " contains NaN or infinite values");
    return f;
  }
  py::object obj_, iter_;
  bool indexable_ = false;
  std::size_t batches_ = 0;
};

// A C++ source (image iterators) or a Python object wrapped on the spot.
std::shared_ptr<BatchSource> as_source(py::object data) {
  if (py::isinstance<BatchSource>(data)) return data.cast<std::shared_ptr<BatchSource>>();
  return std::make_shared<PyBatchSource>(std::move(data));
}

}  // namespace

void bind_model(py::module_& m) {
  py::class_<BatchSource, std::shared_ptr<BatchSource>>(m, "BatchSource",
      "Base of the C++ data iterators that fit/evaluate/predict consume directly.")
      .def("__len__", &BatchSource::num_batches);

  m.def("_fuse_normalizations", &Model::fuse_normalizations_enabled,
        "Whether models built from now on apply a BatchNormalization inside the MaxPooling that alone reads it.");
  m.def("_set_fuse_normalizations", &Model::set_fuse_normalizations, py::arg("on"),
        "Switch that fusion for models built from now on (process-wide; tests and benchmarks).");
  m.def("_fuse_poolings", &Model::fuse_poolings_enabled,
        "Whether models built from now on let a convolution compute the MaxPooling after it.");
  m.def("_set_fuse_poolings", &Model::set_fuse_poolings, py::arg("on"),
        "Switch that fusion for models built from now on (process-wide; tests and benchmarks).");
  m.def("layer_output_shape", [](Layer& layer, const std::vector<Shape>& shapes) { return layer.compute_output_shape(shapes); },
        py::arg("layer"), py::arg("input_shapes"),
        "Per-sample output shape of `layer` for these per-sample input shapes, without building it.");

  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def_property_readonly("input_names", [](const Model& self) {
        std::vector<std::string> names;
        for (const auto& in : self.inputs()) names.push_back(in.name);
        return names;
      })
      .def_property_readonly("input_dtypes", [](const Model& self) {
        std::vector<std::string> d;
        for (const auto& in : self.inputs()) d.push_back(in.dtype);
        return d;
      })
      .def_property_readonly("output_node", &Model::output_node)
      .def(py::init<std::string>(), py::arg("name") = "model")
      .def_property("name", &Model::name, &Model::set_name)
      .def("add_input",
           [](Model& self, const std::string& name, const Shape& shape, const std::string& dtype) {
             return self.add_input(ModelInput{name, shape, dtype});
           },
           py::arg("name"), py::arg("shape"), py::arg("dtype") = "float32")
      .def("add_node",
           [](Model& self, LayerPtr layer, std::vector<int> inputs, std::optional<int> mask) {
             return self.add_node(std::move(layer), std::move(inputs), mask ? *mask : kNoMask);
           },
           py::arg("layer"), py::arg("inputs"), py::arg("mask") = py::none())
      .def_property_readonly("nodes", [](const Model& self) {
        py::list out;
        for (const auto& n : self.nodes())
          out.append(py::make_tuple(n.layer, n.inputs, n.mask == kNoMask ? py::object(py::none()) : py::int_(n.mask)));
        return out;
      })
      .def("set_output", &Model::set_output)
      .def("build", &Model::build)
      .def("detach_layers", &Model::detach_layers)
      .def_property_readonly("built", &Model::built)
      .def_property_readonly("compiled", &Model::compiled)
      .def_property_readonly("input_shapes", [](const Model& self) {
        std::vector<Shape> s;
        for (const auto& in : self.inputs()) s.push_back(in.shape);
        return s;
      })
      .def_property_readonly("output_shape", &Model::output_shape)
      .def_property_readonly("layers", [](const Model& self) {
        std::vector<LayerPtr> layers;
        for (const auto& n : self.nodes())
          if (!n.layer->internal()) layers.push_back(n.layer);
        return layers;
      })
      .def("compile", &Model::compile, py::arg("optimizer"), py::arg("loss"), py::arg("metrics"),
           py::arg("objects") = std::vector<MetricPtr>{})
      .def_property_readonly("metrics", [](const Model& self) { return self.metric_objects(); })
      .def_property_readonly("optimizer", &Model::optimizer)
      .def_property_readonly("loss", &Model::loss)
      .def_property_readonly("metric_names", &Model::metric_names)
      .def_property(
          "stop_training", [](const Model& self) { return self.stop_training.load(); },
          [](Model& self, bool v) { self.stop_training = v; })
      // --- weights -------------------------------------------------------------------------
      .def("weights_info", [](const Model& self) {
        py::list out;
        const auto& ws = self.params().weights();
        for (std::size_t i = 0; i < ws.size(); ++i) {
          py::dict d;
          d["index"] = i;
          d["name"] = ws[i].name;
          d["shape"] = py::tuple(py::cast(ws[i].shape));
          d["trainable"] = ws[i].trainable;
          d["layer"] = ws[i].owner ? ws[i].owner->name() : std::string();
          out.append(d);
        }
        return out;
      })
      .def("get_weight", &weight_copy, py::arg("index"))
      .def("set_weight",
           [](Model& self, std::size_t i, const FloatArray& a) {
             const Weight& w = self.params().weights().at(i);
             const Shape got(a.shape(), a.shape() + a.ndim());
             if (got != w.shape)
               fail<ValueError>("Weight '", w.name, "' has shape ", shape_str(w.shape, false),
                                ". Received: an array of shape ", shape_str(got, false));
             std::copy(a.data(), a.data() + a.size(), self.params().value(i));
           },
           py::arg("index"), py::arg("value"))
      .def("count_params", [](const Model& self) { return self.params().count(true) + self.params().count(false); })
      .def("count_trainable", [](const Model& self) { return self.params().count(true); })
      // --- compute (GIL released) ---------------------------------------------------------------
      .def("fit",
           [](Model& self, const std::vector<FloatArray>& xs, const FloatArray& y, std::size_t batch_size,
              int epochs, int verbose, bool shuffle, int initial_epoch,
              std::vector<CallbackPtr> callbacks, std::optional<std::vector<FloatArray>> val_xs,
              std::optional<FloatArray> val_y) {
             connect_python(self);
             prepare_callbacks(callbacks);
             FitOptions opt;
             opt.batch_size = batch_size;
             opt.epochs = epochs;
             opt.verbose = verbose;
             opt.shuffle = shuffle;
             opt.initial_epoch = initial_epoch;
             const auto x = views(xs);
             const auto yv = view_of(y);
             std::vector<ArrayView> vx;
             ArrayView vy;
             if (val_xs && val_y) {
               vx = views(*val_xs);
               vy = view_of(*val_y);
             }
             const bool validate = val_xs && val_y;
             py::gil_scoped_release nogil;
             return self.fit(x, yv, opt, std::move(callbacks), validate ? &vx : nullptr, validate ? &vy : nullptr);
           },
           py::arg("x"), py::arg("y"), py::arg("batch_size"), py::arg("epochs"), py::arg("verbose"),
           py::arg("shuffle"), py::arg("initial_epoch"), py::arg("callbacks"), py::arg("val_x"),
           py::arg("val_y"))
      .def("fit_source",
           [](Model& self, py::object data, int epochs, int verbose, int initial_epoch,
              std::vector<CallbackPtr> callbacks, py::object val, std::size_t steps_per_epoch,
              std::size_t validation_steps) {
             connect_python(self);
             prepare_callbacks(callbacks);
             auto train = as_source(data);
             std::shared_ptr<BatchSource> vsrc = val.is_none() ? nullptr : as_source(val);
             FitOptions opt;
             opt.epochs = epochs;
             opt.verbose = verbose;
             opt.initial_epoch = initial_epoch;
             py::gil_scoped_release nogil;
             return self.fit(*train, opt, std::move(callbacks), vsrc.get(), steps_per_epoch, validation_steps);
           },
           py::arg("data"), py::arg("epochs"), py::arg("verbose"), py::arg("initial_epoch"),
           py::arg("callbacks"), py::arg("val"), py::arg("steps_per_epoch"), py::arg("validation_steps"))
      .def("evaluate_source",
           [](Model& self, py::object data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks) {
             connect_python(self);
             prepare_callbacks(callbacks);
             auto src = as_source(data);
             Logs logs;
             {
               py::gil_scoped_release nogil;
               logs = self.evaluate(*src, steps, verbose, std::move(callbacks));
             }
             return logs_to_py(logs);
           },
           py::arg("data"), py::arg("steps"), py::arg("verbose"), py::arg("callbacks"))
      .def("predict_source",
           [](Model& self, py::object data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks) {
             connect_python(self);
             prepare_callbacks(callbacks);
             auto src = as_source(data);
             Tensor out;
             {
               py::gil_scoped_release nogil;
               out = self.predict(*src, steps, verbose, std::move(callbacks));
             }
             return to_numpy(std::move(out));
           },
           py::arg("data"), py::arg("steps"), py::arg("verbose"), py::arg("callbacks"))
      .def("evaluate",
           [](Model& self, const std::vector<FloatArray>& xs, const FloatArray& y, std::size_t batch_size,
              int verbose, std::vector<CallbackPtr> callbacks) {
             connect_python(self);
             prepare_callbacks(callbacks);
             const auto x = views(xs);
             const auto yv = view_of(y);
             Logs logs;
             {
               py::gil_scoped_release nogil;
               logs = self.evaluate(x, yv, batch_size, verbose, std::move(callbacks));
             }
             return logs_to_py(logs);
           },
           py::arg("x"), py::arg("y"), py::arg("batch_size"), py::arg("verbose"), py::arg("callbacks"))
      .def("predict",
           [](Model& self, const std::vector<FloatArray>& xs, std::size_t batch_size, int verbose,
              std::vector<CallbackPtr> callbacks) {
             connect_python(self);
             prepare_callbacks(callbacks);
             const auto x = views(xs);
             Tensor out;
             {
               py::gil_scoped_release nogil;
               out = self.predict(x, batch_size, verbose, std::move(callbacks));
             }
             return to_numpy(std::move(out));
           },
           py::arg("x"), py::arg("batch_size"), py::arg("verbose"), py::arg("callbacks"))
      .def("train_on_batch",
           [](Model& self, const std::vector<FloatArray>& xs, const FloatArray& y) {
             const auto x = views(xs);
             const auto yv = view_of(y);
             Logs logs;
             {
               py::gil_scoped_release nogil;
               logs = self.train_on_batch(x, yv);
             }
             return logs_to_py(logs);
           })
      .def("test_on_batch",
           [](Model& self, const std::vector<FloatArray>& xs, const FloatArray& y) {
             const auto x = views(xs);
             const auto yv = view_of(y);
             Logs logs;
             {
               py::gil_scoped_release nogil;
               logs = self.test_on_batch(x, yv);
             }
             return logs_to_py(logs);
           })
      .def("predict_on_batch",
           [](Model& self, const std::vector<FloatArray>& xs) {
             const auto x = views(xs);
             Tensor out;
             {
               py::gil_scoped_release nogil;
               out = self.predict_on_batch(x);
             }
             return to_numpy(std::move(out));
           })
      .def("profile",
           [](Model& self, const std::vector<FloatArray>& xs, std::optional<FloatArray> y, std::size_t steps) {
             const auto x = views(xs);
             std::optional<ArrayView> yv;
             if (y) yv = view_of(*y);
             Model::Profile p;
             {
               py::gil_scoped_release nogil;
               p = self.profile(x, yv ? &*yv : nullptr, steps);
             }
             py::list layers;
             for (std::size_t i = 0; i < p.forward.size(); ++i) {
               const int into = self.fused_into(i), by = self.normalization_applied_by(i);
               const int pooled = yv ? -1 : self.pooled_in(i);  // inference forwards only
               layers.append(py::make_tuple(self.node_layer(i).name(), self.node_layer(i).class_name(),
                                            p.forward[i], p.backward[i],
                                            into < 0 ? py::none() : py::cast(self.node_layer(into).name()),
                                            by < 0 ? py::none() : py::cast(self.node_layer(by).name()),
                                            self.applies_relu_derivative(i),
                                            pooled < 0 ? py::none() : py::cast(self.node_layer(pooled).name())));
             }
             py::dict out;
             out["layers"] = layers;
             out["loss"] = p.loss;
             out["optimizer"] = p.optimizer;
             out["total"] = p.total;
             return out;
           },
           py::arg("x"), py::arg("y"), py::arg("steps"))
      .def("summary", &Model::summary, py::arg("line_length") = 65);
}

}  // namespace signcore::bindings
