// Callbacks: the Keras hooks, called by the model's batch loop. Logs keep insertion order
// (loss, metrics, then val_*), like Keras's dicts. Python subclasses override the same hooks.
//
// The built-in callbacks follow Keras 3 (keras/src/callbacks/*.py): the same arguments, defaults,
// decisions and messages. Messages go through the model's text sink (Python's sys.stdout) and only
// when the callback's verbose > 0; warnings go through the warning handler (Python's warnings).
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
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
  const double* find(const std::string& key) const;  // nullptr if absent
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

  // The epoch fit should start from, decided in on_train_begin (BackupAndRestore resuming an
  // interrupted run; Keras sets model._initial_epoch). -1: no opinion. fit asks every callback
  // after on_train_begin and starts from the last answer >= 0.
  virtual int resume_epoch() const { return -1; }

  Model* model() const { return model_; }
  const CallbackParams& params() const { return params_; }

 protected:
  // Keras's io_utils.print_msg: the text and a newline, through the model's text sink (stdout
  // when there is none).
  void print_msg(const std::string& text) const;
  // The model, compiled (StateError naming `who` otherwise).
  Model& compiled_model(const char* who) const;

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

// Keras's progress bar (Keras 2's text layout). verbose=1: "12/50 [=====>....] - ETA: 3s - loss:
// 0.6931", rewritten in place with "\r" at most every 0.05 s and finished with the epoch's time
// and per-step time; verbose=2: one line per epoch, "50/50 - 1s - loss: ... - 1s/epoch - 2ms/step".
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

// ---------------------------------------------------------------------------------------------
// Helpers shared by the built-in callbacks

// Warnings (Keras: warnings.warn). The default handler writes to stderr; the bindings install one
// that raises a Python UserWarning.
using WarningHandler = std::function<void(const std::string&)>;
void set_warning_handler(WarningHandler handler);
void warn(const std::string& message);

// repr() of a Python float: the shortest text that reads back to `v` ("0.001", "1e-05", "2.0").
std::string python_repr(double v);

// Python's str.format for a checkpoint path: "{epoch:02d}-{val_loss:.2f}.keras". Fields name an
// integer (`ints`) or a log value (`logs`); format specs [[fill]align][sign][0][width][.precision]
// [type] with types d, f, F, e, E, g, G, % or none, as Python formats them. "{{" and "}}" are
// braces. ValueError for an unknown field or a spec Python would reject.
std::string format_template(const std::string& pattern,
                            const std::vector<std::pair<std::string, long long>>& ints,
                            const Logs& logs);

// Whether a monitored quantity improves upwards: "min", "max", or "auto" (Keras 3's rule: up when
// the name, without "val_", contains "acc" or "auc", also "precision", "recall" or "f1"; down for
// the loss and everything else). An unknown mode warns (naming `who`) and falls back to "auto".
bool monitor_increases(std::string& mode, const std::string& monitor, const std::string& who);

// ---------------------------------------------------------------------------------------------
// Built-in callbacks

// Stop training when `monitor` has stopped improving (Keras EarlyStopping). An epoch improves when
// current - min_delta > best (max) or current + min_delta < best (min); `patience` epochs without
// improvement stop training (never after the first epoch). With restore_best_weights the weights
// of the best epoch are put back at the end of training, whether or not it stopped early.
class EarlyStopping : public Callback {
 public:
  EarlyStopping(std::string monitor = "val_loss", double min_delta = 0.0, int patience = 0,
                int verbose = 0, std::string mode = "auto", std::optional<double> baseline = std::nullopt,
                bool restore_best_weights = false, int start_from_epoch = 0);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;

  std::string monitor, mode;
  double min_delta;  // >= 0
  int patience, verbose;
  std::optional<double> baseline;
  bool restore_best_weights;
  int start_from_epoch;
  // State (Keras's attributes): epochs without improvement, the epoch training stopped (0 if it
  // did not), the best value and its epoch.
  int wait = 0, stopped_epoch = 0, best_epoch = 0;
  double best;
  bool has_best_weights() const { return !best_weights_.empty(); }

 private:
  bool improves(double value, double reference) const;
  bool increases_;
  std::vector<float> best_weights_;
};

// Multiply the learning rate by `factor` after `patience` epochs without improvement of `monitor`
// (Keras ReduceLROnPlateau). Improvement: current < best - min_delta (min) or current > best +
// min_delta (max). After a reduction, `cooldown` epochs pass before waiting starts again. The new
// rate is max(lr * factor, min_lr), applied only while lr > min_lr. Logs "learning_rate" (the rate
// used in the epoch) in every epoch's logs.
class ReduceLROnPlateau : public Callback {
 public:
  ReduceLROnPlateau(std::string monitor = "val_loss", double factor = 0.1, int patience = 10,
                    int verbose = 0, std::string mode = "auto", double min_delta = 1e-4, int cooldown = 0,
                    double min_lr = 0.0);
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  bool in_cooldown() const { return cooldown_counter > 0; }

  std::string monitor, mode;
  double factor, min_delta, min_lr;
  int patience, verbose, cooldown;
  int cooldown_counter = 0, wait = 0;
  double best;

 private:
  void reset();
  bool increases_;
};

