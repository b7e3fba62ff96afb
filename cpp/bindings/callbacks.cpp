// Callbacks: Python subclasses of signcore.callbacks.Callback are called from the C++ batch loop.
// The loop runs without the GIL; a hook takes it only if the Python class overrides that hook.
#include "bindings.hpp"
#include "signcore/callbacks.hpp"

namespace signcore::bindings {
namespace {

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
  void prepare() {
    for (int h = 0; h < HookCount; ++h) overridden_[h] = static_cast<bool>(py::get_override(this, kHookNames[h]));
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
    py::function f = py::get_override(this, kHookNames[h]);
    if (!f) return;
    py::dict d = logs_to_dict(logs);
    f(index..., d);
    dict_to_logs(d, logs);
  }
  bool overridden_[HookCount] = {};
};

}  // namespace

void prepare_callbacks(const std::vector<CallbackPtr>& callbacks) {
  for (const auto& cb : callbacks)
    if (auto* p = dynamic_cast<PyCallback*>(cb.get())) p->prepare();
}

void bind_callbacks(py::module_& m) {
  py::class_<Callback, PyCallback, std::shared_ptr<Callback>> cb(m, "Callback", py::dynamic_attr());
  cb.def(py::init<>());
  // No-op base hooks, so that subclasses may call super().on_epoch_end(epoch, logs).
  for (const char* name : {"on_train_begin", "on_train_end", "on_test_begin", "on_test_end",
                           "on_predict_begin", "on_predict_end"})
    cb.def(name, [](Callback&, py::object) {}, py::arg("logs") = py::none());
  for (const char* name : {"on_epoch_begin", "on_epoch_end", "on_train_batch_begin",
                           "on_train_batch_end", "on_test_batch_begin", "on_test_batch_end",
                           "on_predict_batch_begin", "on_predict_batch_end"})
    cb.def(name, [](Callback&, long long, py::object) {}, py::arg("index"), py::arg("logs") = py::none());

  py::class_<History, Callback, std::shared_ptr<History>>(m, "History", py::dynamic_attr())
      .def(py::init<>())
      .def_property_readonly("history", [](const History& h) {
        py::dict d;
        for (const auto& [k, v] : h.history) d[py::str(k)] = py::cast(v);
        return d;
      })
      .def_property_readonly("epoch", [](const History& h) { return h.epoch; });
}

}  // namespace signcore::bindings
