// A model is a graph of layers over one flat parameter buffer, plus the training state set by
// compile(). The batch loop (fit, evaluate, predict all go through run_loop) lives here and only
// here; the bindings release the GIL around it.
#pragma once

#include <atomic>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "signcore/batch_source.hpp"
#include "signcore/callbacks.hpp"
#include "signcore/layers/layer.hpp"
#include "signcore/losses.hpp"
#include "signcore/metrics.hpp"
#include "signcore/optimizers.hpp"
#include "signcore/parameters.hpp"

namespace signcore {

// One application of a layer. inputs[k] >= 0 names an earlier node; input_ref(i) names model input i.
// `mask` optionally names a tensor (same convention) whose values are the (N, T) sequence mask
// given explicitly at the call (Keras: layer(x, mask=m)); otherwise the mask, if any, comes from
// the input node (see Layer::mask_mode).
constexpr int kNoMask = std::numeric_limits<int>::min();
struct Node {
  LayerPtr layer;
  std::vector<int> inputs;
  int mask = kNoMask;
};
constexpr int input_ref(int i) { return -1 - i; }

struct ModelInput {
  std::string name;
  Shape shape;  // per sample
  std::string dtype = "float32";
};

struct FitOptions {
  std::size_t batch_size = 32;
  int epochs = 1;
  int verbose = 1;
  bool shuffle = true;
  int initial_epoch = 0;
};

// Called at every batch boundary; throws to stop (the bindings raise KeyboardInterrupt on Ctrl-C).
using InterruptCheck = std::function<void()>;

class Model {
 public:
  explicit Model(std::string name = "model") : name_(std::move(name)) {}

  // --- graph ---------------------------------------------------------------------------------
  int add_input(const ModelInput& input);
  int add_node(LayerPtr layer, std::vector<int> inputs, int mask = kNoMask);
  void set_output(int node);
  // Build every layer in graph order and allocate + initialise the parameters (once).
  void build();
  bool built() const { return built_; }
  // Release the layers (reset_build) so another model can build them; this model becomes unusable.
  void detach_layers();

  const std::string& name() const { return name_; }
  void set_name(std::string n) { name_ = std::move(n); }
  const std::vector<ModelInput>& inputs() const { return inputs_; }
  const std::vector<Node>& nodes() const { return nodes_; }
  int output_node() const { return output_; }
  Shape output_shape() const;
  Parameters& params() { return params_; }
  const Parameters& params() const { return params_; }
  void set_layer_trainable(Layer& layer, bool trainable);

  // --- training state --------------------------------------------------------------------------
  // metrics: names resolved once the shapes are known ("accuracy" -> the right accuracy); where
  // objects[i] is given (a configured metric object), it is used as is under its own name.
  void compile(OptimizerPtr optimizer, LossPtr loss, std::vector<std::string> metrics,
               std::vector<MetricPtr> objects = {});
  bool compiled() const { return loss_ != nullptr; }
  OptimizerPtr optimizer() const { return optimizer_; }
  LossPtr loss() const { return loss_; }
  const std::vector<std::string>& metric_names() const { return metric_names_; }
  // The metric objects in use (resolved at the first batch; empty before).
  const std::vector<MetricPtr>& metric_objects() const { return metrics_; }

  std::atomic<bool> stop_training{false};
  InterruptCheck interrupt_check;
  TextSink text_sink;

  // --- compute -----------------------------------------------------------------------------------
  // All x are ArrayViews over caller memory, one per model input; y one row per sample.
  Logs train_on_batch(const std::vector<ArrayView>& x, const ArrayView& y);
  Logs test_on_batch(const std::vector<ArrayView>& x, const ArrayView& y);
  Tensor predict_on_batch(const std::vector<ArrayView>& x);

  // Runs the epochs; returns the History (also passed to the callbacks first).
  std::shared_ptr<History> fit(const std::vector<ArrayView>& x, const ArrayView& y,
                               const FitOptions& opt, std::vector<CallbackPtr> callbacks,
                               const std::vector<ArrayView>* val_x, const ArrayView* val_y);
  Logs evaluate(const std::vector<ArrayView>& x, const ArrayView& y, std::size_t batch_size,
                int verbose, std::vector<CallbackPtr> callbacks);
  Tensor predict(const std::vector<ArrayView>& x, std::size_t batch_size, int verbose,
                 std::vector<CallbackPtr> callbacks);

