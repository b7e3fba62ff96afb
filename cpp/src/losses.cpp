// Losses with Keras 3's equations (keras/src/losses/losses.py and the backends' nn.py). Each
// compute() returns the mean of the per-row losses and, when asked, the exact gradient of that
// computation with respect to y_pred (a clipped value gets a zero gradient, as with autodiff).
#include "signcore/losses.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

constexpr double kLo = kLossEpsilon, kHi = 1.0 - kLossEpsilon;
// Rows per parallel chunk: a row is a few dozen flops, so only large batches are split.
constexpr std::size_t kGrain = 256;

// How a (y_true, y_pred) pair is walked: `rows` samples of `cols` values each.
struct Layout {
  std::size_t rows = 0, cols = 0;
};

std::string shapes_msg(const Tensor& y_true, const Tensor& y_pred) {
  return "Received: y_true.shape=" + shape_str(shape_of(y_true), false) +
         ", y_pred.shape=" + shape_str(shape_of(y_pred), false);
}

// Drop one trailing axis of size 1 (Keras's squeeze_or_expand_to_same_rank).
Shape squeeze_last(Shape s) {
  if (!s.empty() && s.back() == 1) s.pop_back();
  return s;
}

// y_true and y_pred must have the same shape, or differ only by a trailing axis of size 1.
Layout same_layout(const std::string& loss, const Tensor& y_pred, const Tensor& y_true) {
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  bool ok = p == t;
  if (!ok && p.size() == t.size() + 1) ok = squeeze_last(p) == t;
  if (!ok && t.size() == p.size() + 1) ok = squeeze_last(t) == p;
  if (!ok || p.empty()) {
    std::string hint;
    if (loss == "categorical_crossentropy" && t.size() + 1 == p.size())
      hint = " (integer class labels need sparse_categorical_crossentropy)";
    fail<ValueError>(loss, ": y_true and y_pred must have the same shape", hint, ". ",
                     shapes_msg(y_true, y_pred));
  }
  Layout l;
  l.cols = p.back();
  l.rows = l.cols == 0 ? 0 : y_pred.size() / l.cols;
  return l;
}

// Run fn(row) over all rows in parallel chunks; per-row losses land in `out` (serially summed).
template <class Fn>
double sum_rows(std::size_t rows, Fn&& fn) {
  std::vector<double> per_row(rows);
  parallel_for(rows, kGrain, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; ++r) per_row[r] = fn(r);
  });
  double total = 0.0;
  for (double v : per_row) total += v;
  return total;
}

void prepare_grad(Tensor* dy, const Tensor& y_pred) {
  if (dy) ensure_shape(*dy, shape_of(y_pred));
}

bool read_bool(const json& config, const char* key, bool def) {
  if (!config.contains(key) || config[key].is_null()) return def;
  if (!config[key].is_boolean())
    fail<TypeError>("Loss argument '", key, "' must be a bool. Received: ", key, "=", config[key].dump());
  return config[key].get<bool>();
}

double read_number(const json& config, const char* key, double def) {
  if (!config.contains(key) || config[key].is_null()) return def;
  if (!config[key].is_number())
    fail<TypeError>("Loss argument '", key, "' must be a number. Received: ", key, "=", config[key].dump());
  return config[key].get<double>();
}

void check_smoothing(double s) {
  if (!(s >= 0.0 && s <= 1.0))
    fail<ValueError>("label_smoothing must be in [0, 1]. Received: label_smoothing=", s);
}

void check_name(const std::string& name) {
  if (name.empty()) fail<ValueError>("A loss name must not be empty. Received: name=''");
}

}  // namespace

json Loss::get_config() const { return json{{"name", name()}, {"reduction", "sum_over_batch_size"}}; }

json KerasLoss::get_config() const { return json{{"name", name_}, {"reduction", "sum_over_batch_size"}}; }

// --- CategoricalCrossentropy ----------------------------------------------------------------------

