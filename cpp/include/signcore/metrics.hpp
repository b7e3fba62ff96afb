// Streaming metrics (update_state / result / reset_state). "accuracy" resolves like Keras once the
// shapes of y_true and y_pred (and the loss) are known.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "signcore/tensor.hpp"

namespace signcore {

using json = nlohmann::json;
class Loss;

class Metric {
 public:
  explicit Metric(std::string name) : name_(std::move(name)) {}
  virtual ~Metric() = default;
  const std::string& name() const { return name_; }  // the key in logs/history
  virtual std::string class_name() const = 0;
  virtual void update_state(const Tensor& y_true, const Tensor& y_pred) = 0;
  virtual double result() const = 0;
  virtual void reset_state() = 0;
  virtual json get_config() const;
  // False for a metric whose value is not one number (ConfusionMatrix): the training loop leaves
  // it out of the logs, and evaluate() reports its matrix() instead.
  virtual bool scalar() const { return true; }

 protected:
  std::string name_;
};

using MetricPtr = std::shared_ptr<Metric>;

// Resolve a metric given by name. `name` is kept as the log key ("accuracy", "acc").
// y_true_shape / y_pred_shape are per-batch tensor shapes; loss may be null.
MetricPtr make_metric(const std::string& name, const Shape& y_true_shape, const Shape& y_pred_shape,
                      const Loss* loss);

}  // namespace signcore

// ---------------------------------------------------------------------------------------------------
// Concrete metrics. Each is a running mean of per-sample values (Keras's MeanMetricWrapper): the
// result over several batches equals the result over their concatenation.

namespace signcore {

// A running weighted mean: total / count, both in double.
class Mean : public Metric {
 public:
  explicit Mean(std::string name = "mean") : Metric(std::move(name)) {}
  std::string class_name() const override { return "Mean"; }
  // Adds every element of `values` with weight 1 (y_pred is ignored).
  void update_state(const Tensor& values, const Tensor& y_pred) override;
  void add(double value_sum, double count) { total_ += value_sum, count_ += count; }
  double result() const override { return count_ > 0 ? total_ / count_ : 0.0; }
  void reset_state() override { total_ = 0.0, count_ = 0.0; }
  double total() const { return total_; }
  double count() const { return count_; }

