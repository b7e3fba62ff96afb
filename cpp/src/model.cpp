#include "signcore/model.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "signcore/errors.hpp"
#include "signcore/layers/batch_norm.hpp"
#include "signcore/layers/conv2d.hpp"
#include "signcore/layers/pooling.hpp"
#include "signcore/parallel.hpp"
#include "signcore/random.hpp"

namespace signcore {

// ---------------------------------------------------------------------------------------------
// Graph

int Model::add_input(const ModelInput& input) {
  if (built_) fail<StateError>("cannot add an input to model '", name_, "' after it was built");
  if (input.dtype != "float32" && input.dtype != "bool")
    fail<ValueError>("Input dtype must be 'float32' or 'bool'. Received: dtype='", input.dtype, "'");
  for (auto d : input.shape)
    if (d == 0) fail<ValueError>("Input shape dimensions must be positive. Received: shape=", shape_str(input.shape, false));
  inputs_.push_back(input);
  return input_ref(static_cast<int>(inputs_.size()) - 1);
}

namespace {
// Mask sources: tensor references use the node/input convention; a node's own computed mask is
// encoded below every input reference.
constexpr int kComputedBase = -1000000;
int computed_mask(int node) { return kComputedBase - node; }
bool is_computed(int src) { return src != kNoMask && src <= kComputedBase; }
}  // namespace

int Model::add_node(LayerPtr layer, std::vector<int> inputs, int mask) {
  if (built_) fail<StateError>("cannot add layer '", layer ? layer->name() : "?", "' to model '", name_, "' after it was built");
  if (!layer) fail<ValueError>("add_node needs a layer. Received: None");
  if (inputs.empty()) fail<ValueError>("layer '", layer->name(), "' needs at least one input");
  const int n = static_cast<int>(nodes_.size());
  for (int ref : inputs) {
    const bool ok = ref >= 0 ? ref < n : (-1 - ref) < static_cast<int>(inputs_.size());
    if (!ok) fail<ValueError>("layer '", layer->name(), "' refers to an unknown input node ", ref);
  }
  for (const auto& node : nodes_)
    if (node.layer == layer)
      fail<ValueError>("layer '", layer->name(), "' is used twice; shared layers are not supported yet");
  if (mask != kNoMask) {
    const bool ok = mask >= 0 ? mask < n : (-1 - mask) < static_cast<int>(inputs_.size());
    if (!ok) fail<ValueError>("layer '", layer->name(), "' is given an unknown mask tensor ", mask);
  }
  std::vector<LayerPtr> sources;
  for (int ref : inputs) sources.push_back(ref >= 0 ? nodes_[ref].layer : nullptr);
  layer->connect(sources);
  nodes_.push_back(Node{std::move(layer), std::move(inputs), mask});
  output_ = n;
  return n;
}

void Model::set_output(int node) {
  if (node < 0 || node >= static_cast<int>(nodes_.size()))
    fail<ValueError>("output must be a layer node of the model. Received: node=", node);
  output_ = node;
}

void Model::build() {
  if (built_) return;
  if (inputs_.empty()) fail<ValueError>("model '", name_, "' has no input: give the first layer input_shape=... or start with Input(shape)");
  if (nodes_.empty()) fail<ValueError>("model '", name_, "' has no layers");
  std::vector<Shape> shapes(nodes_.size());
  try {
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      std::vector<Shape> in;
      for (int ref : nodes_[i].inputs) in.push_back(ref >= 0 ? shapes[ref] : inputs_[-1 - ref].shape);
      shapes[i] = nodes_[i].layer->build_in(in, params_);
    }
    params_.allocate();
    in_mask_.assign(nodes_.size(), kNoMask);
    out_mask_.assign(nodes_.size(), kNoMask);
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
      const Node& node = nodes_[i];
      if (node.mask != kNoMask) in_mask_[i] = node.mask;
      else if (node.inputs.size() == 1 && node.inputs[0] >= 0) in_mask_[i] = out_mask_[node.inputs[0]];
      switch (node.layer->mask_mode()) {
        case MaskMode::None: out_mask_[i] = kNoMask; break;
        case MaskMode::PassThrough: out_mask_[i] = in_mask_[i]; break;
        case MaskMode::Compute: out_mask_[i] = computed_mask(static_cast<int>(i)); break;
      }
    }
    masks_.assign(nodes_.size(), Tensor());
  } catch (...) {
    // Leave the layers reusable: a failed build (e.g. a shape mismatch) must not half-own them.
    for (auto& node : nodes_) node.layer->reset_build();
    params_ = Parameters();
    throw;
  }
  outs_.assign(nodes_.size(), Tensor());
  grads_.assign(nodes_.size(), Tensor());
  fuse_activations();
  fuse_normalizations();
  hand_off_relus();
  fuse_poolings();
  find_inference_identities();
  built_ = true;
}

// How many times each node's output is read (as an input or a mask).
std::vector<int> Model::reader_counts() const {
  std::vector<int> readers(nodes_.size(), 0);
  for (const Node& node : nodes_) {
    for (int ref : node.inputs)
      if (ref >= 0) ++readers[ref];
    if (node.mask >= 0) ++readers[node.mask];
  }
  return readers;
}