CategoricalCrossentropy::CategoricalCrossentropy(bool from_logits, double label_smoothing, std::string name)
    : KerasLoss(std::move(name)), from_logits_(from_logits), label_smoothing_(label_smoothing) {
  check_name(name_);
  check_smoothing(label_smoothing);
}

json CategoricalCrossentropy::get_config() const {
  json c = KerasLoss::get_config();
  c["from_logits"] = from_logits_;
  c["label_smoothing"] = label_smoothing_;
  c["axis"] = -1;
  return c;
}

double CategoricalCrossentropy::compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const {
  // y_pred, y_true: (N, C) -> mean over N of -sum_c t log p
  const Layout l = same_layout("categorical_crossentropy", y_pred, y_true);
  prepare_grad(dy_pred, y_pred);
  const std::size_t C = l.cols;
  const float* P = y_pred.data();
  const float* T = y_true.data();
  float* dP = dy_pred ? dy_pred->data() : nullptr;
  const double scale = 1.0 / static_cast<double>(std::max<std::size_t>(l.rows, 1));
  const double keep = 1.0 - label_smoothing_, spread = label_smoothing_ / static_cast<double>(C);

  const double total = sum_rows(l.rows, [&](std::size_t r) {
    const float* p = P + r * C;
    const float* t = T + r * C;
    float* dp = dP ? dP + r * C : nullptr;
    double loss = 0.0;
    if (from_logits_) {
      // log_softmax(z) = z - lse;  loss = sum_c t_c (lse - z_c);  dz_c = T softmax_c - t_c
      double m = p[0];
      for (std::size_t c = 1; c < C; ++c) m = std::max(m, static_cast<double>(p[c]));
      double se = 0.0;
      for (std::size_t c = 0; c < C; ++c) se += std::exp(p[c] - m);
      const double lse = m + std::log(se);
      double tsum = 0.0;
      for (std::size_t c = 0; c < C; ++c) {
        const double tc = t[c] * keep + spread;
        tsum += tc;
        loss += tc * (lse - p[c]);
      }
      if (dp)
        for (std::size_t c = 0; c < C; ++c) {
          const double tc = t[c] * keep + spread;
          dp[c] = static_cast<float>((tsum * std::exp(p[c] - lse) - tc) * scale);
        }
      return loss;
    }
    // q = p / s, k = clip(q);  loss = -sum t log k
    // dL/dq_c = -t_c / k_c inside the clip range, else 0;  dL/dp_j = (g_j - sum_c g_c q_c) / s
    double s = 0.0;
    for (std::size_t c = 0; c < C; ++c) s += p[c];
    double gq = 0.0;
    for (std::size_t c = 0; c < C; ++c) {
      const double tc = t[c] * keep + spread;
      const double q = p[c] / s;
      const double k = std::clamp(q, kLo, kHi);
      loss -= tc * std::log(k);
      if (q >= kLo && q <= kHi) gq += -tc / k * q;
    }
    if (dp)
      for (std::size_t c = 0; c < C; ++c) {
        const double tc = t[c] * keep + spread;
        const double q = p[c] / s;
        const double g = (q >= kLo && q <= kHi) ? -tc / q : 0.0;  // k == q inside the range
        dp[c] = static_cast<float>((g - gq) / s * scale);
      }
    return loss;
  });
  return total * scale;
}

// --- SparseCategoricalCrossentropy ----------------------------------------------------------------

SparseCategoricalCrossentropy::SparseCategoricalCrossentropy(bool from_logits, std::string name)
    : KerasLoss(std::move(name)), from_logits_(from_logits) {
  check_name(name_);
}

json SparseCategoricalCrossentropy::get_config() const {
  json c = KerasLoss::get_config();
  c["from_logits"] = from_logits_;
  c["ignore_class"] = nullptr;
  return c;
}

