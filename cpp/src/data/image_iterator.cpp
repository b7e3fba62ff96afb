#include "signcore/data/image_iterator.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "signcore/errors.hpp"

namespace signcore::data {

// ---------------------------------------------------------------------------------------------
// ImageIterator: planning (calling thread) and the worker pool

ImageIterator::ImageIterator(std::shared_ptr<const SampleSource> source, AugmentConfig config,
                             IteratorOptions options)
    : source_(std::move(source)), config_(std::move(config)), options_(options) {
  if (options_.batch_size == 0) fail<ValueError>("batch_size must be a positive integer. Received: batch_size=0");
  if (options_.max_queue_size == 0)
    fail<ValueError>("max_queue_size must be a positive integer. Received: max_queue_size=0");
  if (options_.workers < 0) fail<ValueError>("workers must be >= 0. Received: workers=", options_.workers);
  config_.validate();
  const Shape s = source_->sample_shape();
  if (s.size() != 3) fail<ValueError>("images must have shape (height, width, channels). Received: ", shape_str(s, false));
  h_ = s[0];
  w_ = s[1];
  c_ = s[2];
  per_sample_ = h_ * w_ * c_;
  for (const auto* v : {&config_.mean, &config_.std})
    if (!v->empty() && v->size() != per_sample_ && v->size() != c_)
      fail<ValueError>("featurewise statistics must broadcast to the image shape ", shape_str(s, false),
                       ". Received ", v->size(), " values");
  plan_.rng.seed_with(options_.seed ? *options_.seed : options_.fallback_seed);
  disable_opencv_threads();
}

ImageIterator::~ImageIterator() { stop_workers(); }

std::size_t ImageIterator::num_batches() const {
  return (source_->size() + options_.batch_size - 1) / options_.batch_size;
}

void ImageIterator::set_preprocess(std::function<void(float*, const Shape&)> fn) {
  std::lock_guard<std::mutex> lock(mu_);
  drop_plan();  // batches planned so far were standardized without it
  preprocess_ = std::move(fn);
}

void ImageIterator::start_pass(PlanState& s) const {
  const std::size_t n = source_->size();
  if (options_.shuffle) {
    s.order = std::make_shared<const std::vector<std::size_t>>(s.rng.permutation(n));
  } else {
    std::vector<std::size_t> o(n);
    std::iota(o.begin(), o.end(), std::size_t{0});
    s.order = std::make_shared<const std::vector<std::size_t>>(std::move(o));
  }
}

std::shared_ptr<ImageIterator::Job> ImageIterator::plan(std::size_t position, std::size_t new_passes) {
  auto job = std::make_shared<Job>();
  job->position = position;
  job->new_passes = new_passes;
  job->before = plan_;
  for (std::size_t k = 0; k < new_passes; ++k) start_pass(plan_);
  if (options_.seed) plan_.rng.seed_with(static_cast<std::uint32_t>(*options_.seed + plan_.calls));
  job->call = plan_.calls++;
  if (!plan_.order) start_pass(plan_);
  const std::size_t n = source_->size(), begin = position * options_.batch_size;
  const std::size_t end = std::min(begin + options_.batch_size, n);
  job->samples.assign(plan_.order->begin() + static_cast<std::ptrdiff_t>(begin),
                      plan_.order->begin() + static_cast<std::ptrdiff_t>(end));
  job->params.reserve(job->samples.size());
  for (std::size_t k = 0; k < job->samples.size(); ++k) job->params.push_back(draw_transform(config_, plan_.rng, h_, w_));
  job->standardize = !preprocess_;
  job->x = Tensor::from_shape({job->samples.size(), h_, w_, c_});
  job->remaining = job->samples.size();
  for (std::size_t k = 0; k < job->samples.size(); ++k) tasks_.push_back(Task{job, k});
  queue_.push_back(job);
  work_cv_.notify_all();
  return job;
}

void ImageIterator::top_up() {
  const std::size_t nb = num_batches();
  while (!queue_.empty() && queue_.size() < options_.max_queue_size) {
    const Job& last = *queue_.back();
    if (last.position + 1 < nb) plan(last.position + 1, 0);
    else plan(0, 1);  // the next pass, as after on_epoch_end
  }
}

void ImageIterator::drop_plan() {
  if (queue_.empty()) return;
  plan_ = queue_.front()->before;
  for (auto& j : queue_) j->cancelled = true;
  queue_.clear();
  tasks_.erase(std::remove_if(tasks_.begin(), tasks_.end(), [](const Task& t) { return t.job->cancelled; }),
               tasks_.end());
}

void ImageIterator::run_task(const Task& t, std::vector<float>& scratch) {
  Job& job = *t.job;
  float* out = job.x.data() + t.slot * per_sample_;
  std::exception_ptr err;
  try {
    source_->load(job.samples[t.slot], out);
    apply_transform(config_, job.params[t.slot], out, h_, w_, c_, scratch);
    if (job.standardize) standardize(config_, out, per_sample_, c_);
  } catch (...) {
    err = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mu_);
  finish_task(t, err);
}

void ImageIterator::finish_task(const Task& t, std::exception_ptr err) {
  Job& job = *t.job;
  if (err && (!job.error || t.slot < job.error_slot)) {  // the first image's error, whatever the timing
    job.error = err;
    job.error_slot = t.slot;
  }
  if (--job.remaining == 0) done_cv_.notify_all();
}

void ImageIterator::worker_loop() {
  std::vector<float> scratch;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
    if (stop_) return;
    Task t = std::move(tasks_.front());
    tasks_.pop_front();
    if (t.job->cancelled) continue;
    lock.unlock();
    run_task(t, scratch);
    lock.lock();
  }
}

