// ModelCheckpoint, as keras/src/callbacks/model_checkpoint.py (Keras 3), writing signcore files.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"
#include "signcore/serialization.hpp"

namespace signcore {

namespace {
// Python's f"{x:.5f}" (inf prints as "inf").
std::string fixed5(double v) {
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (std::isnan(v)) return "nan";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.5f", v);
  return buf;
}
}  // namespace

ModelCheckpoint::ModelCheckpoint(std::string filepath_, std::string monitor_, int verbose_, bool save_best_only_,
                                 bool save_weights_only_, std::string mode_, long long save_freq_,
                                 std::optional<double> initial_value_threshold)
    : filepath(std::move(filepath_)),
      monitor(std::move(monitor_)),
      mode(std::move(mode_)),
      verbose(verbose_),
      save_best_only(save_best_only_),
      save_weights_only(save_weights_only_),
      save_freq(save_freq_) {
  if (filepath.empty()) fail<ValueError>("ModelCheckpoint needs a file path. Received: filepath=''");
  if (save_freq < 0)
    fail<ValueError>("Unrecognized save_freq: ", save_freq, ". Expected save_freq are 'epoch' or positive integer values");
  increases_ = monitor_increases(mode, monitor, "ModelCheckpoint");
  best = initial_value_threshold ? *initial_value_threshold
                                 : (increases_ ? -std::numeric_limits<double>::infinity()
                                               : std::numeric_limits<double>::infinity());
}

void ModelCheckpoint::on_epoch_begin(int epoch, Logs&) { current_epoch_ = epoch; }

void ModelCheckpoint::on_train_batch_end(long long batch, Logs& logs) {
  if (save_freq <= 0) return;
  if (++batches_since_save_ >= save_freq) {
    batches_since_save_ = 0;
    save(current_epoch_, batch, logs);
  }
}

void ModelCheckpoint::on_epoch_end(int epoch, Logs& logs) {
  if (save_freq == 0) save(epoch, -1, logs);
}

void ModelCheckpoint::save(int epoch, long long batch, const Logs& logs) {
  if (!model_) fail<StateError>("ModelCheckpoint is not attached to a model");
  std::vector<std::pair<std::string, long long>> ints{{"epoch", epoch + 1}};
  if (batch >= 0) ints.emplace_back("batch", batch + 1);
  const std::string path = format_template(filepath, ints, logs);
  const std::string at = "\nEpoch " + std::to_string(epoch + 1) + ": ";
  if (save_best_only) {
    const double* current = logs.find(monitor);
    if (!current) {
      warn("Can save best model only with " + monitor + " available, skipping.");
      return;
    }
    const bool better = increases_ ? *current > best : *current < best;
    if (!better) {
      if (verbose > 0) print_msg(at + monitor + " did not improve from " + fixed5(best));
      return;
    }
    if (verbose > 0)
      print_msg(at + monitor + " improved from " + fixed5(best) + " to " + fixed5(*current) + ", saving model to " + path);
    best = *current;
  } else if (verbose > 0) {
    print_msg(at + "saving model to " + path);
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    fail<IOError>("Please specify a non-directory filepath for ModelCheckpoint. Filepath used is an existing directory: ", path);
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::exists(parent, ec)) {
    fs::create_directories(parent, ec);
    if (ec) fail<IOError>("ModelCheckpoint cannot create the folder '", parent.string(), "': ", ec.message());
  }
  if (save_weights_only) save_weights(*model_, path);
  else save_model(*model_, path, true, json{{"saved_by", "ModelCheckpoint"}});
  last_saved = path;
}

}  // namespace signcore
