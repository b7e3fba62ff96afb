// Losses with Keras's names, arguments and clipping. Reduction is Keras's "sum_over_batch_size":
// the mean of the per-sample losses over the batch.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "signcore/tensor.hpp"

namespace signcore {

using json = nlohmann::json;

class Loss {
 public:
  virtual ~Loss() = default;
  virtual std::string name() const = 0;        // "categorical_crossentropy"
  virtual std::string class_name() const = 0;  // "CategoricalCrossentropy"
  virtual json get_config() const;
  // y_pred: (N, ...). y_true: same shape, or for sparse losses (N,) / (N, 1) class indices.
  // Returns the batch-mean loss. If dy_pred is non-null, writes dL/dy_pred (shape of y_pred).
  // ValueError (naming both shapes) when they do not fit together.
  virtual double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const = 0;
  // Whether this loss takes integer class labels.
  virtual bool sparse() const { return false; }
  virtual bool binary() const { return false; }
};

using LossPtr = std::shared_ptr<Loss>;

// "sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
// "mean_squared_error"/"mse", and the class names; config may hold from_logits etc.
LossPtr make_loss(const std::string& name, const json& config = json::object());

}  // namespace signcore

// ---------------------------------------------------------------------------------------------------
// Concrete losses. Shapes: y_pred (N, ..., C); the last axis is the class (or feature) axis and every
// leading axis counts as a sample ("rows"), so the reduction is the mean over N * ... rows, as Keras's
// sum_over_batch_size does. Per-row values are computed in double, one thread per chunk of rows, and
// summed serially, so the result does not depend on the thread count.
namespace signcore {

// Shared name and the Keras arguments every loss takes (reduction is always sum_over_batch_size).
class KerasLoss : public Loss {
 public:
  explicit KerasLoss(std::string name) : name_(std::move(name)) {}
  std::string name() const override { return name_; }
  json get_config() const override;

 protected:
  std::string name_;
};

// -sum(t * log(clip(p / sum(p)))) per row; with from_logits, -sum(t * log_softmax(z)).
// label_smoothing s replaces t with t * (1 - s) + s / C.
class CategoricalCrossentropy : public KerasLoss {
 public:
  explicit CategoricalCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                                   std::string name = "categorical_crossentropy");
  std::string class_name() const override { return "CategoricalCrossentropy"; }
  json get_config() const override;
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const override;
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

// Categorical cross-entropy with integer class labels: y_true (N,) or (N, 1) floats holding
// integers in [0, C); anything else is a ValueError naming the label.
class SparseCategoricalCrossentropy : public KerasLoss {
 public:
  explicit SparseCategoricalCrossentropy(bool from_logits = false,
                                         std::string name = "sparse_categorical_crossentropy");
  std::string class_name() const override { return "SparseCategoricalCrossentropy"; }
  json get_config() const override;
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const override;
  bool sparse() const override { return true; }
  bool from_logits() const { return from_logits_; }

 private:
  bool from_logits_;
};

// Mean over the last axis of -(t log c + (1 - t) log(1 - c)), c = clip(p); with from_logits the
// stable form max(z, 0) - z t + log(1 + exp(-|z|)). label_smoothing s: t * (1 - s) + s / 2.
class BinaryCrossentropy : public KerasLoss {
 public:
  explicit BinaryCrossentropy(bool from_logits = false, double label_smoothing = 0.0,
                              std::string name = "binary_crossentropy");
  std::string class_name() const override { return "BinaryCrossentropy"; }
  json get_config() const override;
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const override;
  bool binary() const override { return true; }
  bool from_logits() const { return from_logits_; }
  double label_smoothing() const { return label_smoothing_; }

 private:
  bool from_logits_;
  double label_smoothing_;
};

// Mean over the last axis of (p - t)^2.
class MeanSquaredError : public KerasLoss {
 public:
  explicit MeanSquaredError(std::string name = "mean_squared_error") : KerasLoss(std::move(name)) {}
  std::string class_name() const override { return "MeanSquaredError"; }
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const override;
};

// Mean over the last axis of |p - t| (gradient 0 where p == t).
class MeanAbsoluteError : public KerasLoss {
 public:
  explicit MeanAbsoluteError(std::string name = "mean_absolute_error") : KerasLoss(std::move(name)) {}
  std::string class_name() const override { return "MeanAbsoluteError"; }
  double compute(const Tensor& y_pred, const Tensor& y_true, Tensor* dy_pred) const override;
};

// Keras's clipping constant (backend.epsilon()).
constexpr double kLossEpsilon = 1e-7;

// The canonical snake_case name a loss identifier resolves to ("CategoricalCrossentropy", "mse" ->
// "categorical_crossentropy", "mean_squared_error"), or "" when it names no loss.
std::string canonical_loss_name(const std::string& identifier);

}  // namespace signcore
