// ReduceLROnPlateau, as keras/src/callbacks/reduce_lr_on_plateau.py.
#include <algorithm>
#include <cmath>
#include <limits>

#include "signcore/callbacks.hpp"
#include "signcore/errors.hpp"
#include "signcore/model.hpp"

namespace signcore {

ReduceLROnPlateau::ReduceLROnPlateau(std::string monitor_, double factor_, int patience_, int verbose_,
                                     std::string mode_, double min_delta_, int cooldown_, double min_lr_)
    : monitor(std::move(monitor_)),
      mode(std::move(mode_)),
      factor(factor_),
      min_delta(min_delta_),
      min_lr(min_lr_),
      patience(patience_),
      verbose(verbose_),
      cooldown(cooldown_) {
  if (monitor.empty()) fail<ValueError>("ReduceLROnPlateau needs a quantity to monitor. Received: monitor=''");
  if (!(factor < 1.0)) fail<ValueError>("ReduceLROnPlateau does not support a factor >= 1.0. Received factor=", factor);
  if (!(factor >= 0.0)) fail<ValueError>("ReduceLROnPlateau needs a factor >= 0. Received factor=", factor);
  if (patience < 0) fail<ValueError>("patience must be >= 0. Received: patience=", patience);
  if (cooldown < 0) fail<ValueError>("cooldown must be >= 0. Received: cooldown=", cooldown);
  if (!(min_lr >= 0.0) || !std::isfinite(min_lr)) fail<ValueError>("min_lr must be >= 0. Received: min_lr=", min_lr);
  if (!std::isfinite(min_delta)) fail<ValueError>("min_delta must be a finite number. Received: min_delta=", min_delta);
  increases_ = monitor_increases(mode, monitor, "ReduceLROnPlateau");
  reset();
}

void ReduceLROnPlateau::reset() {
  best = increases_ ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  cooldown_counter = 0;
  wait = 0;
}

void ReduceLROnPlateau::on_train_begin(Logs&) { reset(); }

void ReduceLROnPlateau::on_epoch_end(int epoch, Logs& logs) {
  Optimizer& opt = *compiled_model("ReduceLROnPlateau").optimizer();
  // The rate used during this epoch (a float32, read as a double like Keras's float(...)).
  const double old_lr = static_cast<double>(opt.learning_rate);
  logs.set("learning_rate", old_lr);
  const double* current = logs.find(monitor);
  if (!current) {
    std::string keys;
    for (const auto& [k, v] : logs.items()) keys += (keys.empty() ? "" : ",") + k;
    warn("Learning rate reduction is conditioned on metric `" + monitor +
         "` which is not available. Available metrics are: " + keys + ".");
    return;
  }
  if (in_cooldown()) {
    cooldown_counter -= 1;
    wait = 0;
  }
  const bool better = increases_ ? *current > best + min_delta : *current < best - min_delta;
  if (better) {
    best = *current;
    wait = 0;
  } else if (!in_cooldown()) {
    wait += 1;
    if (wait >= patience) {
      if (old_lr > static_cast<double>(static_cast<float>(min_lr))) {
        const double new_lr = std::max(old_lr * factor, min_lr);
        opt.set_learning_rate(static_cast<float>(new_lr));
        if (verbose > 0)
          print_msg("\nEpoch " + std::to_string(epoch + 1) + ": ReduceLROnPlateau reducing learning rate to " +
                    python_repr(static_cast<double>(opt.learning_rate)) + ".");
        cooldown_counter = cooldown;
        wait = 0;
      }
    }
  }
}

}  // namespace signcore
