// Callbacks: Python subclasses of signcore.callbacks.Callback are called from the C++ batch loop.
// The loop runs without the GIL; a hook takes it only if the Python class overrides that hook.
// The built-in callbacks (EarlyStopping, ...) are C++ classes with Keras's keyword signatures;
// their messages go to sys.stdout through the model's text sink and their warnings to Python's
// warnings module.
#include "bindings.hpp"
#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/random.hpp"

#include <cmath>

namespace signcore::bindings {
namespace {

using namespace pybind11::literals;

py::dict logs_to_dict(const Logs& logs) {
  py::dict d;
  for (const auto& [k, v] : logs.items()) d[py::str(k)] = v;
  return d;
}

// Values a Python hook put into (or changed in) the dict go back into the C++ logs.
void dict_to_logs(const py::dict& d, Logs& logs) {
  for (auto item : d) {
    const py::handle v = item.second;
    if (py::isinstance<py::bool_>(v) || !(py::isinstance<py::float_>(v) || py::isinstance<py::int_>(v) || py::hasattr(v, "__float__"))) continue;
    try {
      logs.set(py::str(item.first).cast<std::string>(), v.cast<double>());
    } catch (const py::cast_error&) {
    }
  }
}

enum Hook { TrainBegin, TrainEnd, EpochBegin, EpochEnd, TrainBatchBegin, TrainBatchEnd, TestBegin,
            TestEnd, TestBatchBegin, TestBatchEnd, PredictBegin, PredictEnd, PredictBatchBegin,
            PredictBatchEnd, HookCount };
const char* const kHookNames[HookCount] = {
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
    "on_train_batch_end", "on_test_begin", "on_test_end", "on_test_batch_begin", "on_test_batch_end",
    "on_predict_begin", "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"};

class PyCallback : public Callback {
 public:
  // Called with the GIL held before the loop starts: remember which hooks Python overrides.
  // Keras 2's on_batch_begin / on_batch_end stand for the training-batch hooks when those are not
  // overridden themselves (Keras 3 keeps them as aliases).
  void prepare() {
    for (int h = 0; h < HookCount; ++h) {
      name_[h] = kHookNames[h];
      overridden_[h] = static_cast<bool>(py::get_override(this, kHookNames[h]));
    }
    if (!overridden_[TrainBatchBegin] && py::get_override(this, "on_batch_begin")) {
      name_[TrainBatchBegin] = "on_batch_begin";
      overridden_[TrainBatchBegin] = true;
    }
    if (!overridden_[TrainBatchEnd] && py::get_override(this, "on_batch_end")) {
      name_[TrainBatchEnd] = "on_batch_end";
      overridden_[TrainBatchEnd] = true;
    }
  }
  void on_train_begin(Logs& l) override { call(TrainBegin, l); }
  void on_train_end(Logs& l) override { call(TrainEnd, l); }
  void on_epoch_begin(int e, Logs& l) override { call(EpochBegin, l, e); }
  void on_epoch_end(int e, Logs& l) override { call(EpochEnd, l, e); }
  void on_train_batch_begin(long long b, Logs& l) override { call(TrainBatchBegin, l, b); }
  void on_train_batch_end(long long b, Logs& l) override { call(TrainBatchEnd, l, b); }
  void on_test_begin(Logs& l) override { call(TestBegin, l); }
  void on_test_end(Logs& l) override { call(TestEnd, l); }
  void on_test_batch_begin(long long b, Logs& l) override { call(TestBatchBegin, l, b); }
  void on_test_batch_end(long long b, Logs& l) override { call(TestBatchEnd, l, b); }
  void on_predict_begin(Logs& l) override { call(PredictBegin, l); }
  void on_predict_end(Logs& l) override { call(PredictEnd, l); }
  void on_predict_batch_begin(long long b, Logs& l) override { call(PredictBatchBegin, l, b); }
  void on_predict_batch_end(long long b, Logs& l) override { call(PredictBatchEnd, l, b); }

