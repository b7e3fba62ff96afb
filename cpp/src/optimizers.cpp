#include "signcore/optimizers.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <set>
#include <sstream>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

constexpr std::size_t kChunk = 1024;     // elements clipped into a stack buffer at a time
constexpr std::size_t kGrain = 1 << 15;  // elements below which a segment runs on one thread
constexpr std::size_t kNormBlock = 1 << 14;

// The shortest decimal that reads back as the same float, as a double: 0.001f -> 0.001 (not
// 0.0010000000474974513), so configs and the learning_rate property show what the user wrote.
double shortest(float f) {
  if (!std::isfinite(f)) return static_cast<double>(f);
  char buf[32];
  for (int digits = 6; digits <= 9; ++digits) {
    std::snprintf(buf, sizeof buf, "%.*g", digits, static_cast<double>(f));
    if (std::strtof(buf, nullptr) == f) break;
  }
  return std::strtod(buf, nullptr);
}

json optional_value(float v) { return v > 0.f ? json(shortest(v)) : json(nullptr); }

// Sum of squares in double. The blocks are fixed, so the result does not depend on the thread
// count; within a block eight lanes are summed and then added in order.
double sum_squares(const float* g, std::size_t n) {
  const std::size_t blocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(blocks, 0.0);
  parallel_for(blocks, 2, [&](std::size_t b0, std::size_t b1) {
    for (std::size_t b = b0; b < b1; ++b) {
      const std::size_t begin = b * kNormBlock, end = std::min(n, begin + kNormBlock);
      double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::size_t i = begin;
      for (; i + 8 <= end; i += 8)
        for (int k = 0; k < 8; ++k) lane[k] += static_cast<double>(g[i + k]) * g[i + k];
      double s = 0.0;
      for (int k = 0; k < 8; ++k) s += lane[k];
      for (; i < end; ++i) s += static_cast<double>(g[i]) * g[i];
      partial[b] = s;
    }
  });
  double total = 0.0;
  for (double p : partial) total += p;
  return total;
}

void check_finite(const char* what, double v) {
  if (!std::isfinite(v)) fail<ValueError>("`", what, "` must be a finite number. Received: ", what, "=", v);
}

void check_unit_interval(const char* what, double v, bool include_one) {
  check_finite(what, v);
  if (v < 0.0 || v > 1.0 || (!include_one && v == 1.0))
    fail<ValueError>("`", what, "` must be in the range [0, 1", include_one ? "]" : ")",
                     ". Received: ", what, "=", v);
}

void check_non_negative(const char* what, double v) {
  check_finite(what, v);
  if (v < 0.0) fail<ValueError>("`", what, "` must be >= 0. Received: ", what, "=", v);
}

}  // namespace

// --- Optimizer -----------------------------------------------------------------------------------

Optimizer::Optimizer(float lr) : learning_rate(lr) {
  // Zero is allowed (a frozen run, or a schedule starting at 0); negative or NaN is not.
  if (!(std::isfinite(lr) && lr >= 0.f))
    fail<ValueError>("`learning_rate` must be a non-negative number. Received: learning_rate=", lr);
}

void Optimizer::set_learning_rate(float lr) {
  if (!(std::isfinite(lr) && lr >= 0.f))
    fail<ValueError>("`learning_rate` must be a non-negative number. Received: learning_rate=", lr);
  learning_rate = lr;
}

void Optimizer::set_clipping(std::optional<float> cn, std::optional<float> cv,
                             std::optional<float> gcn) {
  const int set = int(cn.has_value()) + int(cv.has_value()) + int(gcn.has_value());
  auto show = [](const std::optional<float>& v) {
    std::ostringstream os;
    if (v) os << *v;
    else os << "None";
    return os.str();
  };
  if (set > 1)
    fail<ValueError>("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                     "Received: clipnorm=", show(cn), ", clipvalue=", show(cv),
                     ", global_clipnorm=", show(gcn));
  auto check = [](const char* what, const std::optional<float>& v) {
    if (v && !(std::isfinite(*v) && *v > 0.f))
      fail<ValueError>("`", what, "` must be a positive number or None. Received: ", what, "=", *v);
  };
  check("clipnorm", cn);
  check("clipvalue", cv);
  check("global_clipnorm", gcn);
  clipnorm = cn.value_or(-1.f);
  clipvalue = cv.value_or(-1.f);
  global_clipnorm = gcn.value_or(-1.f);
}