// An Activation layer whose input is the output of a layer that only it reads, with no mask on
// either, is applied by that layer instead (Layer::fuse_activation: a Conv2D / Conv3D without an
// activation of its own): the activation runs in the convolution's epilogue while the values are
// in cache, its derivative in the convolution's backward, and the model keeps one activation
// tensor instead of two. The Activation node is skipped; its readers (and its gradient) use the
// producer's. Keras's seed models write Conv2D + Activation("relu") this way.
void Model::fuse_activations() {
  const std::size_t n = nodes_.size();
  alias_.resize(n);
  fused_.assign(n, 0);
  for (std::size_t i = 0; i < n; ++i) alias_[i] = static_cast<int>(i);
  const std::vector<int> readers = reader_counts();
  for (std::size_t j = 0; j < n; ++j) {
    const Node& node = nodes_[j];
    if (node.layer->class_name() != "Activation" || node.inputs.size() != 1) continue;
    const int i = node.inputs[0];
    if (i < 0 || readers[i] != 1 || static_cast<int>(j) == output_ || i == output_) continue;
    if (in_mask_[j] != kNoMask || out_mask_[i] != kNoMask || alias_[i] != i) continue;
    if (!nodes_[i].layer->fuse_activation(node.layer.get())) continue;
    alias_[j] = i;
    fused_[j] = 1;
  }
}

namespace {
std::atomic<bool> g_fuse_normalizations{true}, g_fuse_poolings{true};
}  // namespace

void Model::set_fuse_normalizations(bool on) { g_fuse_normalizations = on; }
bool Model::fuse_normalizations_enabled() { return g_fuse_normalizations; }
void Model::set_fuse_poolings(bool on) { g_fuse_poolings = on; }
bool Model::fuse_poolings_enabled() { return g_fuse_poolings; }

// A BatchNormalization whose output only a MaxPooling reads, with no mask on either and neither
// the model's output, leaves its per-channel map to the pooling (Layer::fuse_normalization): the
// pooling takes the window maxima of (x - mean) * scale + shift straight from the normalisation's
// input, so the normalised tensor is never written nor read again. Training saves one full pass
// over the activation (BatchNormalization's write and the pooling's read of it), inference the
// whole normalisation pass, and the model holds one activation tensor fewer. Seed 002's ASL model
// and the emotion model run Conv2D -> BatchNormalization -> MaxPooling2D three times.
void Model::fuse_normalizations() {
  const std::size_t n = nodes_.size();
  reads_from_.assign(n, -1);
  applied_by_.assign(n, -1);
  if (!g_fuse_normalizations) return;
  const std::vector<int> readers = reader_counts();
  for (std::size_t j = 0; j < n; ++j) {
    const Node& node = nodes_[j];
    if (fused_[j] || node.inputs.size() != 1) continue;
    const int i = node.inputs[0];
    if (i < 0 || fused_[i] || readers[i] != 1 || static_cast<int>(j) == output_ || i == output_) continue;
    auto* bn = dynamic_cast<BatchNormalization*>(nodes_[i].layer.get());
    if (!bn || nodes_[i].inputs.size() != 1) continue;
    if (in_mask_[i] != kNoMask || out_mask_[i] != kNoMask || in_mask_[j] != kNoMask) continue;
    if (!node.layer->fuse_normalization(bn)) continue;
    bn->defer_output(true);
    reads_from_[j] = i;
    applied_by_[i] = static_cast<int>(j);
  }
}

// A BatchNormalization whose input is the relu output of a layer that only it reads (a Conv2D with
// activation="relu", or with a fused Activation("relu")), with no masks and neither being the
// model's output, applies the relu's derivative in its own backward: it holds that output as its
// input, and x > 0 exactly where z > 0. The producer then takes the gradient as dL/dz and skips its
// own pass over dy and y (Layer::receive_relu_masked_gradient). Switched with the normalisation
// fusion (set_fuse_normalizations).
void Model::hand_off_relus() {
  relu_handoff_.assign(nodes_.size(), 0);
  if (!g_fuse_normalizations) return;
  const std::vector<int> readers = reader_counts();
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    auto* bn = dynamic_cast<BatchNormalization*>(nodes_[i].layer.get());
    if (!bn || fused_[i] || nodes_[i].inputs.size() != 1 || nodes_[i].mask != kNoMask) continue;
    const int c = nodes_[i].inputs[0];
    if (c < 0 || readers[c] != 1) continue;
    const int p = alias_[c];  // the producer, when node c is an Activation it applies
    if (p != c && readers[p] != 1) continue;
    if (p == output_ || c == output_ || static_cast<int>(i) == output_) continue;
    if (in_mask_[i] != kNoMask || out_mask_[p] != kNoMask || out_mask_[c] != kNoMask) continue;
    if (!nodes_[p].layer->receive_relu_masked_gradient(true)) continue;
    bn->apply_relu_derivative(true);
    relu_handoff_[i] = 1;
  }
}

