// Where the batch loop gets its batches when they do not come from in-memory arrays: the image
// iterators of the data pipeline (C++, prefetching on worker threads) and Python generators or
// keras.utils.Sequence-like objects (through the bindings). fit/evaluate/predict drive it.
#pragma once

#include <cstddef>
#include <vector>

#include "signcore/tensor.hpp"

namespace signcore {

class BatchSource {
 public:
  virtual ~BatchSource() = default;
  // Batches in one pass over the data (Keras: len(iterator)); 0 if unknown (then steps must be given).
  virtual std::size_t num_batches() const = 0;
  // Batch `index` of the current pass: one tensor per model input, batch axis first, and the
  // targets (left untouched when the source has none). Called in order 0, 1, ... within a pass.
  virtual void get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) = 0;
  // A pass is over: reshuffle, restart prefetching, ... (Keras: on_epoch_end).
  virtual void on_epoch_end() {}
  // Whether batches carry targets (fit/evaluate need them).
  virtual bool has_targets() const { return true; }
};

}  // namespace signcore