void Optimizer::set_weight_decay(std::optional<float> wd) {
  if (wd && !(std::isfinite(*wd) && *wd >= 0.f))
    fail<ValueError>("`weight_decay` must be a non-negative number or None. Received: weight_decay=", *wd);
  weight_decay = wd.value_or(0.f);
}

void Optimizer::build(const Parameters& params) {
  const std::size_t total = params.total();
  if (built_ && total == total_) return;
  const std::size_t k_slots = slots();
  state_.assign(k_slots * total, 0.f);
  for (std::size_t k = 0; k < k_slots; ++k) {
    const float v = slot_initial_value(k);
    if (v != 0.f) std::fill(state_.begin() + k * total, state_.begin() + (k + 1) * total, v);
  }
  total_ = total;
  built_ = true;
}

void Optimizer::restore(std::size_t total, std::vector<float> state) {
  if (state.size() != slots() * total)
    fail<ValueError>("optimizer state of ", class_name(), " for ", total, " parameters must hold ",
                     slots() * total, " values. Received: ", state.size(), " values");
  state_ = std::move(state);
  total_ = total;
  built_ = true;
}

void Optimizer::apply(Parameters& params) {
  const int clip_options = int(clipnorm > 0.f) + int(clipvalue > 0.f) + int(global_clipnorm > 0.f);
  if (clip_options > 1)
    fail<ValueError>("Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                     "Received: clipnorm=", clipnorm, ", clipvalue=", clipvalue,
                     ", global_clipnorm=", global_clipnorm);
  if (!(std::isfinite(learning_rate) && learning_rate >= 0.f))
    fail<ValueError>("`learning_rate` must be a non-negative number. Received: learning_rate=",
                     learning_rate);
  build(params);

  // Trainable segments with the factor their gradients are scaled by; neighbours with the same
  // factor are merged so a step is a few long loops rather than one per bias vector.
  struct Segment {
    std::size_t offset, size;
    float scale;
  };
  std::vector<Segment> segments;
  const float* grads = params.grads().data();
  double global_scale = 1.0;
  if (global_clipnorm > 0.f) {
    double sq = 0.0;
    for (const auto& w : params.weights())
      if (w.trainable) sq += sum_squares(grads + w.offset, w.size);
    const double norm = std::sqrt(sq);
    if (!std::isfinite(norm)) global_scale = std::numeric_limits<double>::quiet_NaN();
    else if (norm > global_clipnorm) global_scale = global_clipnorm / norm;
  }
  for (const auto& w : params.weights()) {
    if (!w.trainable || w.size == 0) continue;
    double scale = global_scale;
    if (clipnorm > 0.f) {
      // Keras: g * clipnorm / max(|g|, clipnorm)
      const double norm = std::sqrt(sum_squares(grads + w.offset, w.size));
      scale = clipnorm / std::max<double>(norm, clipnorm);
      if (std::isnan(norm)) scale = norm;
    }
    const float s = static_cast<float>(scale);
    if (!segments.empty() && segments.back().offset + segments.back().size == w.offset &&
        (segments.back().scale == s))
      segments.back().size += w.size;
    else
      segments.push_back({w.offset, w.size, s});
  }

  const float lr = learning_rate;
  prepare(iterations + 1, lr);
  const float decay = weight_decay > 0.f ? weight_decay * lr : 0.f;
  const float cv = clipvalue;
  const float inf = std::numeric_limits<float>::infinity();
  const std::size_t k_slots = slots();
  float* values = params.values().data();
  float* state = state_.data();
  const std::size_t total = total_;

  for (const auto& seg : segments) {
    const bool transform = seg.scale != 1.f || cv > 0.f;
    parallel_for(seg.size, kGrain, [&](std::size_t b, std::size_t e) {
      float* s[kMaxSlots] = {nullptr, nullptr, nullptr};
      float tmp[kChunk];
      for (std::size_t i = seg.offset + b, end = seg.offset + e; i < end; i += kChunk) {
        const std::size_t n = std::min(kChunk, end - i);
        float* w = values + i;
        const float* g = grads + i;
        if (transform) {
          const float scale = seg.scale, hi = cv > 0.f ? cv : inf, lo = -hi;
          for (std::size_t j = 0; j < n; ++j) {
            float t = g[j] * scale;
            t = t < lo ? lo : t;
            tmp[j] = t > hi ? hi : t;
          }
          g = tmp;
        }
        if (decay != 0.f)
          for (std::size_t j = 0; j < n; ++j) w[j] -= w[j] * decay;
        for (std::size_t k = 0; k < k_slots; ++k) s[k] = state + k * total + i;
        update(w, g, s, n);
      }
    });
  }
  ++iterations;
}

