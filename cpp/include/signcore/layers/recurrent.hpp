// Recurrent layers with Keras 3 semantics: SimpleRNN, LSTM and GRU, over one shared base class.
//   x: (N, T, F) -> y: (N, U), or (N, T, U) with return_sequences
// Weights, in Keras order (G gates: SimpleRNN 1, LSTM 4 in order i f c o, GRU 3 in order z r h):
//   kernel (F, G U), recurrent_kernel (U, G U), bias (G U,) -- GRU with reset_after: (2, 3U),
//   row 0 added to the input projection, row 1 to the recurrent one.
//
// The time loop (Keras's backend.rnn):
//   * the state starts at zeros; step s reads input time t = s, or T-1-s with go_backwards;
//   * mask (ctx.mask, (N, T), 1 = use the step): on a masked step a sample's state (h, and c for
//     LSTM) is carried over unchanged, and so is its output: the output of step s is the state
//     after it. With zero_output_for_mask the output of a masked step is 0 instead (the state is
//     still carried). Steps masked for the whole batch are skipped;
//   * return_sequences: y[:, s] is the output of step s (processing order, so reversed in time
//     with go_backwards); otherwise y is the output of the last step. The mask passes on only
//     with return_sequences (Keras's compute_mask);
//   * dropout / recurrent_dropout (training only, 0 < rate < 1): masks of 0 or 1 / (1 - rate) drawn
//     once per batch, (N, F) on the inputs and (N, U) on the previous state, reused at every
//     step. SimpleRNN draws one of each; LSTM and GRU draw one per gate (4 or 3) when
//     recurrent_dropout > 0 or implementation=1 (Keras's implementation 1), else one for all gates.
//
// Speed: the input projection x W + b of every (sample, step) is one GEMM before the loop; a step
// is one (N, U) x (U, G U) GEMM plus element-wise work (vectorised sigmoid/tanh); backward
// accumulates dW, dU and dx with one GEMM each over all steps after the reverse loop. Only the
// steps between the first and last step used by some sample are computed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "signcore/activations.hpp"
#include "signcore/layers/dropout.hpp"  // fill_dropout_mask
#include "signcore/layers/layer.hpp"

namespace signcore {

// The constructor arguments shared by SimpleRNN, LSTM and GRU (Keras names and defaults).
struct RecurrentOptions {
  long long units = 0;
  std::string activation = "tanh";
  std::string recurrent_activation = "sigmoid";  // LSTM, GRU
  bool use_bias = true;
  std::string kernel_initializer = "glorot_uniform";
  std::string recurrent_initializer = "orthogonal";
  std::string bias_initializer = "zeros";
  bool unit_forget_bias = true;  // LSTM: the forget gate's bias block starts at 1
  bool reset_after = true;       // GRU: reset gate applied after the recurrent matmul
  double dropout = 0.0;
  double recurrent_dropout = 0.0;
  std::optional<std::uint64_t> seed;  // dropout masks from the layer's own engine
  bool return_sequences = false;
  bool return_state = false;  // the functional call also returns the final state(s)
  bool go_backwards = false;
  bool zero_output_for_mask = false;
  bool unroll = false;     // accepted for Keras compatibility; the loop is never unrolled
  int implementation = 2;  // LSTM, GRU: 1 = one dropout mask per gate
  std::string name;        // empty: automatic ("simple_rnn", "lstm", "gru", ...)
};

// Reads the keys written by Recurrent::get_config (and Keras's) into options; ValueError naming
// `cls` for a malformed config, or for stateful set to true.
RecurrentOptions recurrent_options_from_config(const json& config, const char* cls);

// Writes the config keys every recurrent layer shares (use_bias, the three initialisers, dropout,
// recurrent_dropout, seed, return_sequences, return_state, go_backwards, stateful, unroll).
void write_recurrent_config(json& c, const RecurrentOptions& o);

// ValueError naming `arg` unless 0 <= rate < 1 (dropout, recurrent_dropout).
void check_dropout_rate(double rate, const char* arg);

// The sequence mask of ctx as a pointer to N * T floats, or null without one; ValueError naming
// `layer` (class `cls`) and the shapes when it is not (N, T) for the input of shape `xs`.
const float* sequence_mask_of(const Context& ctx, std::size_t N, std::size_t T,
                              const std::string& layer, const std::string& cls, const Shape& xs);

// The initialiser LSTM declares its bias with when unit_forget_bias is set: Keras's
// bias_initializer((U,)) | ones((U,)) | bias_initializer((2U,)) for the blocks i | f | c o.
std::string lstm_forget_bias_initializer(const std::string& bias_initializer, std::size_t units);

class Recurrent : public Layer {
 public:
  MaskMode mask_mode() const override {
    return opt_.return_sequences ? MaskMode::PassThrough : MaskMode::None;
  }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  const RecurrentOptions& options() const { return opt_; }
  std::size_t units() const { return units_; }
  std::size_t gates() const { return gates_; }
  bool return_sequences() const { return opt_.return_sequences; }
  bool go_backwards() const { return opt_.go_backwards; }
  ActivationKind activation() const { return act_; }
  ActivationKind recurrent_activation() const { return rec_act_; }
  // Bidirectional forces zero_output_for_mask = return_sequences on the layers it wraps (Keras).
  void set_zero_output_for_mask(bool v) { opt_.zero_output_for_mask = v; }