 private:
  template <class... Index>
  void call(Hook h, Logs& logs, Index... index) {
    if (!overridden_[h]) return;
    py::gil_scoped_acquire gil;
    py::function f = py::get_override(this, name_[h]);
    if (!f) return;
    py::dict d = logs_to_dict(logs);
    f(index..., d);
    dict_to_logs(d, logs);
  }
  bool overridden_[HookCount] = {};
  const char* name_[HookCount] = {};
};

// A Python callable kept by a C++ callback; released with the GIL whenever the C++ object dies.
struct PyFunction {
  py::object fn;
  explicit PyFunction(py::object f) : fn(std::move(f)) {}
  ~PyFunction() {
    if (!Py_IsInitialized()) {
      fn.release();  // interpreter gone: leak rather than touch it
      return;
    }
    py::gil_scoped_acquire gil;
    fn = py::object();
  }
};

bool is_float_like(const py::handle& r) {
  if (py::isinstance<py::float_>(r)) return true;
  if (py::hasattr(r, "dtype") && py::hasattr(r, "ndim") && r.attr("ndim").cast<int>() == 0)
    return r.attr("dtype").attr("kind").cast<std::string>() == "f";
  return false;
}

std::string path_string(const py::object& p, const char* what) {
  try {
    return py::module_::import("os").attr("fspath")(p).cast<std::string>();
  } catch (const py::error_already_set&) {
    fail<TypeError>(what, " must be a str or os.PathLike. Received: ", py::repr(p).cast<std::string>());
  } catch (const py::cast_error&) {
    fail<TypeError>(what, " must be a str or os.PathLike. Received: ", py::repr(p).cast<std::string>());
  }
}

// save_freq: "epoch" -> 0, a positive int -> itself.
long long save_freq_of(const py::object& f, const char* who) {
  if (py::isinstance<py::str>(f) && f.cast<std::string>() == "epoch") return 0;
  if (py::isinstance<py::int_>(f) && !py::isinstance<py::bool_>(f)) {
    const long long n = f.cast<long long>();
    if (n > 0) return n;
  }
  fail<ValueError>("Unrecognized save_freq for ", who, ": ", py::repr(f).cast<std::string>(),
                   ". Expected 'epoch' or a positive integer (a number of batches).");
}

int verbose_of(const py::object& v) {
  if (py::isinstance<py::bool_>(v)) return v.cast<bool>() ? 1 : 0;
  if (py::isinstance<py::int_>(v)) return v.cast<int>();
  fail<TypeError>("verbose must be an integer (0 or 1). Received: verbose=", py::repr(v).cast<std::string>());
}

std::optional<double> optional_float(const py::object& o) {
  if (o.is_none()) return std::nullopt;
  return o.cast<double>();
}

template <class T>
py::dict named_lists(const std::vector<std::pair<std::string, std::vector<T>>>& h) {
  py::dict d;
  for (const auto& [k, v] : h) d[py::str(k)] = py::cast(v);
  return d;
}

}  // namespace

void prepare_callbacks(const std::vector<CallbackPtr>& callbacks) {
  for (const auto& cb : callbacks)
    if (auto* p = dynamic_cast<PyCallback*>(cb.get())) p->prepare();
}

void bind_callbacks(py::module_& m) {
  // Warnings from C++ callbacks become Python UserWarnings (pytest.warns and filters apply).
  set_warning_handler([](const std::string& message) {
    py::gil_scoped_acquire gil;
    if (PyErr_WarnEx(PyExc_UserWarning, message.c_str(), 1) < 0) throw py::error_already_set();
  });

  py::class_<Callback, PyCallback, std::shared_ptr<Callback>> cb(m, "Callback", py::dynamic_attr());
  cb.def(py::init<>());
  // No-op base hooks, so that subclasses may call super().on_epoch_end(epoch, logs).
  for (const char* name : {"on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
                           "on_predict_begin", "on_predict_end"})
    cb.def(name, [](Callback&, py::object) {}, py::arg("logs") = py::none());
  for (const char* name : {"on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                           "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                           "on_predict_batch_begin", "on_predict_batch_end", "on_batch_begin",
                           "on_batch_end"})
    cb.def(name, [](Callback&, long long, py::object) {}, py::arg("index"), py::arg("logs") = py::none());

  py::class_<History, Callback, std::shared_ptr<History>>(m, "History", py::dynamic_attr())
      .def(py::init<>())
      .def_property_readonly("history", [](const History& h) { return named_lists(h.history); })
      .def_property_readonly("epoch", [](const History& h) { return h.epoch; });

  // --- EarlyStopping ---------------------------------------------------------------------------
  py::class_<EarlyStopping, Callback, std::shared_ptr<EarlyStopping>>(m, "EarlyStopping", py::dynamic_attr())
      .def(py::init([](const std::string& monitor, double min_delta, int patience, py::object verbose,
                       std::string mode, py::object baseline, bool restore_best_weights, int start_from_epoch) {
             return std::make_shared<EarlyStopping>(monitor, min_delta, patience, verbose_of(verbose), mode,
                                                    optional_float(baseline), restore_best_weights, start_from_epoch);
           }),
           "monitor"_a = "val_loss", "min_delta"_a = 0.0, "patience"_a = 0, "verbose"_a = 0, "mode"_a = "auto",
           "baseline"_a = py::none(), "restore_best_weights"_a = false, "start_from_epoch"_a = 0)
      .def_readwrite("monitor", &EarlyStopping::monitor)
      .def_readonly("mode", &EarlyStopping::mode)
      .def_readwrite("min_delta", &EarlyStopping::min_delta)
      .def_readwrite("patience", &EarlyStopping::patience)
      .def_readwrite("verbose", &EarlyStopping::verbose)
      .def_readwrite("baseline", &EarlyStopping::baseline)
      .def_readwrite("restore_best_weights", &EarlyStopping::restore_best_weights)
      .def_readwrite("start_from_epoch", &EarlyStopping::start_from_epoch)
      .def_readwrite("wait", &EarlyStopping::wait)
      .def_readwrite("stopped_epoch", &EarlyStopping::stopped_epoch)
      .def_readwrite("best_epoch", &EarlyStopping::best_epoch)
      .def_readwrite("best", &EarlyStopping::best)
      .def_property_readonly("has_best_weights", &EarlyStopping::has_best_weights);

  // --- ReduceLROnPlateau -------------------------------------------------------------------------
  py::class_<ReduceLROnPlateau, Callback, std::shared_ptr<ReduceLROnPlateau>>(m, "ReduceLROnPlateau", py::dynamic_attr())
      .def(py::init([](const std::string& monitor, double factor, int patience, py::object verbose, std::string mode,
                       double min_delta, int cooldown, double min_lr, py::kwargs kwargs) {
             // Keras 2's `epsilon` is the old name of min_delta.
             if (kwargs.contains("epsilon")) min_delta = kwargs["epsilon"].cast<double>();
             for (auto item : kwargs)
               if (py::str(item.first).cast<std::string>() != "epsilon")
                 fail<TypeError>("Unrecognized keyword argument passed to ReduceLROnPlateau: ",
                                 py::str(item.first).cast<std::string>());
             return std::make_shared<ReduceLROnPlateau>(monitor, factor, patience, verbose_of(verbose), mode, min_delta,
                                                        cooldown, min_lr);
           }),
           "monitor"_a = "val_loss", "factor"_a = 0.1, "patience"_a = 10, "verbose"_a = 0, "mode"_a = "auto",
           "min_delta"_a = 1e-4, "cooldown"_a = 0, "min_lr"_a = 0.0)
      .def_readwrite("monitor", &ReduceLROnPlateau::monitor)
      .def_readonly("mode", &ReduceLROnPlateau::mode)
      .def_readwrite("factor", &ReduceLROnPlateau::factor)
      .def_readwrite("min_delta", &ReduceLROnPlateau::min_delta)
      .def_readwrite("min_lr", &ReduceLROnPlateau::min_lr)
      .def_readwrite("patience", &ReduceLROnPlateau::patience)
      .def_readwrite("verbose", &ReduceLROnPlateau::verbose)
      .def_readwrite("cooldown", &ReduceLROnPlateau::cooldown)
      .def_readwrite("cooldown_counter", &ReduceLROnPlateau::cooldown_counter)
      .def_readwrite("wait", &ReduceLROnPlateau::wait)
      .def_readwrite("best", &ReduceLROnPlateau::best)
      .def("in_cooldown", &ReduceLROnPlateau::in_cooldown);

  // --- ModelCheckpoint ---------------------------------------------------------------------------
  py::class_<ModelCheckpoint, Callback, std::shared_ptr<ModelCheckpoint>>(m, "ModelCheckpoint", py::dynamic_attr())
      .def(py::init([](py::object filepath, const std::string& monitor, py::object verbose, bool save_best_only,
                       bool save_weights_only, std::string mode, py::object save_freq,
                       py::object initial_value_threshold) {
             return std::make_shared<ModelCheckpoint>(path_string(filepath, "filepath"), monitor, verbose_of(verbose),
                                                      save_best_only, save_weights_only, mode,
                                                      save_freq_of(save_freq, "ModelCheckpoint"),
                                                      optional_float(initial_value_threshold));
           }),
           "filepath"_a, "monitor"_a = "val_loss", "verbose"_a = 0, "save_best_only"_a = false,
           "save_weights_only"_a = false, "mode"_a = "auto", "save_freq"_a = "epoch",
           "initial_value_threshold"_a = py::none())
      .def_readwrite("filepath", &ModelCheckpoint::filepath)
      .def_readwrite("monitor", &ModelCheckpoint::monitor)
      .def_readonly("mode", &ModelCheckpoint::mode)
      .def_readwrite("verbose", &ModelCheckpoint::verbose)
      .def_readwrite("save_best_only", &ModelCheckpoint::save_best_only)
      .def_readwrite("save_weights_only", &ModelCheckpoint::save_weights_only)
      .def_property_readonly("save_freq", [](const ModelCheckpoint& c) -> py::object {
        if (c.save_freq == 0) return py::str("epoch");
        return py::int_(c.save_freq);
      })
      .def_readwrite("best", &ModelCheckpoint::best)
      .def_property_readonly("last_saved", [](const ModelCheckpoint& c) -> py::object {
        if (c.last_saved.empty()) return py::none();
        return py::str(c.last_saved);
      });

  // --- LearningRateScheduler ---------------------------------------------------------------------
  py::class_<LearningRateScheduler, Callback, std::shared_ptr<LearningRateScheduler>>(m, "LearningRateScheduler",
                                                                                       py::dynamic_attr())
      .def(py::init([](py::object schedule, py::object verbose) {
             if (!PyCallable_Check(schedule.ptr()))
               fail<TypeError>("schedule must be a function (epoch, lr) -> lr. Received: ",
                               py::repr(schedule).cast<std::string>());
             auto fn = std::make_shared<PyFunction>(schedule);
             auto call = [fn](int epoch, double lr) -> double {
               py::gil_scoped_acquire gil;
               py::object r;
               try {
                 r = fn->fn(epoch, lr);
               } catch (py::error_already_set& e) {
                 // Keras: a schedule of the old form takes the epoch only.
                 if (!e.matches(PyExc_TypeError)) throw;
                 r = fn->fn(epoch);
               }
               if (!is_float_like(r))
                 fail<ValueError>("The output of the `schedule` function should be a float. Got: ",
                                  py::repr(r).cast<std::string>());
               return r.cast<double>();
             };
             auto self = std::make_shared<LearningRateScheduler>(call, verbose_of(verbose));
             return self;
           }),
           "schedule"_a, "verbose"_a = 0)
      .def_readwrite("verbose", &LearningRateScheduler::verbose);

  // --- CyclicLR ------------------------------------------------------------------------------------
  py::class_<CyclicLR, Callback, std::shared_ptr<CyclicLR>>(m, "CyclicLR", py::dynamic_attr())
      .def(py::init([](double base_lr, double max_lr, double step_size, const std::string& mode, double gamma,
                       py::object scale_fn, const std::string& scale_mode) {
             ScaleFunction f;
             if (!scale_fn.is_none()) {
               if (!PyCallable_Check(scale_fn.ptr()))
                 fail<TypeError>("scale_fn must be a function of one number. Received: ",
                                 py::repr(scale_fn).cast<std::string>());
               auto fn = std::make_shared<PyFunction>(scale_fn);
               f = [fn](double x) {
                 py::gil_scoped_acquire gil;
                 return fn->fn(x).cast<double>();
               };
             }
             return std::make_shared<CyclicLR>(base_lr, max_lr, step_size, mode, gamma, f, scale_mode);
           }),
           "base_lr"_a = 0.001, "max_lr"_a = 0.006, "step_size"_a = 2000.0, "mode"_a = "triangular",
           "gamma"_a = 1.0, "scale_fn"_a = py::none(), "scale_mode"_a = "cycle")
      .def_readwrite("base_lr", &CyclicLR::base_lr)
      .def_readwrite("max_lr", &CyclicLR::max_lr)
      .def_readwrite("step_size", &CyclicLR::step_size)
      .def_readonly("mode", &CyclicLR::mode)
      .def_readonly("gamma", &CyclicLR::gamma)
      .def_readonly("scale_mode", &CyclicLR::scale_mode)
      .def_readwrite("clr_iterations", &CyclicLR::clr_iterations)
      .def_readwrite("trn_iterations", &CyclicLR::trn_iterations)
      .def_property_readonly("history", [](const CyclicLR& c) { return named_lists(c.history); })
      .def("clr", &CyclicLR::clr, "The learning rate for the current iteration count.")
      .def(
          "_reset",
          [](CyclicLR& c, py::object base_lr, py::object max_lr, py::object step_size) {
            c.reset(optional_float(base_lr), optional_float(max_lr), optional_float(step_size));
          },
          "new_base_lr"_a = py::none(), "new_max_lr"_a = py::none(), "new_step_size"_a = py::none(),
          "Restart the cycle, optionally with new bounds or step size.");

  // --- CSVLogger, TerminateOnNaN, BackupAndRestore ---------------------------------------------
  py::class_<CSVLogger, Callback, std::shared_ptr<CSVLogger>>(m, "CSVLogger", py::dynamic_attr())
      .def(py::init([](py::object filename, const std::string& separator, bool append) {
             return std::make_shared<CSVLogger>(path_string(filename, "filename"), separator, append);
           }),
           "filename"_a, "separator"_a = ",", "append"_a = false)
      .def_readonly("filename", &CSVLogger::filename)
      .def_readonly("sep", &CSVLogger::separator)
      .def_readonly("append", &CSVLogger::append);

  py::class_<TerminateOnNaN, Callback, std::shared_ptr<TerminateOnNaN>>(m, "TerminateOnNaN", py::dynamic_attr())
      .def(py::init<bool>(), "raise_error"_a = false)
      .def_readwrite("raise_error", &TerminateOnNaN::raise_error);

  py::class_<BackupAndRestore, Callback, std::shared_ptr<BackupAndRestore>>(m, "BackupAndRestore", py::dynamic_attr())
      .def(py::init([](py::object backup_dir, py::object save_freq, bool delete_checkpoint) {
             if (backup_dir.is_none() || (py::isinstance<py::str>(backup_dir) && backup_dir.cast<std::string>().empty()))
               fail<ValueError>("Empty `backup_dir` argument passed");
             return std::make_shared<BackupAndRestore>(path_string(backup_dir, "backup_dir"),
                                                       save_freq_of(save_freq, "BackupAndRestore"), delete_checkpoint);
           }),
           "backup_dir"_a, "save_freq"_a = "epoch", "delete_checkpoint"_a = true)
      .def_readonly("backup_dir", &BackupAndRestore::backup_dir)
      .def_property_readonly("save_freq", [](const BackupAndRestore& c) -> py::object {
        if (c.save_freq == 0) return py::str("epoch");
        return py::int_(c.save_freq);
      })
      .def_readwrite("delete_checkpoint", &BackupAndRestore::delete_checkpoint)
      .def_property_readonly("backup_path", &BackupAndRestore::backup_path);

  m.def("get_rng_state", &get_rng_state, "The global random engine's state as text (for save/restore).");
  m.def("set_rng_state", &set_rng_state, "state"_a, "Restore a state returned by get_rng_state().");
  m.def("python_repr", &python_repr, "value"_a, "repr() of a float, as the C++ callbacks print it (for tests).");
  m.def(
      "format_template",
      [](const std::string& pattern, const py::dict& values) {
        std::vector<std::pair<std::string, long long>> ints;
        Logs logs;
        for (auto item : values) {
          const std::string k = py::str(item.first).cast<std::string>();
          if (py::isinstance<py::int_>(item.second)) ints.emplace_back(k, item.second.cast<long long>());
          else logs.set(k, item.second.cast<double>());
        }
        return format_template(pattern, ints, logs);
      },
      "pattern"_a, "values"_a, "ModelCheckpoint's file-name formatting (ints and floats), for tests.");
}

}  // namespace signcore::bindings
