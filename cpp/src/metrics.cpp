// Streaming metrics with Keras 3's definitions (keras/src/metrics/accuracy_metrics.py) and the
// resolution of "accuracy" (keras/src/trainers/compile_utils.py), plus the confusion matrix.
#include "signcore/metrics.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

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
  if (key == "topkcategoricalaccuracy") return std::make_shared<TopKCategoricalAccuracy>(5, key_or("top_k_categorical_accuracy"));
  if (key == "sparsetopkcategoricalaccuracy")
    return std::make_shared<SparseTopKCategoricalAccuracy>(5, key_or("sparse_top_k_categorical_accuracy"));
  if (key == "precision") return std::make_shared<Precision>(std::nullopt, std::nullopt, std::nullopt, key_or("precision"));
  if (key == "recall") return std::make_shared<Recall>(std::nullopt, std::nullopt, std::nullopt, key_or("recall"));
  if (key == "confusionmatrix") {
    // The number of classes follows from the predictions: C columns, or 2 for one probability.
    const std::size_t last = y_pred_shape.size() >= 2 ? y_pred_shape.back() : 1;
    return std::make_shared<ConfusionMatrix>(last > 1 ? last : 2, "", key_or("confusion_matrix"));
  }
  fail<ValueError>("Unknown metric. Expected 'accuracy' (or 'acc'), 'sparse_categorical_accuracy', "
                   "'categorical_accuracy', 'binary_accuracy', 'top_k_categorical_accuracy', "
                   "'sparse_top_k_categorical_accuracy', 'precision', 'recall', 'confusion_matrix', 'mse' or "
                   "'mae'. Received: metric='", name, "'");
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

// --- Top-k accuracy -------------------------------------------------------------------------------

namespace {

void check_k(int k) {
  if (k < 1) fail<ValueError>("k must be a positive integer. Received: k=", k);
}

// Whether scores[target] is among the k highest of scores[0..n) (ties count as in; NaN never).
bool in_top_k(const float* scores, std::size_t n, std::size_t target, int k) {
  const float s = scores[target];
  if (std::isnan(s)) return false;
  std::size_t greater = 0;
  for (std::size_t j = 0; j < n; ++j) greater += scores[j] > s;
  return greater < static_cast<std::size_t>(k);
}

// Class index of a label value (ValueError unless an integer in [0, C)).
std::size_t label_index(float v, std::size_t C, const std::string& metric, std::size_t row) {
  if (!(v >= 0.f) || v != std::floor(v) || static_cast<double>(v) >= static_cast<double>(C))
    fail<ValueError>(metric, ": labels must be class indices in [0, ", C, "). Received: y_true[", row, "]=", v);
  return static_cast<std::size_t>(v);
}

}  // namespace

TopKCategoricalAccuracy::TopKCategoricalAccuracy(int k, std::string name) : Mean(std::move(name)), k_(k) { check_k(k); }

json TopKCategoricalAccuracy::get_config() const {
  json c = Metric::get_config();
  c["k"] = k_;
  return c;
}

void TopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // y_true, y_pred: (N, C)
  expect_same(name_, y_true, y_pred);
  const Shape p = shape_of(y_pred);
  const std::size_t C = p.empty() ? 1 : p.back();
  const std::size_t rows = C ? y_pred.size() / C : 0;
  double hits = 0.0;
  for (std::size_t r = 0; r < rows; ++r)
    hits += in_top_k(y_pred.data() + r * C, C, argmax(y_true.data() + r * C, C), k_);
  add(hits, static_cast<double>(rows));
}

SparseTopKCategoricalAccuracy::SparseTopKCategoricalAccuracy(int k, std::string name)
    : Mean(std::move(name)), k_(k) {
  check_k(k);
}

json SparseTopKCategoricalAccuracy::get_config() const {
  json c = Metric::get_config();
  c["k"] = k_;
  return c;
}

void SparseTopKCategoricalAccuracy::update_state(const Tensor& y_true, const Tensor& y_pred) {
  // y_pred: (N, C), y_true: (N,) or (N, 1)
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  if (p.empty() || (t != Shape(p.begin(), p.end() - 1) && squeeze_last(t) != Shape(p.begin(), p.end() - 1)))
    fail<ValueError>(name_, ": y_true must hold one class index per sample, shaped like y_pred without its "
                     "last axis. ", shapes_msg(y_true, y_pred));
  const std::size_t C = p.back(), rows = y_true.size();
  double hits = 0.0;
  for (std::size_t r = 0; r < rows && C > 0; ++r)
    hits += in_top_k(y_pred.data() + r * C, C, label_index(y_true.data()[r], C, name_, r), k_);
  add(hits, static_cast<double>(rows));
}

// --- Precision and recall --------------------------------------------------------------------------

