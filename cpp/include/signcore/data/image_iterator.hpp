// Keras's image iterators (flow_from_directory's DirectoryIterator, flow's NumpyArrayIterator) as
// BatchSources: fit/evaluate/predict pull batches straight from C++ while a small pool of worker
// threads decodes, resizes, augments and standardizes the next batches.
//
// Batches follow Keras's Iterator.__getitem__ (keras/src/legacy/preprocessing/image.py):
//  - every call reseeds the iterator's NumPy-compatible generator with `seed + total_batches_seen`
//    (when a seed is given), then draws the pass's order if there is none yet, then one set of
//    transform parameters per image, in batch order; on_epoch_end draws the next pass's order from
//    the generator as it stands. A seed therefore reproduces Keras's shuffles and augmentations.
//    Without a seed the generator starts from a random seed the caller supplies.
//  - get_batch(index) serves batch `index % len` of the current pass; an index past the end starts
//    a new pass (as on_epoch_end would) each time it wraps to 0.
// Everything random is drawn on the calling thread when a batch is planned, and each image's
// parameters are fixed before any worker touches it, so results do not depend on the worker count.
//
// Prefetching: after serving batch i the iterator plans batches i+1, i+2, ... (up to
// max_queue_size), and, after the last batch of a pass, the first batches of the next pass as if
// on_epoch_end were called. Workers take images in plan order, so the batch the model waits for
// is always finished first; the waiting thread works on its own batch too (workers = 0 is fully
// synchronous). A request that does not match the plan (out-of-order access, a restart at 0
// without on_epoch_end) drops the planned batches and rewinds the generator to where the plan
// diverged, so the result is the same as without prefetching.
//
// Errors in a worker (an unreadable file, ...) are kept with their batch and rethrown, naming the
// file, by the get_batch that serves it; a worker never terminates the process. Workers call no
// Python: a Python preprocessing_function runs in get_batch's thread (see set_preprocess).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "signcore/batch_source.hpp"
#include "signcore/data/augment.hpp"
#include "signcore/data/image.hpp"
#include "signcore/tensor.hpp"

namespace signcore::data {

// Where the samples come from. load() must be thread-safe.
class SampleSource {
 public:
  virtual ~SampleSource() = default;
  virtual std::size_t size() const = 0;
  virtual Shape sample_shape() const = 0;  // (H, W, C)
  // Sample i before augmentation into out: (H, W, C) float32.
  virtual void load(std::size_t i, float* out) const = 0;
  virtual bool has_targets() const = 0;
  // Targets of samples idx[0..n) into y (resized here); x is the finished batch (for "input" mode).
  virtual void targets(const std::vector<std::size_t>& idx, const Tensor& x, Tensor& y) const = 0;
};

struct IteratorOptions {
  std::size_t batch_size = 32;
  bool shuffle = true;
  std::optional<std::uint32_t> seed;  // Keras's seed
  std::uint32_t fallback_seed = 0;    // starting seed of the generator when there is no seed
  int workers = 1;                    // worker threads (0: everything on the calling thread)
  std::size_t max_queue_size = 4;     // batches planned ahead, the one being waited for included
};

class ImageIterator : public BatchSource {
 public:
  // ValueError for batch_size 0, max_queue_size 0 or negative workers.
  ImageIterator(std::shared_ptr<const SampleSource> source, AugmentConfig config, IteratorOptions options);
  ~ImageIterator() override;
  ImageIterator(const ImageIterator&) = delete;
  ImageIterator& operator=(const ImageIterator&) = delete;

  std::size_t num_batches() const override;
  void get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) override;
  void on_epoch_end() override;
  bool has_targets() const override { return source_->has_targets(); }

