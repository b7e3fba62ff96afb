#include "signcore/callbacks.hpp"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace signcore {

// ---------------------------------------------------------------------------------------------
// Logs

void Logs::set(const std::string& key, double value) {
  for (auto& kv : items_)
    if (kv.first == key) {
      kv.second = value;
      return;
    }
  items_.emplace_back(key, value);
}

bool Logs::has(const std::string& key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return true;
  return false;
}

double Logs::get(const std::string& key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return kv.second;
  throw std::out_of_range("no '" + key + "' in logs");
}

// ---------------------------------------------------------------------------------------------
// History

void History::on_train_begin(Logs&) {
  // Keras keeps one History per fit call.
  epoch.clear();
  history.clear();
}

void History::on_epoch_end(int e, Logs& logs) {
  epoch.push_back(e);
  for (const auto& [key, value] : logs.items()) {
    auto it = history.begin();
    for (; it != history.end(); ++it)
      if (it->first == key) break;
    if (it == history.end()) {
      // A key that appears late (e.g. learning_rate) is padded for the epochs it missed? Keras
      // does not pad: its list is simply shorter. Do the same.
      history.emplace_back(key, std::vector<double>{});
      it = history.end() - 1;
    }
    it->second.push_back(value);
  }
}

// ---------------------------------------------------------------------------------------------
// ProgbarLogger: Keras 2's text layout

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
std::string format_value(double v) {
  char buf[64];
  if (std::fabs(v) > 1e-3 || v == 0.0) std::snprintf(buf, sizeof buf, "%.4f", v);
  else std::snprintf(buf, sizeof buf, "%.4e", v);
  return buf;
}
std::string format_eta(double eta) {
  char buf[64];
  const long s = static_cast<long>(eta);
  if (eta > 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, (s % 3600) / 60, s % 60);
  else if (eta > 60) std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%lds", s);
  return buf;
}
std::string format_per_step(double t) {
  char buf[64];
  if (t >= 1) std::snprintf(buf, sizeof buf, "%.0fs/step", t);
  else if (t >= 1e-3) std::snprintf(buf, sizeof buf, "%.0fms/step", t * 1e3);
  else std::snprintf(buf, sizeof buf, "%.0fus/step", t * 1e6);
  return buf;
}
std::string format_logs(const Logs& logs) {
  std::string s;
  for (const auto& [k, v] : logs.items()) s += " - " + k + ": " + format_value(v);
  return s;
}
}  // namespace

void ProgbarLogger::set_target(long long steps, int verbose) {
  target_ = steps;
  verbose_ = verbose;
}

void ProgbarLogger::on_train_begin(Logs&) {
  in_fit_ = true;
  verbose_ = params_.verbose;
  target_ = params_.steps;
}

void ProgbarLogger::on_epoch_begin(int epoch, Logs&) {
  start_ = std::chrono::steady_clock::now();
  last_update_ = -1;
  last_width_ = 0;
  if (verbose_)
    sink_("Epoch " + std::to_string(epoch + 1) + "/" + std::to_string(params_.epochs) + "\n");
}

void ProgbarLogger::on_train_batch_end(long long batch, Logs& logs) {
  if (verbose_ == 1) update(batch + 1, logs, false);
}

void ProgbarLogger::on_epoch_end(int, Logs& logs) { update(target_, logs, true); }

void ProgbarLogger::on_test_begin(Logs&) {
  if (in_fit_) return;
  start_ = std::chrono::steady_clock::now();
  last_update_ = -1;
  last_width_ = 0;
}
void ProgbarLogger::on_test_batch_end(long long batch, Logs& logs) {
  if (!in_fit_ && verbose_ == 1) update(batch + 1, logs, false);
}
void ProgbarLogger::on_test_end(Logs& logs) {
  if (!in_fit_) update(target_, logs, true);
}
void ProgbarLogger::on_predict_begin(Logs& logs) { on_test_begin(logs); }
void ProgbarLogger::on_predict_batch_end(long long batch, Logs& logs) {
  if (verbose_ == 1) update(batch + 1, logs, false);
}
void ProgbarLogger::on_predict_end(Logs& logs) { update(target_, logs, true); }

void ProgbarLogger::update(long long current, const Logs& logs, bool finalize) {
  if (!sink_ || verbose_ == 0) return;
  const double now = seconds_since(start_);
  if (!finalize && last_update_ >= 0 && now - last_update_ < 0.05 && current < target_) return;
  last_update_ = now;
  const double per_step = current > 0 ? now / static_cast<double>(current) : 0.0;
  std::string line;
  if (verbose_ == 1) {
    const std::string t = std::to_string(target_);
    std::string c = std::to_string(current);
    if (c.size() < t.size()) c.insert(0, t.size() - c.size(), ' ');
    line = c + "/" + t + " [";
    const int width = 30;
    const int filled = target_ > 0 ? static_cast<int>(width * static_cast<double>(current) / target_) : width;
    if (filled > 0) {
      line += std::string(filled - 1, '=');
      line += current < target_ ? '>' : '=';
    }
    line += std::string(width - std::max(filled, 0), '.');
    line += "]";
    if (!finalize) line += " - ETA: " + format_eta(per_step * static_cast<double>(target_ - current));
    else line += " - " + std::to_string(static_cast<long>(now)) + "s " + format_per_step(per_step);
    line += format_logs(logs);
    std::string out = "\r" + line;
    if (line.size() < last_width_) out += std::string(last_width_ - line.size(), ' ');
    last_width_ = line.size();
    if (finalize) out += "\n";
    sink_(out);
  } else if (finalize) {
    line = std::to_string(target_) + "/" + std::to_string(target_) + " - " +
           std::to_string(static_cast<long>(now)) + "s" + format_logs(logs) + " - " +
           format_per_step(per_step) + "\n";
    sink_(line);
  }
}

}  // namespace signcore