double SparseCategoricalCrossentropy::compute(const Tensor& y_pred, const Tensor& y_true,
                                              Tensor* dy_pred) const {
  // y_pred: (N, C), y_true: (N,) or (N, 1) -> mean over N of -log p[label]
  const Shape p_shape = shape_of(y_pred), t_shape = shape_of(y_true);
  if (p_shape.empty())
    fail<ValueError>("sparse_categorical_crossentropy: y_pred needs a class axis. ", shapes_msg(y_true, y_pred));
  const Shape lead(p_shape.begin(), p_shape.end() - 1);
  if (t_shape != lead && squeeze_last(t_shape) != lead) {
    std::string hint;
    if (t_shape == p_shape && p_shape.back() > 1) hint = " (one-hot labels need categorical_crossentropy)";
    fail<ValueError>("sparse_categorical_crossentropy: y_true must hold one class index per sample, shaped "
                     "like y_pred without its last axis (optionally with a trailing 1)", hint, ". ",
                     shapes_msg(y_true, y_pred));
  }
  const std::size_t C = p_shape.back();
  const std::size_t rows = y_true.size();
  if (C == 0 && rows > 0)
    fail<ValueError>("sparse_categorical_crossentropy: y_pred has no classes. ", shapes_msg(y_true, y_pred));
  const float* T = y_true.data();
  // Validate every label before any parallel work: nothing may throw inside a parallel region.
  for (std::size_t r = 0; r < rows; ++r) {
    const double v = T[r];
    if (!std::isfinite(v) || v != std::floor(v) || v < 0 || v >= static_cast<double>(C))
      fail<ValueError>("sparse_categorical_crossentropy expects integer class labels in [0, ", C,
                       ") for y_pred with ", C, " classes. Received: label=", v, " (sample ", r, ")");
  }
  prepare_grad(dy_pred, y_pred);
  const float* P = y_pred.data();
  float* dP = dy_pred ? dy_pred->data() : nullptr;
  const double scale = 1.0 / static_cast<double>(std::max<std::size_t>(rows, 1));

  const double total = sum_rows(rows, [&](std::size_t r) {
    const float* p = P + r * C;
    float* dp = dP ? dP + r * C : nullptr;
    const std::size_t y = static_cast<std::size_t>(T[r]);
    if (from_logits_) {
      double m = p[0];
      for (std::size_t c = 1; c < C; ++c) m = std::max(m, static_cast<double>(p[c]));
      double se = 0.0;
      for (std::size_t c = 0; c < C; ++c) se += std::exp(p[c] - m);
      const double lse = m + std::log(se);
      if (dp)
        for (std::size_t c = 0; c < C; ++c)
          dp[c] = static_cast<float>((std::exp(p[c] - lse) - (c == y ? 1.0 : 0.0)) * scale);
      return lse - p[y];
    }
    double s = 0.0;
    for (std::size_t c = 0; c < C; ++c) s += p[c];
    const double q = p[y] / s;
    const double k = std::clamp(q, kLo, kHi);
    if (dp) {
      // Only the label's term depends on q_y: g = -1/k inside the clip range.
      const double g = (q >= kLo && q <= kHi) ? -1.0 / k : 0.0;
      const double gq = g * q;
      for (std::size_t c = 0; c < C; ++c)
        dp[c] = static_cast<float>(((c == y ? g : 0.0) - gq) / s * scale);
    }
    return -std::log(k);
  });
  return total * scale;
}

// --- BinaryCrossentropy ---------------------------------------------------------------------------

BinaryCrossentropy::BinaryCrossentropy(bool from_logits, double label_smoothing, std::string name)
    : KerasLoss(std::move(name)), from_logits_(from_logits), label_smoothing_(label_smoothing) {
  check_name(name_);
  check_smoothing(label_smoothing);
}

json BinaryCrossentropy::get_config() const {
  json c = KerasLoss::get_config();
  c["from_logits"] = from_logits_;
  c["label_smoothing"] = label_smoothing_;
  c["axis"] = -1;
  return c;
}

