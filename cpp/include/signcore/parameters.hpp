// All weights of a model live in one flat float buffer, and all their gradients in a second buffer
// of the same layout. Layers hold indices into it (views), so an optimiser step is one pass over the
// trainable segments, saving is one write, and a data-parallel allreduce is one call on grads().
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "signcore/tensor.hpp"

namespace signcore {

class Layer;

// One weight tensor: a segment [offset, offset + size) of the flat buffers.
struct Weight {
  std::string name;         // "dense/kernel"
  Shape shape;              // Keras layout, e.g. (in, units)
  std::string initializer;  // used once, when the buffer is allocated
  bool learnable = true;    // false for BatchNormalization's moving statistics, never trained
  bool trainable = true;    // learnable and its layer is trainable
  std::size_t offset = 0;
  std::size_t size = 0;
  const Layer* owner = nullptr;
};

class Parameters {
 public:
  // Declare a weight (during build, before allocate()). Returns its index.
  std::size_t add(const Layer* owner, const std::string& name, const Shape& shape,
                  const std::string& initializer, bool learnable);
  // Allocate both buffers and run every weight's initialiser, in declaration order.
  void allocate();
  bool allocated() const { return allocated_; }

  float* value(std::size_t i) { return values_.data() + weights_[i].offset; }
  const float* value(std::size_t i) const { return values_.data() + weights_[i].offset; }
  // A weight's gradient, zeroed first if zero_grads() left it stale.
  float* grad(std::size_t i) {
    if (i < stale_.size() && stale_[i]) clear(i);
    return grads_.data() + weights_[i].offset;
  }
  // For a caller that adds its gradient into every element: *overwrite is true when the segment is
  // logically zero (after zero_grads()), so the caller writes instead of adding and the zeroing is
  // skipped (Dense's dW = x^T dz, 25.7 MB in seed 002's model, is then one write, not a memset, a
  // read and a write).
  float* grad_for_write(std::size_t i, bool* overwrite) {
    *overwrite = stale_[i] != 0;
    stale_[i] = 0;
    return grads_.data() + weights_[i].offset;
  }

  const std::vector<Weight>& weights() const { return weights_; }
  Weight& weight(std::size_t i) { return weights_[i]; }
  std::vector<float>& values() { return values_; }
  const std::vector<float>& values() const { return values_; }
  // The whole gradient buffer (optimisers, an allreduce), with every stale segment zeroed.
  std::vector<float>& grads();

  // Marks every gradient zero. The segments are zeroed lazily, when first read through grad() or
  // grads(), or never, when grad_for_write() overwrites them.
  void zero_grads();
  std::size_t count(bool trainable) const;  // elements of weights whose trainable flag matches
  std::size_t total() const { return values_.size(); }
  // Weights of `owner`, in declaration (Keras) order.
  std::vector<std::size_t> indices_of(const Layer* owner) const;
  // A weight's trainable flag follows its layer's; call after a layer's trainable changes.
  void set_trainable(const Layer* owner, bool trainable);

 private:
  void clear(std::size_t i);  // zero weight i's gradient segment, no longer stale

  std::vector<Weight> weights_;
  std::vector<float> values_, grads_;
  std::vector<char> stale_;  // per weight: its segment of grads_ is logically zero
  bool allocated_ = false;
};

}  // namespace signcore