 protected:
  double total_ = 0.0, count_ = 0.0;
};

// argmax(y_pred, -1) == y_true, y_true (N,) or (N, 1) class indices.
class SparseCategoricalAccuracy : public Mean {
 public:
  explicit SparseCategoricalAccuracy(std::string name = "sparse_categorical_accuracy") : Mean(std::move(name)) {}
  std::string class_name() const override { return "SparseCategoricalAccuracy"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

// argmax(y_pred, -1) == argmax(y_true, -1) (first maximum on ties, like NumPy).
class CategoricalAccuracy : public Mean {
 public:
  explicit CategoricalAccuracy(std::string name = "categorical_accuracy") : Mean(std::move(name)) {}
  std::string class_name() const override { return "CategoricalAccuracy"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

// y_true == (y_pred > threshold), averaged over every element.
class BinaryAccuracy : public Mean {
 public:
  explicit BinaryAccuracy(std::string name = "binary_accuracy", double threshold = 0.5);
  std::string class_name() const override { return "BinaryAccuracy"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  json get_config() const override;
  double threshold() const { return threshold_; }

 private:
  double threshold_;
};

// Mean over the last axis of (p - t)^2 (or |p - t|), averaged over samples.
class MeanSquaredErrorMetric : public Mean {
 public:
  explicit MeanSquaredErrorMetric(std::string name = "mean_squared_error") : Mean(std::move(name)) {}
  std::string class_name() const override { return "MeanSquaredError"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};
class MeanAbsoluteErrorMetric : public Mean {
 public:
  explicit MeanAbsoluteErrorMetric(std::string name = "mean_absolute_error") : Mean(std::move(name)) {}
  std::string class_name() const override { return "MeanAbsoluteError"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
};

// The confusion matrix of integer labels, rows = true class, columns = predicted class, row-major
// (num_classes x num_classes). ValueError for a label outside [0, num_classes) or unequal lengths.
std::vector<std::int64_t> confusion_counts(const std::vector<std::int64_t>& labels,
                                           const std::vector<std::int64_t>& predictions,
                                           std::size_t num_classes);
// As scikit-learn's confusion_matrix: normalize "" (counts), "true" (rows sum to 1), "pred"
// (columns sum to 1) or "all" (the matrix sums to 1); an empty row/column/matrix gives zeros.
std::vector<double> confusion_matrix(const std::vector<std::int64_t>& labels,
                                     const std::vector<std::int64_t>& predictions,
                                     std::size_t num_classes, const std::string& normalize = "");

// --- Top-k accuracy ---------------------------------------------------------------------------
// The true class is among the k highest scores (Keras's in_top_k: ties with the k-th score count
// as in, a NaN score never does): rank = 1 + #(scores > score of the true class) <= k.

// y_true one-hot (N, C), y_pred (N, C).
class TopKCategoricalAccuracy : public Mean {
 public:
  explicit TopKCategoricalAccuracy(int k = 5, std::string name = "top_k_categorical_accuracy");
  std::string class_name() const override { return "TopKCategoricalAccuracy"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  json get_config() const override;
  int k() const { return k_; }

 private:
  int k_;
};

// y_true class indices (N,) or (N, 1), y_pred (N, C).
class SparseTopKCategoricalAccuracy : public Mean {
 public:
  explicit SparseTopKCategoricalAccuracy(int k = 5, std::string name = "sparse_top_k_categorical_accuracy");
  std::string class_name() const override { return "SparseTopKCategoricalAccuracy"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  json get_config() const override;
  int k() const { return k_; }

 private:
  int k_;
};

// --- Precision and recall (keras/src/metrics/confusion_metrics.py) -------------------------------
// Every element of y_pred is a prediction: positive when > threshold (default 0.5; with top_k and
// no threshold, the k highest scores of each row are the positives). y_true (same shape, 0/1) says
// which are real positives. class_id restricts both to one column. Counts of true positives,
// false positives and false negatives accumulate over batches. As an extension of Keras, integer
// labels (N,) or (N, 1) next to (N, C) scores are read as one-hot rows.
class PrecisionRecallBase : public Metric {
 public:
  PrecisionRecallBase(std::string name, std::optional<double> threshold, std::optional<int> top_k,
                      std::optional<int> class_id);
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  void reset_state() override { tp_ = fp_ = fn_ = 0.0; }
  json get_config() const override;
  std::optional<double> threshold() const { return threshold_; }
  std::optional<int> top_k() const { return top_k_; }
  std::optional<int> class_id() const { return class_id_; }
  double true_positives() const { return tp_; }
  double false_positives() const { return fp_; }
  double false_negatives() const { return fn_; }
  void set_counts(double tp, double fp, double fn) { tp_ = tp, fp_ = fp, fn_ = fn; }

 protected:
  std::optional<double> threshold_;
  std::optional<int> top_k_, class_id_;
  double tp_ = 0.0, fp_ = 0.0, fn_ = 0.0;
};

// tp / (tp + fp), 0 when nothing was predicted positive.
class Precision : public PrecisionRecallBase {
 public:
  explicit Precision(std::optional<double> threshold = std::nullopt, std::optional<int> top_k = std::nullopt,
                     std::optional<int> class_id = std::nullopt, std::string name = "precision")
      : PrecisionRecallBase(std::move(name), threshold, top_k, class_id) {}
  std::string class_name() const override { return "Precision"; }
  double result() const override { return tp_ + fp_ > 0 ? tp_ / (tp_ + fp_) : 0.0; }
};

// tp / (tp + fn), 0 when there was no positive.
class Recall : public PrecisionRecallBase {
 public:
  explicit Recall(std::optional<double> threshold = std::nullopt, std::optional<int> top_k = std::nullopt,
                  std::optional<int> class_id = std::nullopt, std::string name = "recall")
      : PrecisionRecallBase(std::move(name), threshold, top_k, class_id) {}
  std::string class_name() const override { return "Recall"; }
  double result() const override { return tp_ + fn_ > 0 ? tp_ / (tp_ + fn_) : 0.0; }
};

// --- Confusion matrix as a streaming metric ---------------------------------------------------
// Rows are true classes, columns predicted classes. y_pred: (N, C) scores (argmax) or (N,)/(N, 1)
// probabilities of class 1 (> 0.5); y_true: class indices (N,)/(N, 1) or one-hot (N, C). Not a
// scalar: result() is the accuracy (trace / total), matrix() the matrix.
class ConfusionMatrix : public Metric {
 public:
  explicit ConfusionMatrix(std::size_t num_classes, std::string normalize = "", std::string name = "confusion_matrix");
  std::string class_name() const override { return "ConfusionMatrix"; }
  void update_state(const Tensor& y_true, const Tensor& y_pred) override;
  double result() const override;
  void reset_state() override;
  bool scalar() const override { return false; }
  json get_config() const override;
  std::size_t num_classes() const { return num_classes_; }
  const std::string& normalize() const { return normalize_; }
  // Row-major (num_classes x num_classes): counts, or normalised as configured (see confusion_matrix).
  std::vector<double> matrix() const;
  const std::vector<std::int64_t>& counts() const { return counts_; }
  void set_counts(std::vector<std::int64_t> counts);

 private:
  std::size_t num_classes_;
  std::string normalize_;
  std::vector<std::int64_t> counts_;
};

// --- Per-class scores (scikit-learn's precision_recall_fscore_support) ---------------------------
struct ClassScores {
  std::vector<double> precision, recall, f1;
  std::vector<std::int64_t> support, tp, fp, fn;  // support = tp + fn (samples of the class)
};
// For each label in `labels`: precision tp/(tp+fp), recall tp/(tp+fn), F1 2tp/(2tp+fp+fn), each
// `zero_division` when its denominator is 0 (NaN allowed). Samples whose true and predicted labels
// are both outside `labels` count for no class. ValueError for unequal lengths.
ClassScores class_scores(const std::vector<std::int64_t>& y_true, const std::vector<std::int64_t>& y_pred,
                         const std::vector<std::int64_t>& labels, double zero_division = 0.0);

}  // namespace signcore