std::size_t Optimizer::variable_count(std::size_t trainable_params) const {
  return 2 + slots() * trainable_params;
}

json Optimizer::get_config() const {
  json c = json::object();
  c["name"] = name;
  c["learning_rate"] = shortest(learning_rate);
  c["weight_decay"] = optional_value(weight_decay);
  c["clipnorm"] = optional_value(clipnorm);
  c["global_clipnorm"] = optional_value(global_clipnorm);
  c["clipvalue"] = optional_value(clipvalue);
  return c;
}

// --- SGD -----------------------------------------------------------------------------------------

SGD::SGD(float lr, double momentum, bool nesterov)
    : Optimizer(lr), momentum_(momentum), nesterov_(nesterov) {
  if (!(std::isfinite(momentum) && momentum >= 0.0 && momentum <= 1.0))
    fail<ValueError>("`momentum` must be a float between [0, 1]. Received: momentum=", momentum);
  name = "SGD";
}

json SGD::get_config() const {
  json c = Optimizer::get_config();
  c["momentum"] = momentum_;
  c["nesterov"] = nesterov_;
  return c;
}

void SGD::prepare(long long, float lr) {
  lr_ = lr;
  m_ = static_cast<float>(momentum_);
}

void SGD::update(float* w, const float* g, float* const* s, std::size_t n) {
  const float lr = lr_, mu = m_;
  if (momentum_ == 0.0) {
    for (std::size_t i = 0; i < n; ++i) w[i] -= g[i] * lr;
    return;
  }
  float* v = s[0];
  if (nesterov_) {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = v[i] * mu - g[i] * lr;
      w[i] += v[i] * mu - g[i] * lr;
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = v[i] * mu - g[i] * lr;
      w[i] += v[i];
    }
  }
}

// --- Adam ----------------------------------------------------------------------------------------

Adam::Adam(float lr, double beta_1, double beta_2, double epsilon, bool amsgrad)
    : Optimizer(lr), beta_1_(beta_1), beta_2_(beta_2), epsilon_(epsilon), amsgrad_(amsgrad) {
  check_unit_interval("beta_1", beta_1, false);
  check_unit_interval("beta_2", beta_2, false);
  check_non_negative("epsilon", epsilon);
  name = "adam";
}

json Adam::get_config() const {
  json c = Optimizer::get_config();
  c["beta_1"] = beta_1_;
  c["beta_2"] = beta_2_;
  c["epsilon"] = epsilon_;
  c["amsgrad"] = amsgrad_;
  return c;
}

void Adam::prepare(long long step, float lr) {
  const double t = static_cast<double>(step);
  const double b1_power = std::pow(beta_1_, t), b2_power = std::pow(beta_2_, t);
  alpha_ = static_cast<float>(static_cast<double>(lr) * std::sqrt(1.0 - b2_power) / (1.0 - b1_power));
  c1_ = static_cast<float>(1.0 - beta_1_);
  c2_ = static_cast<float>(1.0 - beta_2_);
  eps_ = static_cast<float>(epsilon_);
}

