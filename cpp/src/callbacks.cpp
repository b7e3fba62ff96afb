#include "signcore/callbacks.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "signcore/errors.hpp"
#include "signcore/model.hpp"

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
  if (const double* v = find(key)) return *v;
  throw std::out_of_range("no '" + key + "' in logs");
}

const double* Logs::find(const std::string& key) const {
  for (const auto& kv : items_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Callback

void Callback::print_msg(const std::string& text) const {
  const std::string line = text + "\n";
  if (model_ && model_->text_sink) {
    model_->text_sink(line);
  } else {
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
  }
}

Model& Callback::compiled_model(const char* who) const {
  if (!model_) fail<StateError>(who, " is not attached to a model: pass it to fit(callbacks=[...])");
  if (!model_->compiled() || !model_->optimizer())
    fail<StateError>(who, " needs a compiled model (it reads the optimizer); call compile() first");
  return *model_;
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
  if (std::fabs(v) > 1e-3 || std::isnan(v) || std::isinf(v)) std::snprintf(buf, sizeof buf, "%.4f", v);
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
// Keras 2's _format_time: "2ms/step", "3s/epoch".
std::string format_per_step(double t, const char* unit = "step") {
  char buf[64];
  if (t >= 1 || t == 0) std::snprintf(buf, sizeof buf, "%.0fs/%s", t, unit);
  else if (t >= 1e-3) std::snprintf(buf, sizeof buf, "%.0fms/%s", t * 1e3, unit);
  else std::snprintf(buf, sizeof buf, "%.0fus/%s", t * 1e6, unit);
  return buf;
}
std::string format_seconds(double t) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.0fs", t);
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
    else line += " - " + format_seconds(now) + " " + format_per_step(per_step);
    line += format_logs(logs);
    std::string out = "\r" + line;
    if (line.size() < last_width_) out += std::string(last_width_ - line.size(), ' ');
    last_width_ = line.size();
    if (finalize) out += "\n";
    sink_(out);
  } else if (finalize) {
    // Keras 2: "50/50 - 1s - loss: 0.6931 - 1s/epoch - 20ms/step"
    line = std::to_string(target_) + "/" + std::to_string(target_) + " - " + format_seconds(now) +
           format_logs(logs) + " - " + format_per_step(now, "epoch") + " - " +
           format_per_step(target_ > 0 ? now / static_cast<double>(target_) : 0.0) + "\n";
    sink_(line);
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers for the built-in callbacks

namespace {
WarningHandler& warning_handler() {
  static WarningHandler handler;
  return handler;
}
}  // namespace

void set_warning_handler(WarningHandler handler) { warning_handler() = std::move(handler); }

void warn(const std::string& message) {
  if (const auto& h = warning_handler()) {
    h(message);
  } else {
    std::fprintf(stderr, "Warning: %s\n", message.c_str());
  }
}

std::string python_repr(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  if (v == 0.0) return std::signbit(v) ? "-0.0" : "0.0";
  // Shortest round-trip digits in scientific form, e.g. "-1.5e-05", then Python's layout: fixed
  // notation for decimal exponents in [-4, 16), scientific (two-digit exponent at least) otherwise.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const std::size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp = std::atoi(sci.c_str() + e + 1);
  std::string out;
  if (exp >= -4 && exp < 16) {
    if (exp >= 0) {
      const std::size_t int_len = static_cast<std::size_t>(exp) + 1;
      if (digits.size() <= int_len) out = digits + std::string(int_len - digits.size(), '0') + ".0";
      else out = digits.substr(0, int_len) + "." + digits.substr(int_len);
    } else {
      out = "0." + std::string(static_cast<std::size_t>(-exp - 1), '0') + digits;
    }
  } else {
    out = digits.substr(0, 1);
    if (digits.size() > 1) out += "." + digits.substr(1);
    char ebuf[16];
    std::snprintf(ebuf, sizeof ebuf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out += ebuf;
  }
  return sign + out;
}

namespace {

// One "{name:spec}" replacement, formatted as Python's format(value, spec) would.
std::string format_field(const std::string& name, const std::string& spec, bool is_int, long long iv,
                         double dv, const std::string& pattern) {
  auto bad = [&](const std::string& why) -> std::string {
    fail<ValueError>("Failed to format this callback filepath: \"", pattern, "\". Reason: ", why);
  };
  std::size_t i = 0;
  char fill = ' ', align = 0, sign = '-';
  auto is_align = [](char c) { return c == '<' || c == '>' || c == '=' || c == '^'; };
  if (spec.size() >= 2 && is_align(spec[1])) {
    fill = spec[0];
    align = spec[1];
    i = 2;
  } else if (!spec.empty() && is_align(spec[0])) {
    align = spec[0];
    i = 1;
  }
  if (i < spec.size() && (spec[i] == '+' || spec[i] == '-' || spec[i] == ' ')) sign = spec[i++];
  if (i < spec.size() && spec[i] == '0') {
    if (!align) {
      fill = '0';
      align = '=';
    }
    ++i;
  }
  std::size_t width = 0;
  while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) width = width * 10 + (spec[i++] - '0');
  int precision = -1;
  if (i < spec.size() && spec[i] == '.') {
    ++i;
    if (i >= spec.size() || !std::isdigit(static_cast<unsigned char>(spec[i]))) bad("Format specifier missing precision");
    precision = 0;
    while (i < spec.size() && std::isdigit(static_cast<unsigned char>(spec[i]))) precision = precision * 10 + (spec[i++] - '0');
  }
  char type = 0;
  if (i < spec.size()) type = spec[i++];
  if (i != spec.size()) bad("Invalid format specifier '" + spec + "' for field '" + name + "'");

  std::string body;
  bool negative = false;
  char buf[512];
  if (is_int && (type == 0 || type == 'd' || type == 'n')) {
    if (precision >= 0) bad("Precision not allowed in integer format specifier");
    negative = iv < 0;
    body = std::to_string(negative ? -iv : iv);
  } else {
    if (!is_int && (type == 'd' || type == 'n'))
      bad(std::string("Unknown format code '") + type + "' for object of type 'float'");
    const double v = is_int ? static_cast<double>(iv) : dv;
    negative = std::signbit(v) && !std::isnan(v);
    const double a = std::fabs(v);
    const int p = precision < 0 ? 6 : precision;
    switch (type) {
      case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
        const char f[] = {'%', '.', '*', type, 0};
        std::snprintf(buf, sizeof buf, f, p, a);
        body = buf;
        break;
      }
      case '%':
        std::snprintf(buf, sizeof buf, "%.*f%%", p, a * 100.0);
        body = buf;
        break;
      case 0:
        if (precision < 0) {
          body = is_int ? std::to_string(iv < 0 ? -iv : iv) : python_repr(a);
        } else {
          // Like 'g', but a fixed-point result keeps at least one decimal (Python: format(2.0, ".3") == "2.0").
          std::snprintf(buf, sizeof buf, "%.*g", std::max(precision, 1), a);
          body = buf;
          if (std::isfinite(a) && body.find_first_of(".e") == std::string::npos) body += ".0";
        }
        break;
      default:
        bad(std::string("Unknown format code '") + type + "' for field '" + name + "'");
    }
  }
  std::string sign_text = negative ? "-" : (sign == '+' ? "+" : (sign == ' ' ? " " : ""));
  std::string out;
  const std::size_t len = sign_text.size() + body.size();
  if (width <= len) {
    out = sign_text + body;
  } else {
    const std::size_t pad = width - len;
    if (!align) align = '>';  // numbers align right
    if (align == '=') out = sign_text + std::string(pad, fill) + body;
    else if (align == '<') out = sign_text + body + std::string(pad, fill);
    else if (align == '^') out = std::string(pad / 2, fill) + sign_text + body + std::string(pad - pad / 2, fill);
    else out = std::string(pad, fill) + sign_text + body;
  }
  return out;
}

}  // namespace

std::string format_template(const std::string& pattern,
                            const std::vector<std::pair<std::string, long long>>& ints, const Logs& logs) {
  std::string out;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '}') {
      if (i + 1 < pattern.size() && pattern[i + 1] == '}') {
        out += '}';
        ++i;
        continue;
      }
      fail<ValueError>("Failed to format this callback filepath: \"", pattern, "\". Reason: Single '}' encountered in format string");
    }
    if (c != '{') {
      out += c;
      continue;
    }
    if (i + 1 < pattern.size() && pattern[i + 1] == '{') {
      out += '{';
      ++i;
      continue;
    }
    const std::size_t close = pattern.find('}', i);
    if (close == std::string::npos)
      fail<ValueError>("Failed to format this callback filepath: \"", pattern, "\". Reason: Single '{' encountered in format string");
    const std::string field = pattern.substr(i + 1, close - i - 1);
    const std::size_t colon = field.find(':');
    const std::string name = field.substr(0, colon);
    const std::string spec = colon == std::string::npos ? "" : field.substr(colon + 1);
    bool found = false;
    for (const auto& [k, v] : ints)
      if (k == name) {
        out += format_field(name, spec, true, v, 0.0, pattern);
        found = true;
        break;
      }
    if (!found) {
      const double* v = logs.find(name);
      if (!v) {
        std::string keys;
        for (const auto& [k, _] : ints) keys += (keys.empty() ? "" : ", ") + k;
        for (const auto& [k, _] : logs.items()) keys += (keys.empty() ? "" : ", ") + k;
        fail<ValueError>("Failed to format this callback filepath: \"", pattern, "\". Reason: no value named '",
                         name, "' (available: ", keys, ")");
      }
      out += format_field(name, spec, false, 0, *v, pattern);
    }
    i = close;
  }
  return out;
}

bool monitor_increases(std::string& mode, const std::string& monitor, const std::string& who) {
  if (mode != "auto" && mode != "min" && mode != "max") {
    warn(who + " mode '" + mode + "' is unknown, fallback to auto mode.");
    mode = "auto";
  }
  if (mode == "min") return false;
  if (mode == "max") return true;
  std::string name = monitor.rfind("val_", 0) == 0 ? monitor.substr(4) : monitor;
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (name.size() >= 4 && name.compare(name.size() - 4, 4, "loss") == 0) return false;
  for (const char* up : {"acc", "auc", "precision", "recall", "f1"})
    if (name.find(up) != std::string::npos) return true;
  return false;
}

}  // namespace signcore