// Seed 001's CIFAR-10 model pools two of its convolutions directly; the ASL and emotion models
// pool three convolutions through a BatchNormalization. In inference the pooling then costs no
// pass of its own, and the convolution's output, four times the pooled size, is never written; in
// training, through a BatchNormalization, neither the normalisation's statistics nor the pooling
// read that output again.
void Model::fuse_poolings() {
  const std::size_t n = nodes_.size();
  pool_conv_.assign(n, -1);
  pool_chain_.assign(n, -1);
  if (!g_fuse_poolings) return;
  const std::vector<int> readers = reader_counts();
  for (std::size_t j = 0; j < n; ++j) {
    auto* pool = dynamic_cast<MaxPooling*>(nodes_[j].layer.get());
    if (!pool || fused_[j] || nodes_[j].inputs.size() != 1 || in_mask_[j] != kNoMask) continue;
    const int bn = reads_from_[j];  // a BatchNormalization that j applies, or -1
    const int c = bn >= 0 ? nodes_[bn].inputs[0] : nodes_[j].inputs[0];
    if (c < 0 || readers[c] != 1 || c == output_ || bn == output_) continue;
    const int p = alias_[c];  // the convolution, when node c is an Activation it applies
    if ((p != c && readers[p] != 1) || p == output_ || nodes_[p].inputs.size() != 1) continue;
    if (in_mask_[p] != kNoMask || out_mask_[p] != kNoMask || out_mask_[c] != kNoMask) continue;
    auto* conv = dynamic_cast<Convolution*>(nodes_[p].layer.get());
    if (!conv || !conv->can_pool_into(*pool)) continue;
    pool_conv_[j] = p;
    for (int i : {p, bn, static_cast<int>(j)})
      if (i >= 0) pool_chain_[i] = static_cast<int>(j);
  }
}

void Model::find_inference_identities() {
  const std::size_t n = nodes_.size();
  inference_source_.resize(n);
  std::vector<char> mask_source(n, 0);  // outputs read as mask values stay computed
  for (std::size_t i = 0; i < n; ++i)
    for (int m : {in_mask_[i], out_mask_[i]})
      if (m >= 0 && static_cast<std::size_t>(m) < n) mask_source[m] = 1;
  for (std::size_t i = 0; i < n; ++i) {  // nodes come after their inputs
    const Node& node = nodes_[i];
    inference_source_[i] = static_cast<int>(i);
    if (!node.layer->identity_in_inference() || node.inputs.size() != 1 || mask_source[i] ||
        fused_[i] || applied_by_[i] >= 0 || pool_chain_[i] >= 0)
      continue;
    const int ref = node.inputs[0];
    inference_source_[i] = ref >= 0 ? inference_source_[ref] : ref;
  }
}

bool Model::pools_in_convolution(int j, bool training) const {
  // Trained fused only through a BatchNormalization: without one the fused training forward saves
  // the pooling's pass alone, and measured no faster (CIFAR-10: per-round 0.99, backward a little
  // slower). can_pool_into again: the direct-kernel switch may have changed since build().
  return pool_conv_[j] >= 0 && (!training || reads_from_[j] >= 0) &&
         static_cast<const Convolution&>(*nodes_[pool_conv_[j]].layer)
             .can_pool_into(static_cast<const Pooling&>(*nodes_[j].layer));
}

// Node i of the chain ending at pooling node j, in a training forward (a chain through a
// BatchNormalization): the convolution writes its output and, while each row of windows is in
// cache, the window maxima (in the sign of the normalisation's gamma) and the line sums for the
// normalisation's statistics; the normalisation then takes its statistics from those sums and the
// pooling maps the maxima in place. Neither reads the convolution's output again. The map is
// monotonic in each channel, so the maxima of sign(gamma) x are those of the map; only where the
// map rounds two different values to the same float can the cell differ (the unfused pooling takes
// the first of them, this the larger), which moves no value and a gradient by one cell.
// The statistics are summed in another order (per line, shifted by the moving mean): float
// rounding against the unfused forward.
template <class Value>
void Model::forward_training_chain(int i, int j, const Value& value, const Context& ctx) {
  const int p = pool_conv_[j], bn = reads_from_[j];
  auto& conv = static_cast<Convolution&>(*nodes_[p].layer);
  auto& pool = static_cast<MaxPooling&>(*nodes_[j].layer);
  auto* norm = &static_cast<BatchNormalization&>(*nodes_[bn].layer);  // pools_in_convolution
  const bool batch_stats = norm->trainable();  // a frozen one uses its moving statistics
  if (i == p) {
    const Tensor& x = value(nodes_[p].inputs[0]);
    const std::size_t N = x.dimension() > 0 ? x.shape()[0] : 0;
    Convolution::PooledTraining out;
    out.at = pool.prepare_training(N, outs_[j]);
    out.values = outs_[j].data();
    const auto stats = norm->prepare_fused_statistics(batch_stats ? N * conv.output_shape()[0] : 0);
    out.sign = stats.sign;
    if (batch_stats) {
      out.shift = stats.shift;
      out.sums = stats.sums;
    }
    conv.forward_pooled_training(x, outs_[p], pool, out);
  } else if (i == bn) {
    if (batch_stats) {
      norm->forward_from_sums(outs_[p]);
    } else {  // frozen: the moving statistics' map, no pass over its input
      const std::vector<const Tensor*> in{&outs_[p]};
      norm->forward(in, outs_[bn], ctx);
    }
  } else {
    pool.finish_training(outs_[p], outs_[j]);
  }
}

int Model::pooled_in(std::size_t i) const {
  if (i >= pool_chain_.size() || pool_chain_[i] < 0) return -1;
  const int j = pool_chain_[i], p = pool_conv_[j];
  return static_cast<int>(i) != p && pools_in_convolution(j, false) ? p : -1;
}

void Model::detach_layers() {
  for (auto& node : nodes_) {
    node.layer->fuse_activation(nullptr);
    node.layer->fuse_normalization(nullptr);
    node.layer->receive_relu_masked_gradient(false);
    if (auto* bn = dynamic_cast<BatchNormalization*>(node.layer.get())) {
      bn->defer_output(false);
      bn->apply_relu_derivative(false);
    }
    node.layer->reset_build();
  }
  alias_.clear();
  fused_.clear();
  reads_from_.clear();
  applied_by_.clear();
  relu_handoff_.clear();
  inference_source_.clear();
  pool_conv_.clear();
  pool_chain_.clear();
  nodes_.clear();
  inputs_.clear();
  params_ = Parameters();
  outs_.clear();
  grads_.clear();
  built_ = false;
  output_ = -1;
}

