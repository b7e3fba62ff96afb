// Streaming metrics (update_state / result / reset_state). "accuracy" resolves like Keras once the
// shapes of y_true and y_pred (and the loss) are known.
#pragma once

#include <cstdint>
#include <memory>
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

}  // namespace signcore