void ImageIterator::ensure_workers() {
  if (!threads_.empty() || options_.workers == 0) return;
  stop_ = false;
  for (int i = 0; i < options_.workers; ++i) threads_.emplace_back([this] { worker_loop(); });
}

void ImageIterator::stop_workers() {
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    threads.swap(threads_);
  }
  work_cv_.notify_all();
  for (auto& t : threads) t.join();
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = false;
}

void ImageIterator::on_epoch_end() {
  std::lock_guard<std::mutex> lock(mu_);
  ++pending_new_passes_;
}

void ImageIterator::get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) {
  const std::size_t nb = num_batches();
  if (nb == 0) fail<ValueError>("the image iterator has no samples (0 images found), so it yields no batches");
  const std::size_t pos = index % nb;
  const auto start = std::chrono::steady_clock::now();
  struct Clock {  // adds the time spent here to wait_seconds_, however get_batch returns
    double& total;
    std::chrono::steady_clock::time_point t0;
    ~Clock() { total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }
  } clock{wait_seconds_, start};
  std::shared_ptr<Job> job;
  bool standardized;
  {
    std::unique_lock<std::mutex> lock(mu_);
    const std::size_t want_new = pending_new_passes_ + ((index >= nb && pos == 0) ? 1 : 0);
    if (queue_.empty() || queue_.front()->position != pos || queue_.front()->new_passes != want_new) {
      drop_plan();
      plan(pos, want_new);
    }
    job = queue_.front();
    standardized = job->standardize;
    top_up();
    ensure_workers();
    std::vector<float> scratch;
    while (job->remaining > 0) {
      if (!tasks_.empty() && tasks_.front().job == job) {  // help with our own batch
        Task t = std::move(tasks_.front());
        tasks_.pop_front();
        lock.unlock();
        run_task(t, scratch);
        lock.lock();
      } else {
        done_cv_.wait(lock);
      }
    }
    queue_.pop_front();
    pending_new_passes_ = 0;
    served_calls_ = job->call + 1;
    last_indices_ = job->samples;
    top_up();
  }
  if (job->error) std::rethrow_exception(job->error);
  if (!standardized) {
    const Shape s{h_, w_, c_};
    for (std::size_t k = 0; k < job->samples.size(); ++k) {
      float* img = job->x.data() + k * per_sample_;
      if (preprocess_) preprocess_(img, s);
      standardize(config_, img, per_sample_, c_);
    }
  }
  if (y && source_->has_targets()) source_->targets(job->samples, job->x, *y);
  x.resize(1);
  x[0] = std::move(job->x);
}

// ---------------------------------------------------------------------------------------------
// Sources

ClassMode class_mode_from_string(const std::string& s) {
  if (s == "categorical") return ClassMode::Categorical;
  if (s == "binary") return ClassMode::Binary;
  if (s == "sparse") return ClassMode::Sparse;
  if (s == "input") return ClassMode::Input;
  if (s.empty() || s == "none") return ClassMode::None;
  fail<ValueError>("Invalid class_mode: ", s, "; expected one of: 'categorical', 'binary', 'sparse', 'input', None");
}