Shape Model::output_shape() const {
  if (!built_) fail<StateError>("model '", name_, "' is not built yet");
  return nodes_[output_].layer->output_shape();
}

void Model::set_layer_trainable(Layer& layer, bool trainable) { layer.set_trainable(trainable); }

void Model::compile(OptimizerPtr optimizer, LossPtr loss, std::vector<std::string> metrics,
                    std::vector<MetricPtr> objects) {
  if (!optimizer) fail<ValueError>("compile needs an optimizer. Received: None");
  if (!loss) fail<ValueError>("compile needs a loss. Received: None");
  objects.resize(metrics.size());
  for (std::size_t i = 0; i < metrics.size(); ++i)
    if (objects[i]) metrics[i] = objects[i]->name();
  optimizer_ = std::move(optimizer);
  loss_ = std::move(loss);
  metric_names_ = std::move(metrics);
  metric_objects_ = std::move(objects);
  metrics_.clear();
}

// ---------------------------------------------------------------------------------------------
// Forward and backward over the graph

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

const Tensor& Model::forward(const std::vector<const Tensor*>& x, bool training) {
  build();
  Context ctx;
  ctx.training = training;
  ctx.rng = &global_rng();
  // The value of reference ref (a node, or model input -1 - k) in this forward.
  auto value = [&](int ref) -> const Tensor& {
    if (ref >= 0 && !training) ref = inference_source_[ref];
    return ref >= 0 ? outs_[alias_[ref]] : *x[-1 - ref];
  };
  std::vector<const Tensor*> in;
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (fused_[i]) continue;  // applied by its producer
    if (!training && inference_source_[i] != static_cast<int>(i)) continue;  // its input passes
    if (const int j = pool_chain_[i]; j >= 0 && training && pools_in_convolution(j, true)) {
      const auto t0 = std::chrono::steady_clock::now();
      forward_training_chain(static_cast<int>(i), j, value, ctx);
      if (profiling_) profiling_->forward[i] += seconds_since(t0);
      continue;
    }
    if (const int j = pool_chain_[i]; j >= 0 && !training && pools_in_convolution(j, false)) {
      // A convolution + pooling chain (fuse_poolings()): the pooling node runs it all.
      if (static_cast<int>(i) != j) continue;
      const int p = pool_conv_[j], bn = reads_from_[j], ref = nodes_[p].inputs[0];
      const ChannelMap map =
          bn >= 0 ? dynamic_cast<BatchNormalization&>(*nodes_[bn].layer).inference_map() : ChannelMap{};
      const auto t0 = std::chrono::steady_clock::now();
      static_cast<Convolution&>(*nodes_[p].layer)
          .forward_pooled(value(ref),
                          static_cast<const Pooling&>(*nodes_[j].layer), bn >= 0 ? &map : nullptr,
                          outs_[j]);
      if (profiling_) profiling_->forward[p] += seconds_since(t0);
      continue;
    }
    in.clear();
    // A pooling that applies a BatchNormalization reads that node's input (fuse_normalizations()).
    const auto& refs = reads_from_[i] >= 0 ? nodes_[reads_from_[i]].inputs : nodes_[i].inputs;
    for (int ref : refs) in.push_back(&value(ref));
    ctx.mask = resolve_mask(in_mask_[i], x);
    Layer& layer = *nodes_[i].layer;
    const auto t0 = std::chrono::steady_clock::now();
    if (layer.mask_mode() == MaskMode::Compute) layer.compute_mask(in, ctx.mask, masks_[i]);
    layer.forward(in, outs_[i], ctx);
    if (profiling_) profiling_->forward[i] += seconds_since(t0);
  }
  return value(output_);
}

const Tensor* Model::resolve_mask(int src, const std::vector<const Tensor*>& x) const {
  if (src == kNoMask) return nullptr;
  if (is_computed(src)) return &masks_[kComputedBase - src];
  return src >= 0 ? &outs_[alias_[src]] : x[-1 - src];
}