void Adam::update(float* w, const float* g, float* const* s, std::size_t n) {
  const float alpha = alpha_, c1 = c1_, c2 = c2_, eps = eps_;
  float* m = s[0];
  float* v = s[1];
  if (amsgrad_) {
    float* vh = s[2];
    for (std::size_t i = 0; i < n; ++i) {
      m[i] += (g[i] - m[i]) * c1;
      v[i] += (g[i] * g[i] - v[i]) * c2;
      vh[i] = vh[i] > v[i] ? vh[i] : v[i];
      w[i] -= (m[i] * alpha) / (std::sqrt(vh[i]) + eps);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      m[i] += (g[i] - m[i]) * c1;
      v[i] += (g[i] * g[i] - v[i]) * c2;
      w[i] -= (m[i] * alpha) / (std::sqrt(v[i]) + eps);
    }
  }
}

// --- RMSprop -------------------------------------------------------------------------------------

RMSprop::RMSprop(float lr, double rho, double momentum, double epsilon, bool centered)
    : Optimizer(lr), rho_(rho), momentum_(momentum), epsilon_(epsilon), centered_(centered) {
  check_unit_interval("rho", rho, false);
  check_unit_interval("momentum", momentum, true);
  check_non_negative("epsilon", epsilon);
  name = "rmsprop";
}

json RMSprop::get_config() const {
  json c = Optimizer::get_config();
  c["rho"] = rho_;
  c["momentum"] = momentum_;
  c["epsilon"] = epsilon_;
  c["centered"] = centered_;
  return c;
}

void RMSprop::prepare(long long, float lr) {
  lr_ = lr;
  rho_f_ = static_cast<float>(rho_);
  one_minus_rho_ = static_cast<float>(1.0 - rho_);
  mom_ = static_cast<float>(momentum_);
  eps_ = static_cast<float>(epsilon_);
}

void RMSprop::update(float* w, const float* g, float* const* s, std::size_t n) {
  const float lr = lr_, rho = rho_f_, c = one_minus_rho_, mu = mom_, eps = eps_;
  float* v = s[0];
  float* mom = momentum_ > 0.0 ? s[1] : nullptr;
  float* avg = centered_ ? s[momentum_ > 0.0 ? 2 : 1] : nullptr;
  // Four plain loops rather than branches inside one, so each vectorises.
  if (!centered_ && !mom) {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = rho * v[i] + c * (g[i] * g[i]);
      w[i] -= (lr * g[i]) / std::sqrt(v[i] + eps);
    }
  } else if (!centered_) {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = rho * v[i] + c * (g[i] * g[i]);
      mom[i] = mu * mom[i] + (lr * g[i]) / std::sqrt(v[i] + eps);
      w[i] -= mom[i];
    }
  } else if (!mom) {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = rho * v[i] + c * (g[i] * g[i]);
      avg[i] = rho * avg[i] + c * g[i];
      w[i] -= (lr * g[i]) / std::sqrt(v[i] - avg[i] * avg[i] + eps);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      v[i] = rho * v[i] + c * (g[i] * g[i]);
      avg[i] = rho * avg[i] + c * g[i];
      mom[i] = mu * mom[i] + (lr * g[i]) / std::sqrt(v[i] - avg[i] * avg[i] + eps);
      w[i] -= mom[i];
    }
  }
}

// --- Adagrad -------------------------------------------------------------------------------------

Adagrad::Adagrad(float lr, double initial_accumulator_value, double epsilon)
    : Optimizer(lr), initial_accumulator_value_(initial_accumulator_value), epsilon_(epsilon) {
  check_non_negative("initial_accumulator_value", initial_accumulator_value);
  check_non_negative("epsilon", epsilon);
  name = "adagrad";
}

json Adagrad::get_config() const {
  json c = Optimizer::get_config();
  c["initial_accumulator_value"] = initial_accumulator_value_;
  c["epsilon"] = epsilon_;
  return c;
}