PrecisionRecallBase::PrecisionRecallBase(std::string name, std::optional<double> threshold,
                                         std::optional<int> top_k, std::optional<int> class_id)
    : Metric(std::move(name)), threshold_(threshold), top_k_(top_k), class_id_(class_id) {
  if (threshold_ && !(*threshold_ >= 0.0 && *threshold_ <= 1.0))
    fail<ValueError>("Threshold values must be in [0, 1]. Received: thresholds=", *threshold_);
  if (top_k_ && *top_k_ < 1) fail<ValueError>("top_k must be a positive integer. Received: top_k=", *top_k_);
  if (class_id_ && *class_id_ < 0) fail<ValueError>("class_id must be >= 0. Received: class_id=", *class_id_);
}

json PrecisionRecallBase::get_config() const {
  json c = Metric::get_config();
  c["thresholds"] = threshold_ ? json(*threshold_) : json();
  c["top_k"] = top_k_ ? json(*top_k_) : json();
  c["class_id"] = class_id_ ? json(*class_id_) : json();
  return c;
}

void PrecisionRecallBase::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  const std::size_t C = p.empty() ? 1 : p.back();
  const std::size_t rows = C ? y_pred.size() / C : 0;
  // Integer labels next to (N, C) scores: one-hot rows (extension of Keras).
  const bool sparse = C > 1 && !p.empty() &&
                      (t == Shape(p.begin(), p.end() - 1) || squeeze_last(t) == Shape(p.begin(), p.end() - 1));
  if (!sparse) expect_same(name_, y_true, y_pred);
  if (class_id_ && static_cast<std::size_t>(*class_id_) >= C)
    fail<ValueError>(name_, ": class_id ", *class_id_, " is out of range for predictions with ", C, " columns. ",
                     shapes_msg(y_true, y_pred));
  const double threshold = threshold_ ? *threshold_ : (top_k_ ? -std::numeric_limits<double>::infinity() : 0.5);
  std::vector<char> keep(C, 1);
  std::vector<std::size_t> order(C);
  for (std::size_t r = 0; r < rows; ++r) {
    const float* s = y_pred.data() + r * C;
    if (top_k_ && static_cast<std::size_t>(*top_k_) < C) {
      // The k highest scores of the row (the lower index first among equal scores); the others
      // count as -inf, i.e. never positive.
      std::iota(order.begin(), order.end(), std::size_t{0});
      std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
      std::fill(keep.begin(), keep.end(), 0);
      for (int i = 0; i < *top_k_; ++i) keep[order[i]] = 1;
    }
    const std::size_t label = sparse ? label_index(y_true.data()[r], C, name_, r) : 0;
    const std::size_t j0 = class_id_ ? static_cast<std::size_t>(*class_id_) : 0;
    const std::size_t j1 = class_id_ ? j0 + 1 : C;
    for (std::size_t j = j0; j < j1; ++j) {
      const bool predicted = keep[j] && static_cast<double>(s[j]) > threshold;
      const bool actual = sparse ? j == label : y_true.data()[r * C + j] != 0.f;
      tp_ += predicted && actual;
      fp_ += predicted && !actual;
      fn_ += !predicted && actual;
    }
  }
}

// --- Confusion matrix metric -----------------------------------------------------------------------

ConfusionMatrix::ConfusionMatrix(std::size_t num_classes, std::string normalize, std::string name)
    : Metric(std::move(name)), num_classes_(num_classes), normalize_(std::move(normalize)) {
  if (num_classes_ < 2) fail<ValueError>("ConfusionMatrix needs num_classes >= 2. Received: num_classes=", num_classes_);
  if (normalize_ != "" && normalize_ != "true" && normalize_ != "pred" && normalize_ != "all")
    fail<ValueError>("normalize must be None, 'true', 'pred' or 'all'. Received: normalize='", normalize_, "'");
  counts_.assign(num_classes_ * num_classes_, 0);
}

json ConfusionMatrix::get_config() const {
  json c = Metric::get_config();
  c["num_classes"] = num_classes_;
  c["normalize"] = normalize_.empty() ? json() : json(normalize_);
  return c;
}

void ConfusionMatrix::reset_state() { std::fill(counts_.begin(), counts_.end(), 0); }

void ConfusionMatrix::set_counts(std::vector<std::int64_t> counts) {
  if (counts.size() != num_classes_ * num_classes_)
    fail<ValueError>("ConfusionMatrix expects ", num_classes_ * num_classes_, " counts. Received: ", counts.size());
  counts_ = std::move(counts);
}

