#include "signcore/parameters.hpp"

#include <algorithm>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

std::size_t Parameters::add(const Layer* owner, const std::string& name, const Shape& shape,
                            const std::string& initializer, bool learnable) {
  if (allocated_) fail<StateError>("cannot add weight '", name, "' after the model was built");
  check_initializer(initializer);
  Weight w;
  w.name = name;
  w.shape = shape;
  w.initializer = initializer;
  w.learnable = learnable;
  w.trainable = learnable;
  w.size = shape_size(shape);
  w.offset = weights_.empty() ? 0 : weights_.back().offset + weights_.back().size;
  w.owner = owner;
  weights_.push_back(std::move(w));
  return weights_.size() - 1;
}

void Parameters::allocate() {
  if (allocated_) return;
  const std::size_t n = weights_.empty() ? 0 : weights_.back().offset + weights_.back().size;
  values_.assign(n, 0.f);
  grads_.assign(n, 0.f);
  stale_.assign(weights_.size(), 0);
  for (auto& w : weights_) initialize(w.initializer, w.shape, values_.data() + w.offset, global_rng());
  allocated_ = true;
}

void Parameters::zero_grads() { std::fill(stale_.begin(), stale_.end(), 1); }

void Parameters::clear(std::size_t i) {
  float* g = grads_.data() + weights_[i].offset;
  parallel_for(weights_[i].size, std::size_t{1} << 16,
               [&](std::size_t b, std::size_t e) { std::fill(g + b, g + e, 0.f); });
  stale_[i] = 0;
}

std::vector<float>& Parameters::grads() {
  for (std::size_t i = 0; i < weights_.size(); ++i)
    if (stale_[i]) clear(i);
  return grads_;
}

std::size_t Parameters::count(bool trainable) const {
  std::size_t n = 0;
  for (const auto& w : weights_)
    if (w.trainable == trainable) n += w.size;
  return n;
}

std::vector<std::size_t> Parameters::indices_of(const Layer* owner) const {
  std::vector<std::size_t> out;
  for (std::size_t i = 0; i < weights_.size(); ++i)
    if (weights_[i].owner == owner) out.push_back(i);
  return out;
}

void Parameters::set_trainable(const Layer* owner, bool trainable) {
  for (auto& w : weights_)
    if (w.owner == owner) w.trainable = trainable && w.learnable;
}

}  // namespace signcore