void Model::backward(const Tensor& dy) {
  // Gradients flow from the output node back in reverse graph order. A node read by several
  // layers (or twice by one) receives the sum: later contributions go through scratch tensors.
  std::vector<char> has_grad(nodes_.size(), 0);
  has_grad[output_] = 1;
  std::vector<Tensor*> dins;
  std::vector<Tensor> scratch;
  for (int i = static_cast<int>(nodes_.size()) - 1; i >= 0; --i) {
    if (!has_grad[i]) continue;
    if (fused_[i]) {  // the producer applies this activation's derivative: hand it the gradient
      std::swap(grads_[alias_[i]], grads_[i]);
      has_grad[alias_[i]] = 1;
      continue;
    }
    if (reads_from_[i] >= 0) {  // the BatchNormalization it applies takes this gradient scattered
      has_grad[reads_from_[i]] = 1;
      continue;
    }
    const Tensor& g = i == output_ ? dy : grads_[i];
    const auto& refs = nodes_[i].inputs;
    dins.assign(refs.size(), nullptr);
    scratch.resize(refs.size());
    std::vector<char> add(refs.size(), 0);
    for (std::size_t k = 0; k < refs.size(); ++k) {
      if (refs[k] < 0) continue;  // model inputs need no gradient
      if (has_grad[refs[k]]) {
        dins[k] = &scratch[k];
        add[k] = 1;
      } else {
        dins[k] = &grads_[refs[k]];
        has_grad[refs[k]] = 1;
      }
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (const int j = applied_by_[i]; j >= 0) {
      auto& pool = dynamic_cast<MaxPooling&>(*nodes_[j].layer);
      dynamic_cast<BatchNormalization&>(*nodes_[i].layer)
          .backward_scattered(pool.scattered_gradient(grads_[j]), dins[0]);
    } else {
      nodes_[i].layer->backward(g, dins);
    }
    for (std::size_t k = 0; k < refs.size(); ++k) {
      if (!add[k]) continue;
      float* t = grads_[refs[k]].data();
      const float* s = scratch[k].data();
      for (std::size_t j = 0, n = grads_[refs[k]].size(); j < n; ++j) t[j] += s[j];
    }
    if (profiling_) profiling_->backward[i] += seconds_since(t0);
  }
}

// ---------------------------------------------------------------------------------------------
// Batches

void gather_rows(const ArrayView& src, const std::size_t* idx, std::size_t n, Tensor& dst) {
  Shape s = src.shape;
  s[0] = n;
  ensure_shape(dst, s);
  const std::size_t row = src.row_size();
  float* out = dst.data();
  parallel_for(n, 256, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i)
      std::memcpy(out + i * row, src.data + idx[i] * row, row * sizeof(float));
  });
}

void Model::check_inputs(const std::vector<ArrayView>& x, const ArrayView* y) const {
  if (x.size() != inputs_.size())
    fail<ValueError>("model '", name_, "' expects ", inputs_.size(), " input array(s). Received: ", x.size());
  for (std::size_t k = 0; k < x.size(); ++k) {
    const Shape expected = inputs_[k].shape;
    const Shape got(x[k].shape.begin() + (x[k].shape.empty() ? 0 : 1), x[k].shape.end());
    if (x[k].shape.empty() || got != expected)
      fail<ValueError>("Input ", k, " of model '", name_, "' must have shape ", shape_str(expected),
                       ". Received: ", shape_str(x[k].shape, false));
    if (x[k].rows() != x[0].rows())
      fail<ValueError>("All inputs must have the same number of samples. Received: ", x[0].rows(), " and ", x[k].rows());
  }
  if (y && y->rows() != x[0].rows())
    fail<ValueError>("x and y must have the same number of samples. Received: x has ", x[0].rows(),
                     " samples, y has ", y->rows());
}

void Model::check_interrupt() {
  if (interrupt_check) interrupt_check();
}

void Model::resolve_metrics(const Tensor& y_true, const Tensor& y_pred) {
  if (!metrics_.empty() || metric_names_.empty()) return;
  for (std::size_t i = 0; i < metric_names_.size(); ++i)
    metrics_.push_back(metric_objects_[i] ? metric_objects_[i]
                                          : make_metric(metric_names_[i], shape_of(y_true), shape_of(y_pred), loss_.get()));
}

namespace {
struct RunningMean {
  double sum = 0, count = 0;
  void add(double v, double n) { sum += v * n; count += n; }
  double value() const { return count > 0 ? sum / count : 0.0; }
};
}  // namespace

Logs Model::step(Mode mode, const std::vector<Tensor>& xb, const Tensor* yb, Tensor* yp) {
  std::vector<const Tensor*> x;
  for (const auto& t : xb) x.push_back(&t);
  Logs logs;
  if (mode == Mode::Predict) {
    const Tensor& y = forward(x, false);
    if (yp) *yp = y;
    return logs;
  }
  const bool train = mode == Mode::Train;
  if (train) params_.zero_grads();
  const Tensor& y = forward(x, train);
  auto t0 = std::chrono::steady_clock::now();
  const double loss = loss_->compute(y, *yb, train ? &dy_ : nullptr);
  resolve_metrics(*yb, y);
  for (auto& m : metrics_) m->update_state(*yb, y);
  if (profiling_) profiling_->loss += seconds_since(t0);
  if (train) {
    backward(dy_);
    t0 = std::chrono::steady_clock::now();
    optimizer_->build(params_);
    optimizer_->apply(params_);
    if (profiling_) profiling_->optimizer += seconds_since(t0);
  }
  logs.set("loss", loss);
  return logs;
}