void ConfusionMatrix::update_state(const Tensor& y_true, const Tensor& y_pred) {
  const Shape p = shape_of(y_pred), t = shape_of(y_true);
  const std::size_t K = num_classes_;
  const std::size_t C = p.size() >= 2 ? p.back() : 1;
  const std::size_t rows = p.empty() ? 0 : (C ? y_pred.size() / C : 0);
  if (C > 1 && C != K)
    fail<ValueError>(name_, ": predictions have ", C, " columns but num_classes=", K, ". ", shapes_msg(y_true, y_pred));
  const bool one_hot = t.size() >= 2 && t.back() == C && C > 1;
  if (y_true.size() != rows * (one_hot ? C : 1))
    fail<ValueError>(name_, ": y_true must hold one label (or one-hot row) per prediction. ", shapes_msg(y_true, y_pred));
  for (std::size_t r = 0; r < rows; ++r) {
    const std::size_t pred = C > 1 ? argmax(y_pred.data() + r * C, C) : (y_pred.data()[r] > 0.5f ? 1 : 0);
    std::size_t truth;
    if (one_hot) {
      truth = argmax(y_true.data() + r * C, C);
    } else {
      const float v = y_true.data()[r];
      if (!(v >= 0.f) || v != std::floor(v) || static_cast<double>(v) >= static_cast<double>(K))
        fail<ValueError>(name_, ": labels must be class indices in [0, ", K, "). Received: y_true[", r, "]=", v);
      truth = static_cast<std::size_t>(v);
    }
    ++counts_[truth * K + pred];
  }
}

double ConfusionMatrix::result() const {
  std::int64_t total = 0, hits = 0;
  for (std::size_t i = 0; i < num_classes_; ++i)
    for (std::size_t j = 0; j < num_classes_; ++j) {
      total += counts_[i * num_classes_ + j];
      if (i == j) hits += counts_[i * num_classes_ + j];
    }
  return total ? static_cast<double>(hits) / static_cast<double>(total) : 0.0;
}

std::vector<double> ConfusionMatrix::matrix() const {
  // Normalised as confusion_matrix() does.
  const std::size_t K = num_classes_;
  std::vector<double> m(counts_.begin(), counts_.end());
  auto divide = [&](std::size_t i, double d) { m[i] = d > 0 ? m[i] / d : 0.0; };
  if (normalize_ == "true") {
    for (std::size_t r = 0; r < K; ++r) {
      double s = 0.0;
      for (std::size_t c = 0; c < K; ++c) s += m[r * K + c];
      for (std::size_t c = 0; c < K; ++c) divide(r * K + c, s);
    }
  } else if (normalize_ == "pred") {
    for (std::size_t c = 0; c < K; ++c) {
      double s = 0.0;
      for (std::size_t r = 0; r < K; ++r) s += m[r * K + c];
      for (std::size_t r = 0; r < K; ++r) divide(r * K + c, s);
    }
  } else if (normalize_ == "all") {
    double s = 0.0;
    for (double v : m) s += v;
    for (std::size_t i = 0; i < m.size(); ++i) divide(i, s);
  }
  return m;
}

// --- Per-class scores -------------------------------------------------------------------------------

ClassScores class_scores(const std::vector<std::int64_t>& y_true, const std::vector<std::int64_t>& y_pred,
                         const std::vector<std::int64_t>& labels, double zero_division) {
  if (y_true.size() != y_pred.size())
    fail<ValueError>("y_true and y_pred must have the same length. Received: len(y_true)=", y_true.size(),
                     ", len(y_pred)=", y_pred.size());
  const std::size_t L = labels.size();
  ClassScores s;
  s.tp.assign(L, 0);
  s.fp.assign(L, 0);
  s.fn.assign(L, 0);
  auto index_of = [&](std::int64_t v) -> std::ptrdiff_t {
    for (std::size_t i = 0; i < L; ++i)
      if (labels[i] == v) return static_cast<std::ptrdiff_t>(i);
    return -1;
  };
  for (std::size_t i = 0; i < y_true.size(); ++i) {
    const std::ptrdiff_t t = index_of(y_true[i]), p = index_of(y_pred[i]);
    if (y_true[i] == y_pred[i]) {
      if (t >= 0) ++s.tp[t];
    } else {
      if (t >= 0) ++s.fn[t];
      if (p >= 0) ++s.fp[p];
    }
  }
  auto ratio = [&](double num, double den) { return den > 0 ? num / den : zero_division; };
  for (std::size_t i = 0; i < L; ++i) {
    const double tp = static_cast<double>(s.tp[i]), fp = static_cast<double>(s.fp[i]), fn = static_cast<double>(s.fn[i]);
    s.precision.push_back(ratio(tp, tp + fp));
    s.recall.push_back(ratio(tp, tp + fn));
    s.f1.push_back(ratio(2 * tp, 2 * tp + fp + fn));
    s.support.push_back(s.tp[i] + s.fn[i]);
  }
  return s;
}

}  // namespace signcore