float Adagrad::slot_initial_value(std::size_t) const {
  return static_cast<float>(initial_accumulator_value_);
}

void Adagrad::prepare(long long, float lr) {
  lr_ = lr;
  eps_ = static_cast<float>(epsilon_);
}

void Adagrad::update(float* w, const float* g, float* const* s, std::size_t n) {
  const float lr = lr_, eps = eps_;
  float* acc = s[0];
  for (std::size_t i = 0; i < n; ++i) {
    acc[i] += g[i] * g[i];
    w[i] -= (lr * g[i]) / std::sqrt(acc[i] + eps);
  }
}

// --- Adadelta ------------------------------------------------------------------------------------

Adadelta::Adadelta(float lr, double rho, double epsilon) : Optimizer(lr), rho_(rho), epsilon_(epsilon) {
  check_unit_interval("rho", rho, false);
  check_non_negative("epsilon", epsilon);
  name = "adadelta";
}

json Adadelta::get_config() const {
  json c = Optimizer::get_config();
  c["rho"] = rho_;
  c["epsilon"] = epsilon_;
  return c;
}

void Adadelta::prepare(long long, float lr) {
  lr_ = lr;
  rho_f_ = static_cast<float>(rho_);
  one_minus_rho_ = static_cast<float>(1.0 - rho_);
  eps_ = static_cast<float>(epsilon_);
}

void Adadelta::update(float* w, const float* g, float* const* s, std::size_t n) {
  const float lr = lr_, rho = rho_f_, c = one_minus_rho_, eps = eps_;
  float* acc_g = s[0];
  float* acc_d = s[1];
  for (std::size_t i = 0; i < n; ++i) {
    acc_g[i] = rho * acc_g[i] + c * (g[i] * g[i]);
    const float d = -(std::sqrt(acc_d[i] + eps) * g[i]) / std::sqrt(acc_g[i] + eps);
    acc_d[i] = rho * acc_d[i] + c * (d * d);
    w[i] += lr * d;
  }
}

// --- make_optimizer ------------------------------------------------------------------------------

namespace {

// Reads a Keras-style config, remembering which keys were used so unknown ones can be reported.
class ConfigReader {
 public:
  ConfigReader(const json& c, std::string cls) : c_(c), cls_(std::move(cls)) {
    if (!c_.is_object() && !c_.is_null())
      fail<TypeError>("an optimizer config must be a dict. Received: ", c_.dump());
  }

  const json* find(const char* key) {
    used_.insert(key);
    if (!c_.is_object()) return nullptr;
    auto it = c_.find(key);
    return it == c_.end() ? nullptr : &*it;
  }

  double number(const char* key, double dflt) {
    const json* v = find(key);
    if (!v) return dflt;
    if (!v->is_number())
      fail<TypeError>("`", key, "` of ", cls_, " must be a number. Received: ", key, "=", v->dump());
    return v->get<double>();
  }

  std::optional<float> optional_number(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_number())
      fail<TypeError>("`", key, "` of ", cls_, " must be a number or None. Received: ", key, "=", v->dump());
    return static_cast<float>(v->get<double>());
  }

  bool flag(const char* key, bool dflt) {
    const json* v = find(key);
    if (!v) return dflt;
    if (!v->is_boolean())
      fail<TypeError>("`", key, "` of ", cls_, " must be True or False. Received: ", key, "=", v->dump());
    return v->get<bool>();
  }

  std::optional<std::string> text(const char* key) {
    const json* v = find(key);
    if (!v || v->is_null()) return std::nullopt;
    if (!v->is_string())
      fail<TypeError>("`", key, "` of ", cls_, " must be a string. Received: ", key, "=", v->dump());
    return v->get<std::string>();
  }