// Save the model (or only its weights) after every epoch, every `save_freq` batches, or only when
// `monitor` improved (Keras ModelCheckpoint). `filepath` may hold {epoch} (1-based), {batch} and
// log fields with Python format specs, e.g. "ckpt-{epoch:02d}-{val_loss:.2f}.signcore". Files are
// written atomically (a temporary file renamed over the target). `best` persists across fit calls.
class ModelCheckpoint : public Callback {
 public:
  // save_freq: 0 = "epoch", n > 0 = every n training batches.
  ModelCheckpoint(std::string filepath, std::string monitor = "val_loss", int verbose = 0,
                  bool save_best_only = false, bool save_weights_only = false, std::string mode = "auto",
                  long long save_freq = 0, std::optional<double> initial_value_threshold = std::nullopt);
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_train_batch_end(long long batch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;

  std::string filepath, monitor, mode;
  int verbose;
  bool save_best_only, save_weights_only;
  long long save_freq;
  double best;
  std::string last_saved;  // path of the most recent file written ("" before any)

 private:
  void save(int epoch, long long batch, const Logs& logs);  // batch -1: end of epoch
  bool increases_;
  int current_epoch_ = 0;
  long long batches_since_save_ = 0;
};

// Set the learning rate at the start of every epoch to schedule(epoch, lr) (Keras
// LearningRateScheduler); logs "learning_rate" at the end of every epoch.
using LearningRateSchedule = std::function<double(int epoch, double lr)>;
class LearningRateScheduler : public Callback {
 public:
  explicit LearningRateScheduler(LearningRateSchedule schedule, int verbose = 0);
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  int verbose;

 private:
  LearningRateSchedule schedule_;
};

// Cyclical learning rates (Smith 2017, arXiv:1506.01186), updated after every training batch:
//   cycle = floor(1 + it / (2 step_size)),  x = |it / step_size - 2 cycle + 1|,
//   lr = base_lr + (max_lr - base_lr) * max(0, 1 - x) * scale(cycle or it)
// with scale 1 ("triangular"), 1 / 2^(cycle-1) ("triangular2") or gamma^it ("exp_range"), or a
// user scale_fn applied to the cycle ("cycle") or the iteration ("iterations"). `history` keeps,
// per batch, the rate used ("lr"), the iteration count ("iterations") and the batch logs. The
// iteration count carries over between fit calls (reset() starts again). Logs "learning_rate".
using ScaleFunction = std::function<double(double)>;
class CyclicLR : public Callback {
 public:
  CyclicLR(double base_lr = 0.001, double max_lr = 0.006, double step_size = 2000.0,
           std::string mode = "triangular", double gamma = 1.0, ScaleFunction scale_fn = nullptr,
           std::string scale_mode = "cycle");
  void on_train_begin(Logs& logs) override;
  void on_train_batch_end(long long batch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  // The rate for the current iteration count.
  double clr() const;
  // Start the cycle again, optionally with new bounds or step size (the seed's _reset).
  void reset(std::optional<double> base_lr = std::nullopt, std::optional<double> max_lr = std::nullopt,
             std::optional<double> step_size = std::nullopt);

  double base_lr, max_lr, step_size, gamma;
  std::string mode, scale_mode;
  double clr_iterations = 0.0, trn_iterations = 0.0;
  std::vector<std::pair<std::string, std::vector<double>>> history;

 private:
  void record(const std::string& key, double value);
  ScaleFunction scale_fn_;
};

// Write every epoch's logs to a CSV file (Keras CSVLogger): a header "epoch,<sorted keys>", then
// one row per epoch (0-based epoch, values as Python prints floats), "\r\n" line ends like
// Python's csv module. append=true continues an existing file without repeating the header.
class CSVLogger : public Callback {
 public:
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false);
  ~CSVLogger() override;
  void on_train_begin(Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;
  std::string filename, separator;
  bool append;

 private:
  void close();
  std::FILE* file_ = nullptr;
  std::vector<std::string> keys_;
  bool write_header_ = true;
};

// Stop training when a batch's loss is NaN or infinite (Keras TerminateOnNaN); raise_error=true
// raises a StateError (Python RuntimeError) instead of stopping gracefully.
class TerminateOnNaN : public Callback {
 public:
  explicit TerminateOnNaN(bool raise_error = false) : raise_error(raise_error) {}
  void on_train_batch_end(long long batch, Logs& logs) override;
  bool raise_error;
};

// Back up the whole training state at the end of every epoch (or every save_freq batches) into
// `backup_dir`, and restore it when fit starts again after an interruption (Keras
// BackupAndRestore): weights, optimizer state (slots, iterations, learning rate), the epoch to
// resume from and the global random state, so an interrupted run ends exactly where an
// uninterrupted one does. One file, backup_dir/latest.signcore (a model file whose metadata holds
// the epoch and the random state), written atomically. With delete_checkpoint the file (and the
// folder, once empty) is removed when training ends normally.
class BackupAndRestore : public Callback {
 public:
  explicit BackupAndRestore(std::string backup_dir, long long save_freq = 0, bool delete_checkpoint = true);
  void on_train_begin(Logs& logs) override;
  void on_epoch_begin(int epoch, Logs& logs) override;
  void on_train_batch_end(long long batch, Logs& logs) override;
  void on_epoch_end(int epoch, Logs& logs) override;
  void on_train_end(Logs& logs) override;
  int resume_epoch() const override { return resume_epoch_; }
  std::string backup_path() const;

  std::string backup_dir;
  long long save_freq;
  bool delete_checkpoint;

 private:
  void save(long long batch);
  void restore();
  int current_epoch_ = 0;  // the epoch a restart would begin with
  int resume_epoch_ = -1;
  long long batches_since_save_ = 0;
};

}  // namespace signcore
