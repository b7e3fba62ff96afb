// Optimisers with Keras's update rules and defaults (see KERAS_PARITY.md). Each keeps its slot
// variables in one flat buffer laid out like Parameters' value buffer (slot k of weight w at
// k * total + offset), so a step is a pass over the trainable segments of the flat buffers.
//
// One step (apply), in Keras's order:
//   1. clip the gradients of the trainable weights (clipnorm: each weight by its own L2 norm,
//      g * c / max(|g|, c); global_clipnorm: all together, g * min(1, c / |G|); clipvalue:
//      element-wise to [-c, c]); the gradient buffer itself is left untouched,
//   2. decoupled weight decay, w -= w * weight_decay * lr,
//   3. the optimiser's update with step t = iterations + 1,
//   4. iterations += 1.
// Only weights with trainable == true are read or written. The update is element-wise, so the
// result does not depend on the thread count; the norms are summed in double in a fixed order.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "signcore/parameters.hpp"

namespace signcore {

using json = nlohmann::json;

class Optimizer {
 public:
  // ValueError unless learning_rate > 0 (and finite).
  explicit Optimizer(float learning_rate);
  virtual ~Optimizer() = default;
  virtual std::string class_name() const = 0;

  // Common Keras arguments; a negative value means "not set".
  float learning_rate;
  float clipnorm = -1.f, clipvalue = -1.f, global_clipnorm = -1.f;
  float weight_decay = 0.f;  // decoupled: w -= lr * weight_decay * w before the update
  long long iterations = 0;
  std::string name;  // Keras's default name ("SGD", "adam", ...) unless given

  // Validated setters (ValueError naming the value). The learning rate may be changed at any time
  // and takes effect at the next step; here 0 is allowed (a schedule may reach it), negative is not.
  void set_learning_rate(float lr);
  // Keras's clip arguments, nullopt = not set; a set value must be > 0, and at most one may be set.
  void set_clipping(std::optional<float> clipnorm, std::optional<float> clipvalue,
                    std::optional<float> global_clipnorm);
  void set_weight_decay(std::optional<float> weight_decay);  // >= 0; nullopt or 0 means none

  // Size the slot buffers for `params` (idempotent while the size is unchanged).
  void build(const Parameters& params);
  bool built() const { return built_; }
  // Clip the gradients as configured, then update every trainable weight; iterations += 1.
  void apply(Parameters& params);

  // Keras's count of optimiser variables for P trainable parameters (summary()):
  // iteration + learning rate + one variable per slot and trainable parameter.
  virtual std::size_t variable_count(std::size_t trainable_params) const;
  // Keras's get_config(): name, learning_rate, weight_decay, clipnorm, global_clipnorm, clipvalue
  // (null when not set) and the optimiser's own arguments. make_optimizer(class_name(), config)
  // rebuilds an equal optimiser (without its state).
  virtual json get_config() const;
  // Slot state for saving and restoring (flat; layout described above).
  std::vector<float>& state() { return state_; }
  // Mark as built for `total` parameter elements with the given slot state (slots() * total
  // values), e.g. when unpickling before the weights exist. ValueError on a size mismatch.
  void restore(std::size_t total, std::vector<float> state);
  // Number of slot variables per weight element (0 for plain SGD, 2 for Adam, ...).
  virtual std::size_t slots() const = 0;

  static constexpr std::size_t kMaxSlots = 3;

 protected:
  // Per-step constants (bias corrections, ...) from the 1-based step and the current rate.
  virtual void prepare(long long step, float lr) = 0;
  // Update weights w[0..n) with (already clipped) gradients g; s[k] points at slot k of w[0].
  // Element-wise only: the caller may split a segment into chunks and threads.
  virtual void update(float* w, const float* g, float* const* s, std::size_t n) = 0;
  // Value every element of slot k starts from (Adagrad's initial accumulator).
  virtual float slot_initial_value(std::size_t k) const { return 0.f; }

  std::vector<float> state_;
  std::size_t total_ = 0;
  bool built_ = false;
};

using OptimizerPtr = std::shared_ptr<Optimizer>;

// v = m*v - lr*g; w += v (nesterov: w += m*v - lr*g); without momentum w -= lr*g.
class SGD : public Optimizer {
 public:
  explicit SGD(float learning_rate = 0.01f, double momentum = 0.0, bool nesterov = false);
  std::string class_name() const override { return "SGD"; }
  std::size_t slots() const override { return momentum_ != 0.0 ? 1 : 0; }
  json get_config() const override;
  double momentum() const { return momentum_; }
  bool nesterov() const { return nesterov_; }

