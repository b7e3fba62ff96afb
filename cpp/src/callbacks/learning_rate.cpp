// Callbacks that set the learning rate: LearningRateScheduler (keras/src/callbacks/
// learning_rate_scheduler.py) and CyclicLR (the triangular / triangular2 / exp_range policies of
// Smith, "Cyclical Learning Rates for Training Neural Networks", arXiv:1506.01186).
#include <algorithm>
#include <cmath>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"

namespace signcore {

// ---------------------------------------------------------------------------------------------
// LearningRateScheduler

LearningRateScheduler::LearningRateScheduler(LearningRateSchedule schedule, int verbose_)
    : verbose(verbose_), schedule_(std::move(schedule)) {
  if (!schedule_) fail<ValueError>("LearningRateScheduler needs a schedule function. Received: None");
}

void LearningRateScheduler::on_epoch_begin(int epoch, Logs&) {
  Optimizer& opt = *compiled_model("LearningRateScheduler").optimizer();
  const double lr = schedule_(epoch, static_cast<double>(opt.learning_rate));
  if (!std::isfinite(lr) || lr < 0)
    fail<ValueError>("The output of the `schedule` function should be a finite float >= 0. Got: ", python_repr(lr));
  opt.set_learning_rate(static_cast<float>(lr));
  if (verbose > 0)
    print_msg("\nEpoch " + std::to_string(epoch + 1) + ": LearningRateScheduler setting learning rate to " +
              python_repr(lr) + ".");
}

void LearningRateScheduler::on_epoch_end(int, Logs& logs) {
  logs.set("learning_rate", static_cast<double>(compiled_model("LearningRateScheduler").optimizer()->learning_rate));
}

// ---------------------------------------------------------------------------------------------
// CyclicLR

CyclicLR::CyclicLR(double base_lr_, double max_lr_, double step_size_, std::string mode_, double gamma_,
                   ScaleFunction scale_fn, std::string scale_mode_)
    : base_lr(base_lr_), max_lr(max_lr_), step_size(step_size_), gamma(gamma_), mode(std::move(mode_)),
      scale_mode(std::move(scale_mode_)), scale_fn_(std::move(scale_fn)) {
  if (!(base_lr >= 0) || !std::isfinite(base_lr)) fail<ValueError>("base_lr must be >= 0. Received: base_lr=", base_lr);
  if (!(max_lr >= 0) || !std::isfinite(max_lr)) fail<ValueError>("max_lr must be >= 0. Received: max_lr=", max_lr);
  if (!(step_size > 0) || !std::isfinite(step_size))
    fail<ValueError>("step_size must be a positive number of iterations. Received: step_size=", step_size);
  if (!std::isfinite(gamma) || gamma <= 0) fail<ValueError>("gamma must be positive. Received: gamma=", gamma);
  if (!scale_fn_) {
    if (mode == "triangular" || mode == "triangular2") scale_mode = "cycle";
    else if (mode == "exp_range") scale_mode = "iterations";
    else fail<ValueError>("mode must be 'triangular', 'triangular2' or 'exp_range'. Received: mode='", mode, "'");
  } else if (scale_mode != "cycle" && scale_mode != "iterations") {
    fail<ValueError>("scale_mode must be 'cycle' or 'iterations'. Received: scale_mode='", scale_mode, "'");
  }
}

double CyclicLR::clr() const {
  const double cycle = std::floor(1.0 + clr_iterations / (2.0 * step_size));
  const double x = std::fabs(clr_iterations / step_size - 2.0 * cycle + 1.0);
  const double arg = scale_mode == "cycle" ? cycle : clr_iterations;
  double scale;
  if (scale_fn_) scale = scale_fn_(arg);
  else if (mode == "triangular") scale = 1.0;
  else if (mode == "triangular2") scale = 1.0 / std::pow(2.0, arg - 1.0);
  else scale = std::pow(gamma, arg);
  return base_lr + (max_lr - base_lr) * std::max(0.0, 1.0 - x) * scale;
}

void CyclicLR::reset(std::optional<double> new_base_lr, std::optional<double> new_max_lr,
                     std::optional<double> new_step_size) {
  if (new_base_lr) base_lr = *new_base_lr;
  if (new_max_lr) max_lr = *new_max_lr;
  if (new_step_size) {
    if (!(*new_step_size > 0)) fail<ValueError>("step_size must be positive. Received: step_size=", *new_step_size);
    step_size = *new_step_size;
  }
  clr_iterations = 0.0;
}

void CyclicLR::record(const std::string& key, double value) {
  for (auto& [k, v] : history)
    if (k == key) {
      v.push_back(value);
      return;
    }
  history.emplace_back(key, std::vector<double>{value});
}

void CyclicLR::on_train_begin(Logs&) {
  Optimizer& opt = *compiled_model("CyclicLR").optimizer();
  opt.set_learning_rate(static_cast<float>(clr_iterations == 0.0 ? base_lr : clr()));
}

void CyclicLR::on_train_batch_end(long long, Logs& logs) {
  Optimizer& opt = *compiled_model("CyclicLR").optimizer();
  trn_iterations += 1;
  clr_iterations += 1;
  record("lr", static_cast<double>(opt.learning_rate));  // the rate this batch was trained with
  record("iterations", trn_iterations);
  for (const auto& [k, v] : logs.items()) record(k, v);
  opt.set_learning_rate(static_cast<float>(clr()));
}

void CyclicLR::on_epoch_end(int, Logs& logs) {
  // Keras 3 style: the rate of the epoch's last batch.
  for (const auto& [k, v] : history)
    if (k == "lr" && !v.empty()) {
      logs.set("learning_rate", v.back());
      return;
    }
  logs.set("learning_rate", static_cast<double>(compiled_model("CyclicLR").optimizer()->learning_rate));
}

}  // namespace signcore