  // return_state: the states after the last step (h; LSTM: h then c), each (N, U), read by the
  // RecurrentState nodes that follow this layer's node. Their gradients are handed back with
  // add_state_grad before this layer's backward (which runs after theirs) and seed the reverse loop.
  bool return_state() const { return opt_.return_state; }
  virtual std::size_t state_count() const { return 1; }
  virtual const std::vector<float>& final_state(std::size_t k) const;
  void add_state_grad(std::size_t k, const float* d);
  std::string summary_shape() const override;

 protected:
  // Validates `o` (ValueError naming the value). `gates` is G; `prefix` the automatic name.
  Recurrent(RecurrentOptions o, std::size_t gates, const char* prefix);

  // The cell's loop over the steps and its reverse. run_forward fills y; run_backward leaves the
  // gradient of the input projection (pre-activations x W + b) in dz_ (rows of the computed
  // steps), accumulates the recurrent weights' gradients, and the base does the rest.
  virtual void run_forward(Tensor& y) = 0;
  virtual void run_backward(const Tensor& dy) = 0;
  // Declares the bias (after kernel and recurrent_kernel). Default: (G U,) with bias_initializer.
  virtual void add_bias(Parameters& params);

  // ----- helpers for the cells -------------------------------------------------------------------
  std::size_t time_of(std::size_t s) const { return opt_.go_backwards ? T_ - 1 - s : s; }
  bool in_range(std::size_t t) const { return t >= lo_ && t < hi_; }
  // Whether sample n uses input time t (no mask: always).
  bool step_on(std::size_t n, std::size_t t) const { return !mask_ || mask_[n * T_ + t] != 0.f; }
  // Row (n, t) of an (N, T, width) buffer.
  static float* row(std::vector<float>& b, std::size_t n, std::size_t t, std::size_t T,
                    std::size_t width) {
    return b.data() + (n * T + t) * width;
  }