 protected:
  void prepare(long long step, float lr) override;
  void update(float* w, const float* g, float* const* s, std::size_t n) override;

 private:
  double momentum_;
  bool nesterov_;
  float lr_ = 0.f, m_ = 0.f;
};

// m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); [amsgrad: vh = max(vh, v)];
// w -= m * lr*sqrt(1 - b2^t)/(1 - b1^t) / (sqrt(v) + eps). Slots: m, v[, vh].
class Adam : public Optimizer {
 public:
  explicit Adam(float learning_rate = 0.001f, double beta_1 = 0.9, double beta_2 = 0.999,
                double epsilon = 1e-7, bool amsgrad = false);
  std::string class_name() const override { return "Adam"; }
  std::size_t slots() const override { return amsgrad_ ? 3 : 2; }
  json get_config() const override;
  double beta_1() const { return beta_1_; }
  double beta_2() const { return beta_2_; }
  double epsilon() const { return epsilon_; }
  bool amsgrad() const { return amsgrad_; }

 protected:
  void prepare(long long step, float lr) override;
  void update(float* w, const float* g, float* const* s, std::size_t n) override;

 private:
  double beta_1_, beta_2_, epsilon_;
  bool amsgrad_;
  float alpha_ = 0.f, c1_ = 0.f, c2_ = 0.f, eps_ = 0.f;
};

// v = rho*v + (1-rho)*g^2; [centered: a = rho*a + (1-rho)*g, denominator v - a^2 + eps]
// inc = lr*g/sqrt(v + eps); [momentum: mom = momentum*mom + inc; w -= mom] else w -= inc.
// Slots: v[, mom][, a].
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(float learning_rate = 0.001f, double rho = 0.9, double momentum = 0.0,
                   double epsilon = 1e-7, bool centered = false);
  std::string class_name() const override { return "RMSprop"; }
  std::size_t slots() const override { return 1 + (momentum_ > 0.0 ? 1 : 0) + (centered_ ? 1 : 0); }
  json get_config() const override;
  double rho() const { return rho_; }
  double momentum() const { return momentum_; }
  double epsilon() const { return epsilon_; }
  bool centered() const { return centered_; }

 protected:
  void prepare(long long step, float lr) override;
  void update(float* w, const float* g, float* const* s, std::size_t n) override;

 private:
  double rho_, momentum_, epsilon_;
  bool centered_;
  float lr_ = 0.f, rho_f_ = 0.f, one_minus_rho_ = 0.f, mom_ = 0.f, eps_ = 0.f;
};

// acc += g^2 (acc starts at initial_accumulator_value); w -= lr*g/sqrt(acc + eps). Slot: acc.
class Adagrad : public Optimizer {
 public:
  explicit Adagrad(float learning_rate = 0.001f, double initial_accumulator_value = 0.1,
                   double epsilon = 1e-7);
  std::string class_name() const override { return "Adagrad"; }
  std::size_t slots() const override { return 1; }
  json get_config() const override;
  double initial_accumulator_value() const { return initial_accumulator_value_; }
  double epsilon() const { return epsilon_; }

 protected:
  void prepare(long long step, float lr) override;
  void update(float* w, const float* g, float* const* s, std::size_t n) override;
  float slot_initial_value(std::size_t k) const override;

 private:
  double initial_accumulator_value_, epsilon_;
  float lr_ = 0.f, eps_ = 0.f;
};

// ag = rho*ag + (1-rho)*g^2; d = -sqrt(ad + eps)/sqrt(ag + eps) * g;
// ad = rho*ad + (1-rho)*d^2; w += lr*d. Slots: ag, ad.
class Adadelta : public Optimizer {
 public:
  explicit Adadelta(float learning_rate = 0.001f, double rho = 0.95, double epsilon = 1e-7);
  std::string class_name() const override { return "Adadelta"; }
  std::size_t slots() const override { return 2; }
  json get_config() const override;
  double rho() const { return rho_; }
  double epsilon() const { return epsilon_; }

 protected:
  void prepare(long long step, float lr) override;
  void update(float* w, const float* g, float* const* s, std::size_t n) override;

 private:
  double rho_, epsilon_;
  float lr_ = 0.f, rho_f_ = 0.f, one_minus_rho_ = 0.f, eps_ = 0.f;
};

// "sgd", "adam", "rmsprop", "adagrad", "adadelta" (any case), with Keras defaults; config holds
// overrides (learning_rate, momentum, ...), as get_config() writes them (null = not set).
// ValueError for unknown names or arguments, TypeError for a value of the wrong type.
OptimizerPtr make_optimizer(const std::string& name, const json& config = json::object());

}  // namespace signcore
