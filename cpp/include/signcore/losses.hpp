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
