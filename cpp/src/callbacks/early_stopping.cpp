// EarlyStopping, as keras/src/callbacks/early_stopping.py.
#include <cmath>
#include <limits>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"

namespace signcore {

namespace {
std::string available_keys(const Logs& logs) {
  std::string s;
  for (const auto& [k, v] : logs.items()) s += (s.empty() ? "" : ",") + k;
  return s;
}
}  // namespace

EarlyStopping::EarlyStopping(std::string monitor_, double min_delta_, int patience_, int verbose_,
                             std::string mode_, std::optional<double> baseline_, bool restore_best_weights_,
                             int start_from_epoch_)
    : monitor(std::move(monitor_)),
      mode(std::move(mode_)),
      min_delta(std::fabs(min_delta_)),
      patience(patience_),
      verbose(verbose_),
      baseline(baseline_),
      restore_best_weights(restore_best_weights_),
      start_from_epoch(start_from_epoch_) {
  if (monitor.empty()) fail<ValueError>("EarlyStopping needs a quantity to monitor. Received: monitor=''");
  if (patience < 0) fail<ValueError>("patience must be >= 0. Received: patience=", patience);
  if (start_from_epoch < 0) fail<ValueError>("start_from_epoch must be >= 0. Received: start_from_epoch=", start_from_epoch);
  if (!std::isfinite(min_delta)) fail<ValueError>("min_delta must be a finite number. Received: min_delta=", min_delta_);
  increases_ = monitor_increases(mode, monitor, "EarlyStopping");
  best = increases_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
}

bool EarlyStopping::improves(double value, double reference) const {
  return increases_ ? value - min_delta > reference : value + min_delta < reference;
}

void EarlyStopping::on_train_begin(Logs&) {
  // Allow instances to be re-used.
  wait = 0;
  stopped_epoch = 0;
  best_epoch = 0;
  best = increases_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  best_weights_.clear();
}

void EarlyStopping::on_epoch_end(int epoch, Logs& logs) {
  const double* current = logs.find(monitor);
  if (!current) {
    warn("Early stopping conditioned on metric `" + monitor + "` which is not available. Available metrics are: " +
         available_keys(logs));
    return;
  }
  if (epoch < start_from_epoch) return;  // warm-up
  if (!model_) fail<StateError>("EarlyStopping is not attached to a model");
  if (restore_best_weights && best_weights_.empty()) {
    // If no epoch improved yet, the current weights are the best so far.
    best_weights_ = model_->params().values();
    best_epoch = epoch;
  }
  wait += 1;
  if (improves(*current, best)) {
    best = *current;
    best_epoch = epoch;
    if (restore_best_weights) best_weights_ = model_->params().values();
    // Restart waiting only when beating both the baseline and the previous best.
    if (!baseline || improves(*current, *baseline)) wait = 0;
    return;
  }
  if (wait >= patience && epoch > 0) {
    stopped_epoch = epoch;
    model_->stop_training = true;
  }
}

void EarlyStopping::on_train_end(Logs&) {
  if (stopped_epoch > 0 && verbose > 0) print_msg("Epoch " + std::to_string(stopped_epoch + 1) + ": early stopping");
  if (restore_best_weights && !best_weights_.empty() && model_) {
    if (verbose > 0)
      print_msg("Restoring model weights from the end of the best epoch: " + std::to_string(best_epoch + 1) + ".");
    auto& values = model_->params().values();
    if (values.size() == best_weights_.size()) values = best_weights_;
  }
}

}  // namespace signcore