  // The same over batch sources (image iterators, Python generators). steps 0 = one full pass
  // (the source's num_batches()); opt.batch_size and opt.shuffle are the source's business.
  std::shared_ptr<History> fit(BatchSource& train, const FitOptions& opt,
                               std::vector<CallbackPtr> callbacks, BatchSource* val,
                               std::size_t steps_per_epoch = 0, std::size_t validation_steps = 0);
  Logs evaluate(BatchSource& data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks);
  Tensor predict(BatchSource& data, std::size_t steps, int verbose, std::vector<CallbackPtr> callbacks);

  // Keras's summary table (Keras 2 layout) with exact totals.
  std::string summary(std::size_t line_length = 65) const;

  // Where one batch's time goes: one warm-up step, then `steps` train (y given) or predict (y null)
  // steps on the batch, timing each node's forward and backward, the loss and the optimiser.
  // Seconds per step. Tuning and benchmarks; the weights train as in train_on_batch.
  struct Profile {
    std::vector<double> forward, backward;  // per node
    double loss = 0, optimizer = 0, total = 0;
  };
  Profile profile(const std::vector<ArrayView>& x, const ArrayView* y, std::size_t steps);
  // The layer applied at node i (profile rows name their nodes by it).
  const Layer& node_layer(std::size_t i) const { return *nodes_.at(i).layer; }
  // The node whose layer applies node i's activation (fuse_activations()), or -1.
  int fused_into(std::size_t i) const { return i < fused_.size() && fused_[i] ? alias_[i] : -1; }
  // Whether models built from now on fuse a BatchNormalization into the MaxPooling that alone
  // reads it and hand it the relu derivative of the layer before it (fuse_normalizations(),
  // hand_off_relus(); on by default). Process-wide; tests and benchmarks compare.
  static void set_fuse_normalizations(bool on);
  static bool fuse_normalizations_enabled();
  // The pooling node that applies node i's BatchNormalization (fuse_normalizations()), or -1.
  int normalization_applied_by(std::size_t i) const { return i < applied_by_.size() ? applied_by_[i] : -1; }
  // Whether node i's BatchNormalization applies its producer's relu derivative (hand_off_relus()).
  bool applies_relu_derivative(std::size_t i) const { return i < relu_handoff_.size() && relu_handoff_[i]; }
  // Whether models built from now on let a convolution compute the max pooling after it
  // (fuse_poolings(); on by default). Process-wide; tests and benchmarks compare.
  static void set_fuse_poolings(bool on);
  static bool fuse_poolings_enabled();
  // The convolution node whose inference forward computes node i (a pooling, or a
  // BatchNormalization between the two) when such a forward runs now (fuse_poolings()), or -1.
  int pooled_in(std::size_t i) const;

  // Lowest-level steps, public for tests and for callbacks that drive training themselves.
  const Tensor& forward(const std::vector<const Tensor*>& x, bool training);
  void backward(const Tensor& dy);

 private:
  enum class Mode { Train, Test, Predict };
  // The one batch loop: `steps` batches from `data`, calling the hooks. Predict results are
  // appended to *out in order.
  // `position` (steps_per_epoch runs only) counts batches drawn so far across epochs, so that an
  // epoch shorter than the data continues where the last one stopped, wrapping (and calling
  // on_epoch_end) at the end of each pass, as Keras does.
  Logs run_loop(Mode mode, BatchSource& data, std::size_t steps, std::vector<CallbackPtr>& callbacks,
                Tensor* out, std::size_t* position = nullptr);
  Logs step(Mode mode, const std::vector<Tensor>& xb, const Tensor* yb, Tensor* yp);
  std::size_t steps_of(BatchSource& data, std::size_t steps, const char* what) const;
  void check_inputs(const std::vector<ArrayView>& x, const ArrayView* y) const;
  void resolve_metrics(const Tensor& y_true, const Tensor& y_pred);
  void check_interrupt();