namespace {

class DirectorySource : public SampleSource {
 public:
  DirectorySource(DirectoryIterator::Files files, ClassMode mode, DirectoryIterator::Loading loading)
      : files_(std::move(files)), mode_(mode), loading_(loading) {
    if (files_.paths.size() != files_.classes.size())
      fail<ValueError>("one class id per file is needed. Received: ", files_.paths.size(), " files and ",
                       files_.classes.size(), " class ids");
    for (int c : files_.classes)
      if (c < 0 || static_cast<std::size_t>(c) >= files_.num_classes)
        fail<ValueError>("class id ", c, " is out of range for ", files_.num_classes, " classes");
    if (loading_.height == 0 || loading_.width == 0)
      fail<ValueError>("target_size must hold two positive integers. Received: (", loading_.height, ", ",
                       loading_.width, ")");
  }
  std::size_t size() const override { return files_.paths.size(); }
  Shape sample_shape() const override { return {loading_.height, loading_.width, channels_of(loading_.color_mode)}; }
  void load(std::size_t i, float* out) const override {
    const Image8 img = load_img(files_.paths[i], loading_.color_mode, loading_.height, loading_.width,
                                loading_.interpolation, loading_.keep_aspect_ratio);
    std::copy(img.data.begin(), img.data.end(), out);
  }
  bool has_targets() const override { return mode_ != ClassMode::None; }
  void targets(const std::vector<std::size_t>& idx, const Tensor& x, Tensor& y) const override {
    const std::size_t n = idx.size();
    switch (mode_) {
      case ClassMode::Categorical: {
        y = Tensor::from_shape({n, files_.num_classes});
        std::fill(y.data(), y.data() + y.size(), 0.0f);
        for (std::size_t i = 0; i < n; ++i) y.data()[i * files_.num_classes + files_.classes[idx[i]]] = 1.0f;
        break;
      }
      case ClassMode::Binary:
      case ClassMode::Sparse:
        y = Tensor::from_shape({n});
        for (std::size_t i = 0; i < n; ++i) y.data()[i] = static_cast<float>(files_.classes[idx[i]]);
        break;
      case ClassMode::Input:
        y = x;
        break;
      case ClassMode::None: break;
    }
  }

 private:
  DirectoryIterator::Files files_;
  ClassMode mode_;
  DirectoryIterator::Loading loading_;
};

class ArraySource : public SampleSource {
 public:
  ArraySource(NumpyArrayIterator::Images x, std::optional<Tensor> y) : x_(std::move(x)), y_(std::move(y)) {
    if (x_.shape.size() != 4)
      fail<ValueError>("Input data in `NumpyArrayIterator` should have rank 4. You passed an array with shape ",
                       shape_str(x_.shape, false));
    if (y_ && (y_->dimension() == 0 || y_->shape()[0] != x_.shape[0]))
      fail<ValueError>("`x` (images tensor) and `y` (labels) should have the same length. Found: x.shape = ",
                       shape_str(x_.shape, false), ", y.shape = ", shape_str(shape_of(*y_), false));
    per_ = x_.shape[1] * x_.shape[2] * x_.shape[3];
  }
  std::size_t size() const override { return x_.shape[0]; }
  Shape sample_shape() const override { return {x_.shape[1], x_.shape[2], x_.shape[3]}; }
  void load(std::size_t i, float* out) const override {
    if (x_.is_uint8) {
      const auto* p = static_cast<const std::uint8_t*>(x_.data) + i * per_;
      for (std::size_t k = 0; k < per_; ++k) out[k] = static_cast<float>(p[k]);
    } else {
      const auto* p = static_cast<const float*>(x_.data) + i * per_;
      std::copy(p, p + per_, out);
    }
  }
  bool has_targets() const override { return y_.has_value(); }
  void targets(const std::vector<std::size_t>& idx, const Tensor& x, Tensor& y) const override {
    Shape s = shape_of(*y_);
    const std::size_t row = shape_size(s) / s[0];
    s[0] = idx.size();
    y = Tensor::from_shape(s);
    for (std::size_t i = 0; i < idx.size(); ++i)
      std::copy(y_->data() + idx[i] * row, y_->data() + (idx[i] + 1) * row, y.data() + i * row);
  }

 private:
  NumpyArrayIterator::Images x_;
  std::optional<Tensor> y_;
  std::size_t per_ = 0;
};

}  // namespace

DirectoryIterator::DirectoryIterator(Files files, ClassMode class_mode, Loading loading, AugmentConfig config,
                                     IteratorOptions options)
    : ImageIterator(std::make_shared<DirectorySource>(std::move(files), class_mode, loading), std::move(config),
                    options) {}

NumpyArrayIterator::NumpyArrayIterator(Images x, std::optional<Tensor> y, AugmentConfig config,
                                       IteratorOptions options)
    : ImageIterator(std::make_shared<ArraySource>(std::move(x), std::move(y)), std::move(config), options) {}

}  // namespace signcore::data