  // Sample indices of the batch served last (Keras's index_array slice).
  const std::vector<std::size_t>& last_indices() const { return last_indices_; }
  std::size_t samples() const { return source_->size(); }
  std::size_t batch_size() const { return options_.batch_size; }
  int workers() const { return options_.workers; }
  Shape image_shape() const { return source_->sample_shape(); }
  // Keras's total_batches_seen: batches served so far.
  std::size_t total_batches_seen() const { return served_calls_; }
  // Seconds the calling thread has spent in get_batch (waiting for, or finishing, its batch): the
  // time a training loop was kept waiting for data.
  double wait_seconds() const { return wait_seconds_; }
  const AugmentConfig& config() const { return config_; }
  // Called on get_batch's thread for every image after its transform, before standardize (Keras's
  // preprocessing_function); it may change the values in place, not the shape. Empty: none.
  void set_preprocess(std::function<void(float*, const Shape&)> fn);
  // Join the worker threads now (they restart on the next get_batch).
  void stop_workers();

 private:
  // The generator's position in Keras's sequence of calls.
  struct PlanState {
    NumpyRandomState rng;
    std::size_t calls = 0;  // total_batches_seen
    std::shared_ptr<const std::vector<std::size_t>> order;  // the pass's index_array (null: none yet)
  };
  struct Job {
    std::size_t position = 0, new_passes = 0;
    PlanState before;  // to rewind when the plan is dropped
    std::size_t call = 0;
    std::vector<std::size_t> samples;
    std::vector<TransformParams> params;
    bool standardize = true;  // in the worker (false: get_batch runs preprocess_ then standardize)
    Tensor x;
    std::size_t remaining = 0;  // images not finished (guarded by mu_)
    bool cancelled = false;
    std::exception_ptr error;
    std::size_t error_slot = 0;
  };
  struct Task {
    std::shared_ptr<Job> job;
    std::size_t slot;
  };

  void start_pass(PlanState& s) const;
  std::shared_ptr<Job> plan(std::size_t position, std::size_t new_passes);  // mu_ held
  void top_up();                                                           // mu_ held
  void drop_plan();                                                        // mu_ held
  void run_task(const Task& t, std::vector<float>& scratch);
  void finish_task(const Task& t, std::exception_ptr err);  // mu_ held
  void worker_loop();
  void ensure_workers();

  std::shared_ptr<const SampleSource> source_;
  AugmentConfig config_;
  IteratorOptions options_;
  std::size_t h_, w_, c_, per_sample_;

  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::shared_ptr<Job>> queue_;  // planned batches, in serving order
  std::deque<Task> tasks_;                  // images left to process, in plan order
  PlanState plan_;                          // state after the last planned batch
  std::size_t pending_new_passes_ = 0;      // on_epoch_end calls since the last batch served
  std::vector<std::thread> threads_;
  bool stop_ = false;

  std::function<void(float*, const Shape&)> preprocess_;
  std::vector<std::size_t> last_indices_;
  std::size_t served_calls_ = 0;
  double wait_seconds_ = 0;
};

enum class ClassMode { Categorical, Binary, Sparse, Input, None };
// "categorical", "binary", "sparse", "input", "" / "none"; ValueError otherwise.
ClassMode class_mode_from_string(const std::string& s);

// flow_from_directory: files (already listed, in Keras's order) with their class ids.
class DirectoryIterator : public ImageIterator {
 public:
  struct Files {
    std::vector<std::string> paths;
    std::vector<int> classes;  // one per path, in [0, num_classes)
    std::size_t num_classes = 0;
  };
  struct Loading {
    ColorMode color_mode = ColorMode::RGB;
    std::size_t height = 256, width = 256;
    Interpolation interpolation = Interpolation::Nearest;
    bool keep_aspect_ratio = false;
  };
  // ValueError for mismatched lengths, a class id out of range or an empty target size.
  DirectoryIterator(Files files, ClassMode class_mode, Loading loading, AugmentConfig config,
                    IteratorOptions options);
};

// flow(x, y): images in memory, uint8 or float32, (N, H, W, C), owned by `keep_alive` (not copied).
class NumpyArrayIterator : public ImageIterator {
 public:
  struct Images {
    const void* data = nullptr;
    bool is_uint8 = false;
    Shape shape;  // (N, H, W, C)
    std::shared_ptr<const void> keep_alive;
  };
  // y: (N, ...) float32 copied, or nullopt for x-only batches. ValueError for mismatched lengths.
  NumpyArrayIterator(Images x, std::optional<Tensor> y, AugmentConfig config, IteratorOptions options);
};

}  // namespace signcore::data