Logs Model::run_loop(Mode mode, BatchSource& data, std::size_t steps,
                     std::vector<CallbackPtr>& callbacks, Tensor* out, std::size_t* position) {
  const std::size_t pass = data.num_batches();
  for (auto& m : metrics_) m->reset_state();
  RunningMean loss;
  Logs logs;
  Tensor yp;
  std::vector<float> rows;  // predict: outputs gathered in order
  Shape sample_shape;
  std::size_t produced = 0;
  const bool targets = mode != Mode::Predict;
  for (std::size_t s = 0; s < steps; ++s) {
    check_interrupt();
    if (mode == Mode::Train && stop_training) break;
    Logs batch_logs;
    for (auto& cb : callbacks) {
      if (mode == Mode::Train) cb->on_train_batch_begin(s, batch_logs);
      else if (mode == Mode::Test) cb->on_test_batch_begin(s, batch_logs);
      else cb->on_predict_batch_begin(s, batch_logs);
    }
    std::size_t index = s;
    if (position) {
      index = pass ? *position % pass : *position;
      if (pass && index == 0 && *position > 0) data.on_epoch_end();  // a new pass begins
      ++*position;
    }
    data.get_batch(index, xb_, targets ? &yb_ : nullptr);
    if (xb_.size() != inputs_.size())
      fail<ValueError>("model '", name_, "' expects ", inputs_.size(), " input(s) per batch. Received: ", xb_.size());
    for (std::size_t k = 0; k < xb_.size(); ++k) {
      const Shape got(xb_[k].shape().begin() + 1, xb_[k].shape().end());
      if (xb_[k].dimension() == 0 || got != inputs_[k].shape)
        fail<ValueError>("Input ", k, " of model '", name_, "' must have shape ", shape_str(inputs_[k].shape),
                         ". Received: a batch of shape ", shape_str(shape_of(xb_[k]), false));
    }
    const std::size_t count = xb_[0].shape()[0];
    if (targets && (yb_.dimension() == 0 || yb_.shape()[0] != count))
      fail<ValueError>("a batch has ", count, " inputs but ", yb_.dimension() ? yb_.shape()[0] : 0, " targets");
    Logs r = step(mode, xb_, targets ? &yb_ : nullptr, mode == Mode::Predict ? &yp : nullptr);
    logs.clear();
    if (mode == Mode::Predict) {
      if (out) {
        sample_shape.assign(yp.shape().begin() + 1, yp.shape().end());
        rows.insert(rows.end(), yp.data(), yp.data() + yp.size());
        produced += count;
      }
    } else {
      loss.add(r.get("loss"), static_cast<double>(count));
      logs.set("loss", loss.value());
      for (auto& m : metrics_)
        if (m->scalar()) logs.set(m->name(), m->result());
    }
    for (auto& cb : callbacks) {
      if (mode == Mode::Train) cb->on_train_batch_end(s, logs);
      else if (mode == Mode::Test) cb->on_test_batch_end(s, logs);
      else cb->on_predict_batch_end(s, logs);
    }
  }
  if (mode == Mode::Predict && out && produced > 0) {
    *out = Tensor::from_shape(with_batch(produced, sample_shape));
    std::copy(rows.begin(), rows.end(), out->data());
  }
  return logs;
}

// ---------------------------------------------------------------------------------------------
// Arrays as a batch source

ArrayBatchSource::ArrayBatchSource(const std::vector<ArrayView>& x, const ArrayView* y,
                                   std::size_t batch_size, bool shuffle)
    : x_(x), has_y_(y != nullptr), batch_size_(batch_size), shuffle_(shuffle) {
  if (y) y_ = *y;
  order_.resize(x_.empty() ? 0 : x_[0].rows());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
}

std::size_t ArrayBatchSource::num_batches() const { return (order_.size() + batch_size_ - 1) / batch_size_; }

void ArrayBatchSource::get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) {
  // Each pass's order is a fresh permutation drawn when the pass starts, so it depends only on
  // the random state at that moment (BackupAndRestore restores it and resumes exactly).
  if (index == 0 && shuffle_) {
    std::iota(order_.begin(), order_.end(), std::size_t{0});
    std::shuffle(order_.begin(), order_.end(), global_rng());
  }
  const std::size_t begin = index * batch_size_, count = std::min(batch_size_, order_.size() - begin);
  x.resize(x_.size());
  for (std::size_t k = 0; k < x_.size(); ++k) gather_rows(x_[k], order_.data() + begin, count, x[k]);
  if (y && has_y_) gather_rows(y_, order_.data() + begin, count, *y);
}

void ArrayBatchSource::on_epoch_end() {}

namespace {
void check_batch_size(std::size_t batch_size) {
  if (batch_size == 0) fail<ValueError>("batch_size must be a positive integer. Received: batch_size=0");
}
}  // namespace

std::size_t Model::steps_of(BatchSource& data, std::size_t steps, const char* what) const {
  if (steps) return steps;
  const std::size_t n = data.num_batches();
  if (n == 0) fail<ValueError>(what, ": the data yields no batches (or its length is unknown): give steps");
  return n;
}

Logs Model::train_on_batch(const std::vector<ArrayView>& x, const ArrayView& y) {
  if (!compiled()) fail<StateError>("You must call compile() before train_on_batch()");
  build();
  check_inputs(x, &y);
  ArrayBatchSource batch(x, &y, std::max<std::size_t>(x[0].rows(), 1), false);
  batch.get_batch(0, xb_, &yb_);
  for (auto& m : metrics_) m->reset_state();
  Logs logs = step(Mode::Train, xb_, &yb_, nullptr);
  for (auto& m : metrics_)
    if (m->scalar()) logs.set(m->name(), m->result());
  return logs;
}

Logs Model::test_on_batch(const std::vector<ArrayView>& x, const ArrayView& y) {
  if (!compiled()) fail<StateError>("You must call compile() before test_on_batch()");
  build();
  check_inputs(x, &y);
  ArrayBatchSource batch(x, &y, std::max<std::size_t>(x[0].rows(), 1), false);
  batch.get_batch(0, xb_, &yb_);
  for (auto& m : metrics_) m->reset_state();
  Logs logs = step(Mode::Test, xb_, &yb_, nullptr);
  for (auto& m : metrics_)
    if (m->scalar()) logs.set(m->name(), m->result());
  return logs;
}

