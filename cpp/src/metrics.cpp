// Streaming metrics with Keras 3's definitions (keras/src/metrics/accuracy_metrics.py) and the
// resolution of "accuracy" (keras/src/trainers/compile_utils.py), plus the confusion matrix.
#include "signcore/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "signcore/errors.hpp"
#include "signcore/losses.hpp"

namespace signcore {

namespace {

std::string shapes_msg(const Tensor& y_true, const Tensor& y_pred) {
  return "Received: y_true.shape=" + shape_str(shape_of(y_true), false) +
         ", y_pred.shape=" + shape_str(shape_of(y_pred), false);
}

Shape squeeze_last(Shape s) {
  if (!s.empty() && s.back() == 1) s.pop_back();
  return s;
}

// Same shape, or equal once a trailing axis of size 1 is dropped from the longer one.
void expect_same(const std::string& metric, const Tensor& y_true, const Tensor& y_pred) {
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  bool ok = p == t;
  if (!ok && p.size() == t.size() + 1) ok = squeeze_last(p) == t;
  if (!ok && t.size() == p.size() + 1) ok = squeeze_last(t) == p;
  if (!ok) fail<ValueError>(metric, ": y_true and y_pred must have the same shape. ", shapes_msg(y_true, y_pred));
}

// Index of the first maximum of x[0..n) (NaN never wins).
std::size_t argmax(const float* x, std::size_t n) {
  std::size_t best = 0;
  for (std::size_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

std::string lower_no_underscores(const std::string& s) {
  std::string k;
  for (char c : s)
    if (c != '_') k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k;
}

}  // namespace

json Metric::get_config() const { return json{{"name", name_}, {"dtype", "float32"}}; }

void Mean::update_state(const Tensor& values, const Tensor& /*y_pred*/) {
  double s = 0.0;
  for (std::size_t i = 0; i < values.size(); ++i) s += values.data()[i];
  add(s, static_cast<double>(values.size()));
}

void SparseCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // y_pred: (N, C), y_true: (N,) or (N, 1)
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  if (p.empty() || (t != Shape(p.begin(), p.end() - 1) && squeeze_last(t) != Shape(p.begin(), p.end() - 1)))
    fail<ValueError>(name_, ": y_true must hold one class index per sample, shaped like y_pred without its "
                     "last axis. ", shapes_msg(y_true, y_pred));
  const std::size_t C = p.back(), rows = y_true.size();
  if (C == 0) {
    add(0.0, static_cast<double>(rows));
    return;
  }
  double hits = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    hits += static_cast<double>(argmax(y_pred.data() + r * C, C)) == static_cast<double>(y_true.data()[r]);
  add(hits, static_cast<double>(rows));
}

void CategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // y_pred, y_true: (N, C)
  expect_same(name_, y_true, y_pred);
  const Shape p = shape_of(y_pred);
  const std::size_t C = p.empty() ? 1 : p.back();
  const std::size_t rows = C ? y_pred.size() / C : 0;
  double hits = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    hits += argmax(y_pred.data() + r * C, C) == argmax(y_true.data() + r * C, C);
  add(hits, static_cast<double>(rows));
}

BinaryAccuracy::BinaryAccuracy(std::string name, double threshold) : Mean(std::move(name)), threshold_(threshold) {
  if (!std::isfinite(threshold)) fail<ValueError>("threshold must be a finite number. Received: threshold=", threshold);
}

json BinaryAccuracy::get_config() const {
  json c = Metric::get_config();
  c["threshold"] = threshold_;
  return c;
}

void BinaryAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // y_pred, y_true: (N, D); every element counts once
  expect_same(name_, y_true, y_pred);
  double hits = 0.0;
  for (std::size_t i = 0; i < y_pred.size(); ++i) {
    const float predicted = y_pred.data()[i] > threshold_ ? 1.f : 0.f;
    hits += predicted == y_true.data()[i];
  }
  add(hits, static_cast<double>(y_pred.size()));
}

void MeanSquaredErrorMetric::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // per sample: mean over D of (p - t)^2
  expect_same(name_, y_true, y_pred);
  const Shape p = shape_of(y_pred);
  const std::size_t D = p.empty() ? 1 : p.back();
  const std::size_t rows = D ? y_pred.size() / D : 0;
  double s = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    double row = 0.0;
    for (std::size_t j = r * D; j < (r + 1) * D; ++j) {
      const double d = static_cast<double>(y_pred.data()[j]) - y_true.data()[j];
      row += d * d;
    }
    s += row / static_cast<double>(D);
  }
  add(s, static_cast<double>(rows));
}

void MeanAbsoluteErrorMetric::update_state(const Tensor& y_true, const Tensor& y_pred) {
  expect_same(name_, y_true, y_pred);
  const Shape p = shape_of(y_pred);
  const std::size_t D = p.empty() ? 1 : p.back();
  const std::size_t rows = D ? y_pred.size() / D : 0;
  double s = 0.0;
  for (std::size_t r = 0; r < rows; ++r) {
    double row = 0.0;
    for (std::size_t j = r * D; j < (r + 1) * D; ++j)
      row += std::abs(static_cast<double>(y_pred.data()[j]) - y_true.data()[j]);
    s += row / static_cast<double>(D);
  }
  add(s, static_cast<double>(rows));
}

