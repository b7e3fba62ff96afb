// Callbacks: the Keras hooks, called by the model's batch loop. Logs keep insertion order
// (loss, metrics, then val_*), like Keras's dicts. Python subclasses override the same hooks.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace signcore {

class Model;

// An ordered name -> value map.
class Logs {
 public:
  void set(const std::string& key, double value);
  bool has(const std::string& key) const;
  double get(const std::string& key) const;  // KeyError-like std::out_of_range if absent
  const std::vector<std::pair<std::string, double>>& items() const { return items_; }
  void clear() { items_.clear(); }

 private:
  std::vector<std::pair<std::string, double>> items_;
};

// Training parameters passed to set_params (Keras: verbose, epochs, steps).
struct CallbackParams {
  int verbose = 1;
  int epochs = 1;
  long long steps = 0;
};

class Callback {
 public:
  virtual ~Callback() = default;
  virtual void set_model(Model* m) { model_ = m; }
  virtual void set_params(const CallbackParams& p) { params_ = p; }
  virtual void on_train_begin(Logs& logs) {}
  virtual void on_train_end(Logs& logs) {}
  virtual void on_epoch_begin(int epoch, Logs& logs) {}
  virtual void on_epoch_end(int epoch, Logs& logs) {}
  virtual void on_train_batch_begin(long long batch, Logs& logs) {}
  virtual void on_train_batch_end(long long batch, Logs& logs) {}
  virtual void on_test_begin(Logs& logs) {}
  virtual void on_test_end(Logs& logs) {}
  virtual void on_test_batch_begin(long long batch, Logs& logs) {}
  virtual void on_test_batch_end(long long batch, Logs& logs) {}
  virtual void on_predict_begin(Logs& logs) {}
  virtual void on_predict_end(Logs& logs) {}
  virtual void on_predict_batch_begin(long long batch, Logs& logs) {}
  virtual void on_predict_batch_end(long long batch, Logs& logs) {}

 protected:
  Model* model_ = nullptr;
  CallbackParams params_;
};

using CallbackPtr = std::shared_ptr<Callback>;

// Records every epoch's logs: history["loss"][epoch], ... (Keras History).
class History : public Callback {
 public:
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  std::vector<int> epoch;
  std::vector<std::pair<std::string, std::vector<double>>> history;
};

// Where text output goes (the bindings send it to Python's sys.stdout so it shows in Jupyter).
using TextSink = std::function<void(const std::string&)>;

// Keras's progress bar. verbose=1: a bar updated in place (at most every 0.05 s); verbose=2: one
// line per epoch.
class ProgbarLogger : public Callback {
 public:
  explicit ProgbarLogger(TextSink sink) : sink_(std::move(sink)) {}
  void on_train_begin(Logs& logs) override;
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_train_batch_end(long long batch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_test_begin(Logs& logs) override;
  void on_test_batch_end(long long batch, Logs& logs) override;
  void on_test_end(Logs& logs) override;
  void on_predict_begin(Logs& logs) override;
  void on_predict_batch_end(long long batch, Logs& logs) override;
  void on_predict_end(Logs& logs) override;
  // Used by evaluate/predict (which are not told the epochs).
  void set_target(long long steps, int verbose);

 private:
  void update(long long current, const Logs& logs, bool finalize);
  TextSink sink_;
  long long target_ = 0;
  int verbose_ = 1;
  bool in_fit_ = false;
  double last_update_ = -1;
  std::size_t last_width_ = 0;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace signcore