Model::Profile Model::profile(const std::vector<ArrayView>& x, const ArrayView* y, std::size_t steps) {
  if (y && !compiled()) fail<StateError>("You must call compile() before profiling training steps");
  if (steps == 0) fail<ValueError>("profile needs at least one step. Received: steps=0");
  build();
  check_inputs(x, y);
  ArrayBatchSource batch(x, y, std::max<std::size_t>(x[0].rows(), 1), false);
  batch.get_batch(0, xb_, y ? &yb_ : nullptr);
  Profile p;
  p.forward.assign(nodes_.size(), 0.0);
  p.backward.assign(nodes_.size(), 0.0);
  struct Reset {  // profiling_ never outlives p, even when a step throws
    Profile*& slot;
    ~Reset() { slot = nullptr; }
  } reset{profiling_};
  Tensor out;
  // Step 0 warms up (buffers, optimiser slots) and is not counted.
  for (std::size_t s = 0; s <= steps; ++s) {
    check_interrupt();
    profiling_ = s > 0 ? &p : nullptr;
    const auto t0 = std::chrono::steady_clock::now();
    if (y) {
      for (auto& m : metrics_) m->reset_state();
      step(Mode::Train, xb_, &yb_, nullptr);
    } else {
      step(Mode::Predict, xb_, nullptr, &out);
    }
    if (profiling_) p.total += seconds_since(t0);
  }
  const double n = static_cast<double>(steps);
  for (auto& v : p.forward) v /= n;
  for (auto& v : p.backward) v /= n;
  p.loss /= n;
  p.optimizer /= n;
  p.total /= n;
  return p;
}

Tensor Model::predict_on_batch(const std::vector<ArrayView>& x) {
  build();
  check_inputs(x, nullptr);
  ArrayBatchSource batch(x, nullptr, std::max<std::size_t>(x[0].rows(), 1), false);
  batch.get_batch(0, xb_, nullptr);
  Tensor y;
  step(Mode::Predict, xb_, nullptr, &y);
  return y;
}

std::shared_ptr<History> Model::fit(const std::vector<ArrayView>& x, const ArrayView& y,
                                    const FitOptions& opt, std::vector<CallbackPtr> callbacks,
                                    const std::vector<ArrayView>* val_x, const ArrayView* val_y) {
  if (!compiled()) fail<StateError>("You must call compile() before fit()");
  build();
  check_batch_size(opt.batch_size);
  check_inputs(x, &y);
  if (x[0].rows() == 0) fail<ValueError>("fit needs at least one sample. Received: 0 samples");
  const bool validate = val_x && val_y;
  if (validate) check_inputs(*val_x, val_y);
  ArrayBatchSource train(x, &y, opt.batch_size, opt.shuffle);
  std::unique_ptr<ArrayBatchSource> val;
  if (validate) val = std::make_unique<ArrayBatchSource>(*val_x, val_y, opt.batch_size, false);
  return fit(train, opt, std::move(callbacks), val.get());
}

std::shared_ptr<History> Model::fit(BatchSource& train, const FitOptions& opt,
                                    std::vector<CallbackPtr> callbacks, BatchSource* val,
                                    std::size_t steps_per_epoch, std::size_t validation_steps) {
  if (!compiled()) fail<StateError>("You must call compile() before fit()");
  build();
  if (opt.epochs < 0) fail<ValueError>("epochs must be >= 0. Received: epochs=", opt.epochs);
  if (opt.initial_epoch < 0) fail<ValueError>("initial_epoch must be >= 0. Received: initial_epoch=", opt.initial_epoch);
  if (!train.has_targets()) fail<ValueError>("fit needs targets, but the training data yields inputs only");
  const std::size_t steps = steps_of(train, steps_per_epoch, "fit");
  const std::size_t val_steps = val ? steps_of(*val, validation_steps, "validation") : 0;

  auto history = std::make_shared<History>();
  callbacks.push_back(history);
  if (opt.verbose) callbacks.push_back(std::make_shared<ProgbarLogger>(text_sink));
  CallbackParams params;
  params.verbose = opt.verbose;
  params.epochs = opt.epochs;
  params.steps = static_cast<long long>(steps);
  for (auto& cb : callbacks) {
    cb->set_model(this);
    cb->set_params(params);
  }

  stop_training = false;
  Logs logs;
  for (auto& cb : callbacks) cb->on_train_begin(logs);
  // A callback may move the start (BackupAndRestore resuming an interrupted run).
  int first_epoch = opt.initial_epoch;
  for (auto& cb : callbacks)
    if (cb->resume_epoch() >= 0) first_epoch = cb->resume_epoch();
  std::size_t position = 0;  // batches drawn so far, when steps_per_epoch is given
  for (int epoch = first_epoch; epoch < opt.epochs; ++epoch) {
    Logs begin_logs;
    for (auto& cb : callbacks) cb->on_epoch_begin(epoch, begin_logs);
    logs = run_loop(Mode::Train, train, steps, callbacks, nullptr, steps_per_epoch ? &position : nullptr);
    // Keras: an explicit steps_per_epoch keeps drawing from the same pass across epochs; a full
    // pass ends the epoch (reshuffle).
    if (!steps_per_epoch) train.on_epoch_end();
    if (val) {
      Logs vlogs;
      for (auto& cb : callbacks) cb->on_test_begin(vlogs);
      vlogs = run_loop(Mode::Test, *val, val_steps, callbacks, nullptr);
      if (!validation_steps) val->on_epoch_end();
      for (auto& cb : callbacks) cb->on_test_end(vlogs);
      for (const auto& [k, v] : vlogs.items()) logs.set("val_" + k, v);
    }
    for (auto& cb : callbacks) cb->on_epoch_end(epoch, logs);
    if (stop_training) break;
  }
  for (auto& cb : callbacks) cb->on_train_end(logs);
  return history;
}