  std::string name_;
  std::vector<ModelInput> inputs_;
  std::vector<Node> nodes_;
  int output_ = -1;
  bool built_ = false;
  Parameters params_;
  std::vector<Tensor> outs_, grads_;  // per node: last forward output and dL/d(output)
  // Where each node's input mask and output mask come from, resolved once at build():
  // kNoMask, a tensor reference (model input or node output values), or computed_mask(i).
  std::vector<int> in_mask_, out_mask_;
  std::vector<Tensor> masks_;  // per node: its computed mask (MaskMode::Compute only)
  // Activation fusion (build(): fuse_activations()): fused_[j] marks an Activation node whose
  // producer applies its activation; the model skips it and reads its output from alias_[j] (the
  // producer). alias_[i] = i for every other node.
  std::vector<int> alias_;
  std::vector<char> fused_;
  std::vector<int> reader_counts() const;
  void fuse_activations();
  // Normalisation fusion (build(): fuse_normalizations()): reads_from_[j] = i >= 0 marks a pooling
  // node that applies the BatchNormalization of node i (its only input, read by nothing else) on
  // the fly and reads node i's input instead; node i still runs (statistics) but writes no output.
  // In backward the pooling writes nothing: node i's backward takes the pooling's gradient and
  // argmax instead of a full dL/d(output) (BatchNormalization::backward_scattered).
  // applied_by_[i] = j is the reverse link.
  std::vector<int> reads_from_, applied_by_;
  void fuse_normalizations();
  // relu_handoff_[i]: the BatchNormalization of node i applies its producer's relu derivative
  // (hand_off_relus()).
  std::vector<char> relu_handoff_;
  void hand_off_relus();
  // inference_source_[i]: the reference (a node, or a model input as -1 - k) whose value node i's
  // output equals in an inference forward: i itself, or for a layer that is the identity in
  // inference (Dropout) and whose output is no mask, its input's source. Inference forwards skip
  // those nodes instead of copying (find_inference_identities()).
  std::vector<int> inference_source_;
  void find_inference_identities();
  // Convolution + pooling fusion (build(): fuse_poolings()): a MaxPooling node j whose input is
  // the output of a convolution that only it reads (directly, through an Activation the
  // convolution applies, or through a BatchNormalization that j applies) is computed by that
  // convolution. An inference forward runs the chain as the convolution's forward_pooled and skips
  // the nodes between; a training forward through a BatchNormalization, which keeps the
  // convolution's output for backward, as forward_pooled_training (forward_training_chain()).
  // pool_conv_[j] = the convolution's node; pool_chain_[i] = j for every node i of such a chain
  // (the convolution, the normalisation, j).
  std::vector<int> pool_conv_, pool_chain_;
  void fuse_poolings();
  // Whether a forward with this `training` runs the chain ending at pooling node j in the
  // convolution: as forward_pooled in inference, as forward_training_chain (through a
  // BatchNormalization only) in training.
  bool pools_in_convolution(int j, bool training) const;
  template <class Value>
  void forward_training_chain(int i, int j, const Value& value, const Context& ctx);
  const Tensor* resolve_mask(int src, const std::vector<const Tensor*>& x) const;

  OptimizerPtr optimizer_;
  LossPtr loss_;
  std::vector<std::string> metric_names_;
  std::vector<MetricPtr> metric_objects_;  // as given to compile (null = resolve by name)
  std::vector<MetricPtr> metrics_;
  Tensor dy_;
  Profile* profiling_ = nullptr;  // set while profile() runs: forward/backward/step add their times
  std::vector<Tensor> xb_;  // gathered batch inputs, reused
  Tensor yb_;
};

// Copy rows `idx[0..n)` of `src` into `dst` (reshaped to (n,) + per-sample shape).
void gather_rows(const ArrayView& src, const std::size_t* idx, std::size_t n, Tensor& dst);

// In-memory arrays as a batch source: batches of `batch_size` rows, reshuffled every pass if asked.
class ArrayBatchSource : public BatchSource {
 public:
  ArrayBatchSource(const std::vector<ArrayView>& x, const ArrayView* y, std::size_t batch_size,
                   bool shuffle);
  std::size_t num_batches() const override;
  void get_batch(std::size_t index, std::vector<Tensor>& x, Tensor* y) override;
  void on_epoch_end() override;
  bool has_targets() const override { return has_y_; }

 private:
  std::vector<ArrayView> x_;
  ArrayView y_;
  bool has_y_;
  std::size_t batch_size_;
  bool shuffle_;
  std::vector<std::size_t> order_;
};

}  // namespace signcore