MetricPtr make_metric(const std::string& name, const Shape& y_true_shape, const Shape& y_pred_shape,
                      const Loss* loss) {
  if (name == "accuracy" || name == "acc") {
    const std::size_t pred_last = y_pred_shape.empty() ? 1 : y_pred_shape.back();
    const std::size_t true_last = y_true_shape.empty() ? 1 : y_true_shape.back();
    if ((loss && loss->binary()) || pred_last == 1) return std::make_shared<BinaryAccuracy>(name);
    if (y_true_shape.size() < y_pred_shape.size() || (true_last == 1 && pred_last > 1))
      return std::make_shared<SparseCategoricalAccuracy>(name);
    return std::make_shared<CategoricalAccuracy>(name);
  }
  // Snake-case names are kept as the log key; class names log under their snake-case name.
  const std::string key = lower_no_underscores(name);
  const bool is_class = !name.empty() && std::isupper(static_cast<unsigned char>(name[0]));
  auto key_or = [&](const char* snake) { return is_class ? std::string(snake) : name; };
  if (key == "sparsecategoricalaccuracy")
    return std::make_shared<SparseCategoricalAccuracy>(key_or("sparse_categorical_accuracy"));
  if (key == "categoricalaccuracy") return std::make_shared<CategoricalAccuracy>(key_or("categorical_accuracy"));
  if (key == "binaryaccuracy") return std::make_shared<BinaryAccuracy>(key_or("binary_accuracy"));
  if (key == "meansquarederror" || key == "mse")
    return std::make_shared<MeanSquaredErrorMetric>(key_or("mean_squared_error"));
  if (key == "meanabsoluteerror" || key == "mae")
    return std::make_shared<MeanAbsoluteErrorMetric>(key_or("mean_absolute_error"));
  fail<ValueError>("Unknown metric. Expected 'accuracy' (or 'acc'), 'sparse_categorical_accuracy', "
                   "'categorical_accuracy', 'binary_accuracy', 'mse' or 'mae'. Received: metric='", name, "'");
}

// --- Confusion matrix -----------------------------------------------------------------------------

std::vector<std::int64_t> confusion_counts(const std::vector<std::int64_t>& labels,
                                           const std::vector<std::int64_t>& predictions,
                                           std::size_t num_classes) {
  if (labels.size() != predictions.size())
    fail<ValueError>("labels and predictions must have the same length. Received: len(labels)=", labels.size(),
                     ", len(predictions)=", predictions.size());
  if (num_classes == 0) fail<ValueError>("num_classes must be positive. Received: num_classes=0");
  const auto K = static_cast<std::int64_t>(num_classes);
  std::vector<std::int64_t> m(num_classes * num_classes, 0);
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const std::int64_t t = labels[i], p = predictions[i];
    if (t < 0 || t >= K)
      fail<ValueError>("labels must be in [0, ", K, "). Received: label=", t, " (sample ", i, ")");
    if (p < 0 || p >= K)
      fail<ValueError>("predictions must be in [0, ", K, "). Received: prediction=", p, " (sample ", i, ")");
    ++m[static_cast<std::size_t>(t) * num_classes + static_cast<std::size_t>(p)];
  }
  return m;
}

std::vector<double> confusion_matrix(const std::vector<std::int64_t>& labels,
                                     const std::vector<std::int64_t>& predictions, std::size_t num_classes,
                                     const std::string& normalize) {
  if (normalize != "" && normalize != "true" && normalize != "pred" && normalize != "all")
    fail<ValueError>("normalize must be None, 'true', 'pred' or 'all'. Received: normalize='", normalize, "'");
  const std::vector<std::int64_t> counts = confusion_counts(labels, predictions, num_classes);
  const std::size_t K = num_classes;
  std::vector<double> m(counts.begin(), counts.end());
  // Divide each entry by its row sum, column sum or the total; an empty one leaves zeros.
  auto divide = [&](std::size_t i, double d) { m[i] = d > 0 ? m[i] / d : 0.0; };
  if (normalize == "true") {
    for (std::size_t r = 0; r < K; ++r) {
      double s = 0.0;
      for (std::size_t c = 0; c < K; ++c) s += m[r * K + c];
      for (std::size_t c = 0; c < K; ++c) divide(r * K + c, s);
    }
  } else if (normalize == "pred") {
    for (std::size_t c = 0; c < K; ++c) {
      double s = 0.0;
      for (std::size_t r = 0; r < K; ++r) s += m[r * K + c];
      for (std::size_t r = 0; r < K; ++r) divide(r * K + c, s);
    }
  } else if (normalize == "all") {
    double s = 0.0;
    for (double v : m) s += v;
    for (std::size_t i = 0; i < m.size(); ++i) divide(i, s);
  }
  return m;
}

}  // namespace signcore