  // out[:, c0:c1] += h' U[:, c0:c1]: h (N, U) contiguous, out rows `ldo` apart; h' is h times the
  // recurrent dropout mask of each gate block in training.
  void recurrent_matmul(const float* h, float* out, std::size_t ldo, std::size_t c0, std::size_t c1);
  // out (N, U) = sum over the gate blocks in [c0, c1) of (dz_k U_k^T) * rdp_k; dz rows `ldz` apart.
  void recurrent_matmul_t(const float* dz, std::size_t ldz, float* out, std::size_t c0, std::size_t c1);
  // dU[:, c0:c1] += sum over the computed (n, t) of h'(n, t)^T dz(n, t): `states` (N, T, U) holds
  // the state entering each step (h' applies the dropout masks), `dz` is (N, T, G U).
  void recurrent_weight_grad(const std::vector<float>& states, const float* dz, std::size_t c0,
                             std::size_t c1);
  // The computed rows (n, t): all N T of them (full_rows_), else rows_.size().
  std::size_t computed_rows() const { return full_rows_ ? N_ * T_ : rows_.size(); }
  // The index n T + t of computed row i.
  std::size_t row_index(std::size_t i) const { return full_rows_ ? i : rows_[i]; }
  // dst (R, width) = the computed rows of src, an (N, T, ld) buffer.
  void gather_rows(const float* src, std::size_t ld, std::size_t width, float* dst) const;
  // C (m, n) += sum over the computed (n, t) of A(n, t)^T B(n, t) for (N, T, lda) and (N, T, ldb)
  // buffers: one GEMM (over gathered rows when only some are computed).
  void gemm_tn_rows(const float* A, std::size_t lda, const float* B, std::size_t ldb, float* C,
                    std::size_t ldc, std::size_t m, std::size_t n);
  // Column sums over the computed rows of an (N, T, ld) buffer, added to out[0:width).
  void add_column_sums(const float* src, std::size_t ld, std::size_t width, float* out);

  // Output of step s (time t) from h_ (return_sequences), or the final output after the loop.
  void write_step_output(Tensor& y, std::size_t s, std::size_t t) const;
  void write_last_output(Tensor& y) const;
  // dh_ += the output gradient that reaches the state after step s (time t).
  void add_output_grad(const Tensor& dy, std::size_t s, std::size_t t);
  // Adds the gradient handed back for state k (if any) into d (N, U), and forgets it.
  void take_state_grad(std::size_t k, std::vector<float>& d);
  // Fills rows (n, t) of an (N, T, width) buffer with zeros for every n.
  void zero_time_rows(std::vector<float>& b, std::size_t t, std::size_t width);
  bool trainable_weight(std::size_t id) const { return params_->weights()[id].trainable; }

  RecurrentOptions opt_;
  std::size_t units_;  // U
  std::size_t gates_;  // G
  ActivationKind act_, rec_act_;
  Rng own_rng_;

  std::size_t features_ = 0, T_ = 0;  // F, T (from build)
  std::size_t kernel_id_ = 0, recurrent_id_ = 0, bias_id_ = 0;

  // Per batch (forward, kept for backward).
  std::size_t N_ = 0;
  const float* x_ = nullptr;     // (N, T, F), the caller's input
  const float* mask_ = nullptr;  // (N, T) or null
  std::vector<char> active_;     // (T,) some sample uses input time t
  std::size_t lo_ = 0, hi_ = 0;  // the input times the loop visits: [lo, hi) covers every used step
  // Per sample, the rows (n, t) for t in [slo_[n], shi_[n]) (its first to last used step) are
  // the ones the whole-sequence GEMMs compute: all N T rows when full_rows_, else the list rows_,
  // gathered into contiguous scratch (padded clips cost only their real steps).
  std::vector<std::size_t> slo_, shi_;
  std::vector<std::size_t> rows_;
  bool full_rows_ = true;
  std::vector<float> ga_, gb_;  // gathered rows (scratch)
  std::size_t first_s_ = 0;      // the first computed step (processing order); T when none
  bool use_dp_ = false, use_rdp_ = false;
  std::size_t mask_blocks_ = 1;  // K dropout masks: 1 or G
  std::vector<float> dp_, rdp_;  // (K, N, F), (K, N, U)

  std::vector<float> z_;       // (N, T, G U) pre-activations; the input projection on entry
  std::vector<float> dz_;      // (N, T, G U) gradient of the input projection
  std::vector<float> hprev_;   // (N, T, U) state entering each computed step
  std::vector<float> h_, dh_;  // (N, U) the running state and its gradient
  std::vector<float> hd_, tmp_;        // (N, U) scratch
  std::vector<float> xd_;              // (N, T, F) scratch: dropped-out inputs / states
  std::vector<std::vector<float>> dstate_;  // (state_count, N, U) gradients of the final states

