// TimeDistributed: applies one layer to every time step of a sequence, with shared weights (Keras).
//   x: (N, T, ...) -> y: (N, T, ...out), where the wrapped layer maps (B, ...) -> (B, ...out)
//
// Algorithm: the time axis is folded into the batch axis. x is viewed as (N T, ...) (the tensor's
// shape is rewritten in place for the duration of the call and restored after; the buffer never
// moves, so nothing is copied), the wrapped layer runs ONCE on the N T samples, and its output
// buffer, which is y itself, is given the shape (N, T, ...out). Backward does the same with dy,
// y and dx. Weights are the wrapped layer's, owned by this layer in the model's Parameters and
// named "time_distributed/dense/kernel" (Keras 3's variable paths).
//
// Semantics, per time step t: y[:, t] = layer(x[:, t]). Layers whose output for a sample depends
// on the other samples of the batch see the N T steps as one batch: Dropout draws a fresh mask for
// every sample and step; BatchNormalization in training normalises with the statistics over N and
// T together and updates its moving statistics once per call (Keras 2's reshape path; Keras 3 loops
// over the steps, so it uses per-step batch statistics and updates T times).
//
// Masking: an incoming (N, T) mask is passed on unchanged (Keras's supports_masking); the wrapped
// layer itself runs unmasked (a recurrent layer inside sees each step's inner sequence in full).
#pragma once

#include <memory>
#include <string>

#include "signcore/layers/layer.hpp"

namespace signcore {

class TimeDistributed : public Layer {
 public:
  // The wrapped layer is used itself (not copied): its weights become this layer's once built.
  // ValueError for a null layer; an empty name picks "time_distributed", "time_distributed_1", ...
  explicit TimeDistributed(LayerPtr layer, std::string name = "");
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "TimeDistributed"; }
  MaskMode mask_mode() const override { return MaskMode::PassThrough; }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;
  void set_trainable(bool t) override;

  // The wrapped layer. While this layer is not built it is reset first: an output-shape inference
  // builds it against a scratch Parameters that is gone afterwards.
  const LayerPtr& layer();

 private:
  LayerPtr layer_;
  Shape in_step_, out_step_;  // per-step shapes of the wrapped layer, (...) and (...out)
  const Tensor* x_ = nullptr;  // the last forward's input and output (alive until backward)
  const Tensor* y_ = nullptr;
};

}  // namespace signcore