double BinaryCrossentropy::compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const {
  // y_pred, y_true: (N, D) -> mean over N of mean over D of the element losses
  const Layout l = same_layout("binary_crossentropy", y_pred, y_true);
  prepare_grad(dy_pred, y_pred);
  const std::size_t D = l.cols;
  const float* P = y_pred.data();
  const float* T = y_true.data();
  float* dP = dy_pred ? dy_pred->data() : nullptr;
  const double scale = 1.0 / static_cast<double>(std::max<std::size_t>(l.rows, 1));
  const double escale = scale / static_cast<double>(std::max<std::size_t>(D, 1));
  const double keep = 1.0 - label_smoothing_, spread = 0.5 * label_smoothing_;

  const double total = sum_rows(l.rows, [&](std::size_t r) {
    const float* p = P + r * D;
    const float* t = T + r * D;
    float* dp = dP ? dP + r * D : nullptr;
    double loss = 0.0;
    for (std::size_t j = 0; j < D; ++j) {
      const double tj = t[j] * keep + spread;
      const double x = p[j];
      if (from_logits_) {
        loss += std::max(x, 0.0) - x * tj + std::log1p(std::exp(-std::abs(x)));
        if (dp) {
          const double sig = x >= 0 ? 1.0 / (1.0 + std::exp(-x)) : std::exp(x) / (1.0 + std::exp(x));
          dp[j] = static_cast<float>((sig - tj) * escale);
        }
      } else {
        const double k = std::clamp(x, kLo, kHi);
        loss -= tj * std::log(k) + (1.0 - tj) * std::log(1.0 - k);
        if (dp) {
          const double g = (x >= kLo && x <= kHi) ? (-tj / k + (1.0 - tj) / (1.0 - k)) : 0.0;
          dp[j] = static_cast<float>(g * escale);
        }
      }
    }
    return D ? loss / static_cast<double>(D) : 0.0;
  });
  return total * scale;
}

// --- MeanSquaredError / MeanAbsoluteError ---------------------------------------------------------

double MeanSquaredError::compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const {
  // y_pred, y_true: (N, D) -> mean over N of mean over D of (p - t)^2
  const Layout l = same_layout("mean_squared_error", y_pred, y_true);
  prepare_grad(dy_pred, y_pred);
  const std::size_t D = l.cols;
  const float* P = y_pred.data();
  const float* T = y_true.data();
  float* dP = dy_pred ? dy_pred->data() : nullptr;
  const double scale = 1.0 / static_cast<double>(std::max<std::size_t>(l.rows, 1));
  const double escale = 2.0 * scale / static_cast<double>(std::max<std::size_t>(D, 1));
  const double total = sum_rows(l.rows, [&](std::size_t r) {
    double loss = 0.0;
    for (std::size_t j = r * D; j < (r + 1) * D; ++j) {
      const double d = static_cast<double>(P[j]) - T[j];
      loss += d * d;
      if (dP) dP[j] = static_cast<float>(d * escale);
    }
    return D ? loss / static_cast<double>(D) : 0.0;
  });
  return total * scale;
}

double MeanAbsoluteError::compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const {
  // y_pred, y_true: (N, D) -> mean over N of mean over D of |p - t|
  const Layout l = same_layout("mean_absolute_error", y_pred, y_true);
  prepare_grad(dy_pred, y_pred);
  const std::size_t D = l.cols;
  const float* P = y_pred.data();
  const float* T = y_true.data();
  float* dP = dy_pred ? dy_pred->data() : nullptr;
  const double scale = 1.0 / static_cast<double>(std::max<std::size_t>(l.rows, 1));
  const double escale = scale / static_cast<double>(std::max<std::size_t>(D, 1));
  const double total = sum_rows(l.rows, [&](std::size_t r) {
    double loss = 0.0;
    for (std::size_t j = r * D; j < (r + 1) * D; ++j) {
      const double d = static_cast<double>(P[j]) - T[j];
      loss += std::abs(d);
      if (dP) dP[j] = static_cast<float>((d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0) * escale);
    }
    return D ? loss / static_cast<double>(D) : 0.0;
  });
  return total * scale;
}

