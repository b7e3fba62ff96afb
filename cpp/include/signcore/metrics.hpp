// Streaming metrics (update_state / result / reset_state). "accuracy" resolves like Keras once the
// shapes of y_true and y_pred (and the loss) are known.
#pragma once

#include <memory>
#include <string>

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
