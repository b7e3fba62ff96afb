// Bidirectional: runs a recurrent layer forward in time and a copy of it backward (go_backwards),
// and merges the two outputs (Keras 3).
//   x: (N, T, F) -> y: (N, [T,] 2U) with merge_mode "concat", (N, [T,] U) for "sum", "mul", "ave"
// With return_sequences the backward layer's output is flipped back to time order before the
// merge, and both layers output zeros on masked steps (Keras forces zero_output_for_mask there).
// Weights: the forward layer's, then the backward layer's, owned by this layer (named
// "bidirectional/forward_lstm/kernel", ...).
#pragma once

#include <memory>
#include <string>

#include "signcore/layers/recurrent.hpp"

namespace signcore {

class Bidirectional : public Layer {
 public:
  enum class Merge { Concat, Sum, Mul, Ave };

  // `layer` is the template: the forward layer is rebuilt from its config (named "forward_" +
  // its name), the backward one too with go_backwards=True ("backward_" + name), unless
  // `backward_layer` is given (used as is: it must have the opposite go_backwards and the same
  // return_sequences). ValueError for a layer that is not SimpleRNN/LSTM/GRU, an unknown
  // merge_mode, or mismatched layers.
  Bidirectional(const LayerPtr& layer, const std::string& merge_mode = "concat",
                const LayerPtr& backward_layer = nullptr, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "Bidirectional"; }
  MaskMode mask_mode() const override {
    return forward_->return_sequences() ? MaskMode::PassThrough : MaskMode::None;
  }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;
  void set_trainable(bool t) override;

  // The wrapped layers. While this layer is not built they are reset first: an output-shape
  // inference builds them against a scratch Parameters that is gone afterwards.
  const std::shared_ptr<Recurrent>& forward_layer();
  const std::shared_ptr<Recurrent>& backward_layer();
  Merge merge_mode() const { return merge_; }
  static std::string merge_name(Merge m);

 private:
  std::shared_ptr<Recurrent> forward_, backward_;
  Merge merge_;
  Tensor yf_, yb_;       // the two layers' outputs (yb_ in the backward layer's step order)
  Tensor dyf_, dyb_;     // their output gradients
  Tensor dxf_, dxb_;     // their input gradients
  bool forwarded_ = false;
};

}  // namespace signcore