// --- Lookup ---------------------------------------------------------------------------------------

std::string canonical_loss_name(const std::string& identifier) {
  // Compare without case and underscores: "CategoricalCrossentropy" == "categorical_crossentropy".
  std::string key;
  for (char c : identifier)
    if (c != '_') key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (key == "categoricalcrossentropy") return "categorical_crossentropy";
  if (key == "sparsecategoricalcrossentropy") return "sparse_categorical_crossentropy";
  if (key == "binarycrossentropy") return "binary_crossentropy";
  if (key == "meansquarederror" || key == "mse") return "mean_squared_error";
  if (key == "meanabsoluteerror" || key == "mae") return "mean_absolute_error";
  return "";
}

LossPtr make_loss(const std::string& name, const json& config) {
  const std::string canon = canonical_loss_name(name);
  if (canon.empty())
    fail<ValueError>("Unknown loss. Expected one of categorical_crossentropy, sparse_categorical_crossentropy, "
                     "binary_crossentropy, mean_squared_error (mse), mean_absolute_error (mae) or their class "
                     "names. Received: loss='", name, "'");
  if (!config.is_null() && !config.is_object())
    fail<TypeError>("A loss config must be a dict. Received: config=", config.dump());
  const json c = config.is_null() ? json::object() : config;

  // Accept exactly the keys get_config writes, with Keras's only supported values.
  std::vector<std::string> allowed = {"name", "reduction"};
  if (canon == "categorical_crossentropy" || canon == "binary_crossentropy")
    allowed.insert(allowed.end(), {"from_logits", "label_smoothing", "axis"});
  if (canon == "sparse_categorical_crossentropy") allowed.insert(allowed.end(), {"from_logits", "ignore_class"});
  for (auto it = c.begin(); it != c.end(); ++it)
    if (std::find(allowed.begin(), allowed.end(), it.key()) == allowed.end())
      fail<ValueError>("Unknown argument for loss '", canon, "'. Received: ", it.key(), "=", it.value().dump());
  if (c.contains("reduction") && !c["reduction"].is_null() && c["reduction"] != "sum_over_batch_size")
    fail<ValueError>("Only reduction='sum_over_batch_size' (the mean over the batch) is supported. Received: "
                     "reduction=", c["reduction"].dump());
  if (c.contains("axis") && !c["axis"].is_null() && c["axis"] != -1)
    fail<ValueError>("Only axis=-1 is supported. Received: axis=", c["axis"].dump());
  if (c.contains("ignore_class") && !c["ignore_class"].is_null())
    fail<ValueError>("ignore_class is not supported. Received: ignore_class=", c["ignore_class"].dump());
  std::string loss_name = canon;
  if (c.contains("name") && !c["name"].is_null()) {
    if (!c["name"].is_string()) fail<TypeError>("A loss name must be a string. Received: name=", c["name"].dump());
    loss_name = c["name"].get<std::string>();
  }

  const bool logits = read_bool(c, "from_logits", false);
  const double smoothing = read_number(c, "label_smoothing", 0.0);
  if (canon == "categorical_crossentropy")
    return std::make_shared<CategoricalCrossentropy>(logits, smoothing, loss_name);
  if (canon == "sparse_categorical_crossentropy")
    return std::make_shared<SparseCategoricalCrossentropy>(logits, loss_name);
  if (canon == "binary_crossentropy") return std::make_shared<BinaryCrossentropy>(logits, smoothing, loss_name);
  if (canon == "mean_squared_error") return std::make_shared<MeanSquaredError>(loss_name);
  return std::make_shared<MeanAbsoluteError>(loss_name);
}

}  // namespace signcore
