// Optimisers with Keras's update rules and defaults (see KERAS_PARITY.md). Each keeps its slot
// variables in one flat buffer laid out like Parameters' value buffer (slot k of weight w at
// k * total + offset), so a step is a pass over the trainable segments of the flat buffers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "signcore/parameters.hpp"

namespace signcore {

using json = nlohmann::json;

class Optimizer {
 public:
  explicit Optimizer(float learning_rate) : learning_rate(learning_rate) {}
  virtual ~Optimizer() = default;
  virtual std::string class_name() const = 0;

  // Common Keras arguments; a negative value means "not set".
  float learning_rate;
  float clipnorm = -1.f, clipvalue = -1.f, global_clipnorm = -1.f;
  float weight_decay = 0.f;  // decoupled: w -= lr * weight_decay * w before the update
  long long iterations = 0;

  // Size the slot buffers for `params` (idempotent while the size is unchanged).
  void build(const Parameters& params);
  bool built() const { return built_; }
  // Clip the gradients as configured, then update every trainable weight; iterations += 1.
  void apply(Parameters& params);

  // Keras's count of optimiser variables for P trainable parameters (summary()).
  virtual std::size_t variable_count(std::size_t trainable_params) const;
  virtual json get_config() const;
  // Slot state for saving and restoring (flat; layout described above).
  std::vector<float>& state() { return state_; }
  virtual std::size_t slots() const = 0;

 protected:
  // Update weights w[0..n) with gradients g, slot pointers s[k] = state_ + k*total + offset.
  // `step` is iterations + 1 (1-based), lr the current learning rate.
  virtual void update(float* w, const float* g, std::vector<float*>& s, std::size_t n,
                      long long step, float lr) = 0;

  std::vector<float> state_;
  std::size_t total_ = 0;
  bool built_ = false;
};

using OptimizerPtr = std::shared_ptr<Optimizer>;

// "sgd", "adam", "rmsprop", "adagrad", "adadelta" (any case), with Keras defaults; config holds
// overrides (learning_rate, momentum, ...). ValueError for unknown names or arguments.
OptimizerPtr make_optimizer(const std::string& name, const json& config = json::object());

}  // namespace signcore