Logs Model::evaluate(const std::vector<ArrayView>& x, const ArrayView& y, std::size_t batch_size,
                     int verbose, std::vector<CallbackPtr> callbacks) {
  if (!compiled()) fail<StateError>("You must call compile() before evaluate()");
  build();
  check_batch_size(batch_size);
  check_inputs(x, &y);
  if (x[0].rows() == 0) fail<ValueError>("evaluate needs at least one sample. Received: 0 samples");
  ArrayBatchSource data(x, &y, batch_size, false);
  return evaluate(data, 0, verbose, std::move(callbacks));
}

Logs Model::evaluate(BatchSource& data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks) {
  if (!compiled()) fail<StateError>("You must call compile() before evaluate()");
  build();
  if (!data.has_targets()) fail<ValueError>("evaluate needs targets, but the data yields inputs only");
  const std::size_t n = steps_of(data, steps, "evaluate");
  if (verbose) {
    auto bar = std::make_shared<ProgbarLogger>(text_sink);
    bar->set_target(static_cast<long long>(n), verbose);
    callbacks.push_back(bar);
  }
  for (auto& cb : callbacks) cb->set_model(this);
  Logs logs;
  for (auto& cb : callbacks) cb->on_test_begin(logs);
  logs = run_loop(Mode::Test, data, n, callbacks, nullptr);
  for (auto& cb : callbacks) cb->on_test_end(logs);
  return logs;
}

Tensor Model::predict(const std::vector<ArrayView>& x, std::size_t batch_size, int verbose,
                      std::vector<CallbackPtr> callbacks) {
  build();
  check_batch_size(batch_size);
  check_inputs(x, nullptr);
  if (x[0].rows() == 0) return Tensor::from_shape(with_batch(0, output_shape()));
  ArrayBatchSource data(x, nullptr, batch_size, false);
  return predict(data, 0, verbose, std::move(callbacks));
}

Tensor Model::predict(BatchSource& data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks) {
  build();
  const std::size_t n = steps_of(data, steps, "predict");
  if (verbose) {
    auto bar = std::make_shared<ProgbarLogger>(text_sink);
    bar->set_target(static_cast<long long>(n), verbose);
    callbacks.push_back(bar);
  }
  for (auto& cb : callbacks) cb->set_model(this);
  Logs logs;
  for (auto& cb : callbacks) cb->on_predict_begin(logs);
  Tensor out = Tensor::from_shape(with_batch(0, output_shape()));
  run_loop(Mode::Predict, data, n, callbacks, &out);
  for (auto& cb : callbacks) cb->on_predict_end(logs);
  return out;
}

// ---------------------------------------------------------------------------------------------
// summary(): Keras 2's table

namespace {
// Keras 3's readable_memory_size: float32 parameters, 1024-based units, two decimals.
std::string memory_size(std::size_t params) {
  double bytes = static_cast<double>(params) * 4.0;
  const char* units[] = {"B", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s", bytes, units[u]);
  return buf;
}

std::string with_commas(std::size_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}
}  // namespace

std::string Model::summary(std::size_t line_length) const {
  if (!built_) fail<ValueError>("This model has not yet been built. Build the model first by giving the first layer an input_shape, starting with Input(shape), or calling build()/fit().");
  const std::size_t p1 = line_length * 45 / 100, p2 = line_length * 85 / 100, p3 = line_length;
  std::ostringstream os;
  auto row = [&](const std::string& a, const std::string& b, const std::string& c) {
    std::string line = a;
    line = line.substr(0, p1 - 1);  // Keras truncates each field to its column
    line.resize(p1, ' ');
    line += b;
    line = line.substr(0, p2 - 1);
    line.resize(p2, ' ');
    line += c;
    line = line.substr(0, p3);
    line.resize(p3, ' ');
    os << line << '\n';
  };
  os << "Model: \"" << name_ << "\"\n" << std::string(line_length, '_') << '\n';
  row("Layer (type)", "Output Shape", "Param #");
  os << std::string(line_length, '=') << '\n';
  std::vector<const Layer*> shown;
  for (const auto& node : nodes_)
    if (!node.layer->internal()) shown.push_back(node.layer.get());
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const Layer& layer = *shown[i];
    std::size_t count = 0;
    for (auto id : params_.indices_of(&layer)) count += params_.weights()[id].size;
    row(layer.name() + " (" + layer.class_name() + ")", layer.summary_shape(), std::to_string(count));
    os << std::string(line_length, i + 1 == shown.size() ? '=' : '_') << '\n';
  }
  // Totals as Keras 3 counts them: once the optimiser is built its variables join the total.
  const std::size_t trainable = params_.count(true), frozen = params_.count(false);
  const std::size_t opt = optimizer_ && optimizer_->built() ? optimizer_->variable_count(trainable) : 0;
  auto line = [&](const char* label, std::size_t n) {
    os << label << with_commas(n) << " (" << memory_size(n) << ")\n";
  };
  line("Total params: ", trainable + frozen + opt);
  line("Trainable params: ", trainable);
  line("Non-trainable params: ", frozen);
  if (opt) line("Optimizer params: ", opt);
  os << std::string(line_length, '_') << '\n';
  return os.str();
}

}  // namespace signcore