  // Keras 3 writes these into every optimizer config; accepted only with values that mean "off".
  void keras_extras() {
    if (const json* v = find("use_ema"); v && !v->is_null() && !(v->is_boolean() && !v->get<bool>()))
      fail<ValueError>("`use_ema` is not supported by signcore. Received: use_ema=", v->dump());
    for (const char* key : {"loss_scale_factor", "gradient_accumulation_steps"})
      if (const json* v = find(key); v && !v->is_null())
        fail<ValueError>("`", key, "` is not supported by signcore. Received: ", key, "=", v->dump());
    if (const json* v = find("decay"); v && !v->is_null() && !(v->is_number() && v->get<double>() == 0.0))
      fail<ValueError>("`decay` is no longer supported (use a learning-rate callback). Received: decay=",
                       v->dump());
    find("ema_momentum");  // meaningful only with use_ema
    find("ema_overwrite_frequency");
  }

  void finish() const {
    if (!c_.is_object()) return;
    for (auto it = c_.begin(); it != c_.end(); ++it)
      if (!used_.count(it.key()))
        fail<ValueError>("Argument(s) not recognized by ", cls_, ": '", it.key(), "'. Received: ",
                         it.key(), "=", it.value().dump());
  }

 private:
  const json& c_;
  std::string cls_;
  std::set<std::string> used_;
};

template <class T, class... Args>
OptimizerPtr finish_optimizer(ConfigReader& r, Args... args) {
  auto wd = r.optional_number("weight_decay");
  auto cn = r.optional_number("clipnorm");
  auto cv = r.optional_number("clipvalue");
  auto gcn = r.optional_number("global_clipnorm");
  auto nm = r.text("name");
  r.keras_extras();
  r.finish();
  auto opt = std::make_shared<T>(args...);
  opt->set_clipping(cn, cv, gcn);
  opt->set_weight_decay(wd);
  if (nm) opt->name = *nm;
  return opt;
}

float lr_of(ConfigReader& r, double dflt) {
  return static_cast<float>(r.number("learning_rate", dflt));
}

}  // namespace

OptimizerPtr make_optimizer(const std::string& name, const json& config) {
  std::string key = name;
  std::transform(key.begin(), key.end(), key.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (key == "sgd") {
    ConfigReader r(config, "SGD");
    const float lr = lr_of(r, 0.01);
    const double momentum = r.number("momentum", 0.0);
    const bool nesterov = r.flag("nesterov", false);
    return finish_optimizer<SGD>(r, lr, momentum, nesterov);
  }
  if (key == "adam") {
    ConfigReader r(config, "Adam");
    const float lr = lr_of(r, 0.001);
    const double b1 = r.number("beta_1", 0.9), b2 = r.number("beta_2", 0.999);
    const double eps = r.number("epsilon", 1e-7);
    const bool amsgrad = r.flag("amsgrad", false);
    return finish_optimizer<Adam>(r, lr, b1, b2, eps, amsgrad);
  }
  if (key == "rmsprop") {
    ConfigReader r(config, "RMSprop");
    const float lr = lr_of(r, 0.001);
    const double rho = r.number("rho", 0.9), momentum = r.number("momentum", 0.0);
    const double eps = r.number("epsilon", 1e-7);
    const bool centered = r.flag("centered", false);
    return finish_optimizer<RMSprop>(r, lr, rho, momentum, eps, centered);
  }
  if (key == "adagrad") {
    ConfigReader r(config, "Adagrad");
    const float lr = lr_of(r, 0.001);
    const double init = r.number("initial_accumulator_value", 0.1), eps = r.number("epsilon", 1e-7);
    return finish_optimizer<Adagrad>(r, lr, init, eps);
  }
  if (key == "adadelta") {
    ConfigReader r(config, "Adadelta");
    const float lr = lr_of(r, 0.001);
    const double rho = r.number("rho", 0.95), eps = r.number("epsilon", 1e-7);
    return finish_optimizer<Adadelta>(r, lr, rho, eps);
  }
  fail<ValueError>("Could not interpret optimizer identifier: '", name,
                   "'. Expected one of 'sgd', 'adam', 'rmsprop', 'adagrad', 'adadelta'. Received: ",
                   "optimizer='", name, "'");
}

}  // namespace signcore