 private:
  void draw_masks(const Context& ctx);
  void project_inputs();
  void input_gradients(Tensor* dx);
};

// Fully-connected RNN: h_t = act(x_t W + b + h_{t-1} U).
class SimpleRNN : public Recurrent {
 public:
  explicit SimpleRNN(RecurrentOptions o);
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "SimpleRNN"; }

 protected:
  void run_forward(Tensor& y) override;
  void run_backward(const Tensor& dy) override;

 private:
  std::vector<float> a_;  // (N, T, U) act(z) when the derivative needs z too (else in z_)
};

// Long short-term memory (Hochreiter 1997), Keras's gate order i, f, c, o:
//   [i f c~ o] = [rec(z_i) rec(z_f) act(z_c) rec(z_o)], z = x W + b + h_{t-1} U
//   c_t = f c_{t-1} + i c~,  h_t = o act(c_t).
class LSTM : public Recurrent {
 public:
  explicit LSTM(RecurrentOptions o);
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "LSTM"; }
  json get_config() const override;

 protected:
  void run_forward(Tensor& y) override;
  void run_backward(const Tensor& dy) override;
  void add_bias(Parameters& params) override;

 public:
  std::size_t state_count() const override { return 2; }
  const std::vector<float>& final_state(std::size_t k) const override;

 private:
  std::vector<float> a_;       // (N, T, 4U) gate activations (or in z_)
  std::vector<float> cprev_;   // (N, T, U) carry entering each step
  std::vector<float> cnew_;    // (N, T, U) new carry, when act' needs its input
  std::vector<float> tc_;      // (N, T, U) act(c_t)
  std::vector<float> c_, dc_;  // (N, U)
  std::vector<float> dtc_;     // (N, U) scratch
};

// Gated recurrent unit (Cho et al. 2014), Keras's gate order z, r, h:
//   z = rec(x W_z + b_z + h U_z (+ b'_z)), r = rec(x W_r + b_r + h U_r (+ b'_r)),
//   reset_after:  h~ = act(x W_h + b_h + r * (h U_h + b'_h))   (bias (2, 3U): b and b')
//   reset before: h~ = act(x W_h + b_h + (r * h) U_h)           (bias (3U,))
//   h_t = z h_{t-1} + (1 - z) h~.
class GRU : public Recurrent {
 public:
  explicit GRU(RecurrentOptions o);
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "GRU"; }
  json get_config() const override;

 protected:
  void run_forward(Tensor& y) override;
  void run_backward(const Tensor& dy) override;
  void add_bias(Parameters& params) override;

 private:
  std::vector<float> a_;     // (N, T, 3U) z, r, h~ (or in z_)
  std::vector<float> rh_;    // (N, T, U) reset_after: h U_h + b'_h; before: r * h' (the GEMM input)
  std::vector<float> r_;     // (N, 3U) the step's recurrent projection
  std::vector<float> dzr_;   // (N, T, 3U) reset_after: gradient of the recurrent projection
  std::vector<float> direct_;  // (N, U) dL/dh_{t-1} through z * h_{t-1}
};

// One final state of a return_state recurrent layer, as its own graph node: the functional call
//   output, state_h, state_c = LSTM(units, return_state=True)(x)
// adds the LSTM's node and one RecurrentState node per state, each reading the LSTM's output
// (for the graph order only) and copying state k, (N, U). Backward hands dL/dstate back to the
// recurrent layer and gives its output a zero gradient. Internal: summary() shows the recurrent
// layer's row with all its output shapes instead.
class RecurrentState : public Layer {
 public:
  explicit RecurrentState(long long index, std::string name = "");
  static LayerPtr from_config(const json& config);
  std::string class_name() const override { return "RecurrentState"; }
  bool internal() const override { return true; }
  void connect(const std::vector<LayerPtr>& input_layers) override;
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;
  std::size_t index() const { return index_; }

 private:
  std::size_t index_;
  std::shared_ptr<Recurrent> source_;
  const Tensor* x_ = nullptr;  // the source's output (only its shape is used)
};

}  // namespace signcore
