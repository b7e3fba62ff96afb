// ConvLSTM2D (Shi et al. 2015) with Keras 3 semantics: an LSTM whose input and recurrent
// transformations are 2-D convolutions, over channels-last video.
//   x: (N, T, H, W, C) -> y: (N, OH, OW, F), or (N, T, OH, OW, F) with return_sequences
// Weights, in Keras order: kernel (kh, kw, C, 4F), recurrent_kernel (kh, kw, F, 4F), bias (4F,),
// gate blocks i, f, c, o along the last axis. Parameters 4F kh kw (C + F) + 4F.
//   z_t = conv(x_t, W) + conv(h_{t-1}, U) + b
//   i, f, o = rec(z_i), rec(z_f), rec(z_o);  c_t = f c_{t-1} + i act(z_c);  h_t = o act(c_t)
// The input convolution has the layer's strides, padding and dilation (it sets OH, OW); the
// recurrent one is always stride 1, "same" padding, no dilation. h_0 = c_0 = 0.
//
// Masks, go_backwards and return_sequences follow the other recurrent layers (recurrent.hpp): on a
// step masked for a sample its h and c (and its output) carry over; a step masked for the whole
// batch is skipped; the mask passes on only with return_sequences.
//
// Dropout (training only, rate in [0, 1)): one inverted-dropout mask per gate, drawn once per batch
// and reused at every step: 4 masks (N, H, W, C) on the input frame before the input convolution of
// each gate, 4 masks (N, OH, OW, F) on h_{t-1} before the recurrent convolution of each gate.
//
// The algorithm (P = OH OW positions per frame, Kx = kh kw C, Kh = kh kw F):
//   forward   Z (N T P, 4F) = im2col(x) W for every frame a sample uses, before the loop: one batched
//             im2col + SGEMM pass in chunks of output lines (the four gates fused: W is (Kx, 4F)).
//             Per step: R (N P, 4F) = im2col(h) U, one im2col and one SGEMM; then element-wise
//             z = Z_t + R + b and the cell, parallel over the N P positions. Cached per step for
//             backward: the gate activations (in Z), h_{t-1}, c_{t-1} and act(c_t).
//   backward  reverse loop: the cell's reverse gives dZ_t; dU += im2col(h_{t-1})^T dZ_t (im2col
//             recomputed, not cached); dh_{t-1} = col2im(dZ_t U^T). After the loop, over all
//             frames in chunks: dW += im2col(x)^T dZ, db += column sums of dZ, dx = col2im(dZ W^T).
// With dropout, each gate's block of the GEMMs runs on its own masked input (4 narrower GEMMs).
#pragma once

#include <array>
#include <string>
#include <vector>

#include "signcore/activations.hpp"
#include "signcore/im2col.hpp"
#include "signcore/layers/layer.hpp"
#include "signcore/layers/recurrent.hpp"

namespace signcore {

struct ConvLSTM2DOptions {
  // units = filters; activation, recurrent_activation, use_bias, the three initialisers,
  // unit_forget_bias, dropout, recurrent_dropout, seed, return_sequences, go_backwards, name.
  // zero_output_for_mask, reset_after, unroll and implementation are not used.
  RecurrentOptions rnn;
  std::array<long long, 2> kernel_size{3, 3};
  std::array<long long, 2> strides{1, 1};
  std::string padding = "valid";
  std::string data_format = "channels_last";  // the only one supported ("" too)
  std::array<long long, 2> dilation_rate{1, 1};
};

class ConvLSTM2D : public Layer {
 public:
  // ValueError naming the value for filters <= 0, a kernel size, stride or dilation < 1, strides
  // and dilation both > 1, a padding other than "valid"/"same", a data_format other than
  // "channels_last", an unknown activation or initialiser, a dropout rate outside [0, 1).
  // An empty name picks "conv_lstm2d", "conv_lstm2d_1", ...
  explicit ConvLSTM2D(ConvLSTM2DOptions o);
  static LayerPtr from_config(const json& config);

  std::string class_name() const override { return "ConvLSTM2D"; }
  MaskMode mask_mode() const override {
    return opt_.rnn.return_sequences ? MaskMode::PassThrough : MaskMode::None;
  }
  Shape build(const std::vector<Shape>& input_shapes, Parameters& params) override;
  void forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) override;
  void backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) override;
  json get_config() const override;

  const RecurrentOptions& options() const { return opt_.rnn; }
  std::size_t filters() const { return filters_; }
  std::array<std::size_t, 2> kernel_size() const { return kernel_; }
  std::array<std::size_t, 2> strides() const { return strides_; }
  std::array<std::size_t, 2> dilation_rate() const { return dilation_; }
  ConvPadding padding() const { return padding_; }
  ActivationKind activation() const { return act_; }
  ActivationKind recurrent_activation() const { return rec_act_; }

 private:
  std::size_t time_of(std::size_t s) const { return opt_.rnn.go_backwards ? T_ - 1 - s : s; }
  bool step_on(std::size_t n, std::size_t t) const { return !mask_ || mask_[n * T_ + t] != 0.f; }
  bool trainable_weight(std::size_t id) const { return params_->weights()[id].trainable; }
  // Output lines per chunk of the whole-sequence passes, for rows of `width` floats.
  std::size_t chunk_lines(std::size_t width) const;
  // fn(l0, l1) over chunks of the input convolution's output lines [l0, l1) (line = (frame, oh),
  // frame = n T + t) covering every frame some sample uses, in order.
  template <class Fn>
  void for_used_lines(std::size_t width, Fn&& fn) const;
  // The input of gate block k's input convolution: x, or x times dp_k (into xd_).
  const float* dropped_input(std::size_t k);
  // The input of gate block k's recurrent convolution: h (N, P, F), or h times rdp_k (into hd_).
  const float* dropped_state(const float* h, std::size_t k);
  void draw_masks(const Context& ctx);
  void input_convolution();                              // z_ = im2col(x) W
  void recurrent_convolution(const float* h);            // r_ = im2col(h) U
  void step_forward(std::size_t t, bool with_r);         // the cell at time t
  void step_backward(std::size_t t);                     // dzs_ and dc_ at time t
  void recurrent_backward(std::size_t t, bool need_u);   // dU, dhp_ at time t
  void input_gradients(Tensor* dx, bool need_w, bool need_b);

  ConvLSTM2DOptions opt_;
  std::size_t filters_;  // F
  std::array<std::size_t, 2> kernel_, strides_, dilation_;
  ConvPadding padding_;
  ActivationKind act_, rec_act_;
  Rng own_rng_;

  // From build: the per-frame geometries of the input convolution ((H, W, C) -> (OH, OW)) and of
  // the recurrent one ((OH, OW, F), stride 1, "same").
  ConvGeometry gx_, gh_;
  std::size_t T_ = 0;
  std::size_t kernel_id_ = 0, recurrent_id_ = 0, bias_id_ = 0;

  // Per batch (forward, kept for backward).
  std::size_t N_ = 0;
  const float* x_ = nullptr;     // (N, T, H, W, C), the caller's input
  const float* mask_ = nullptr;  // (N, T) or null
  std::vector<char> active_;     // (T,) some sample uses time t
  std::size_t first_s_ = 0;      // the first step (processing order) some sample uses; T if none
  bool keep_z_ = false, keep_c_ = false;  // activations whose derivative needs their input
  bool use_dp_ = false, use_rdp_ = false;
  std::vector<float> dp_, rdp_;  // (4, N, H, W, C), (4, N, OH, OW, F)
  std::vector<float> z_;    // (N, T, P, 4F) pre-activations, the activations in place unless keep_z_
  std::vector<float> a_;    // (N, T, P, 4F) the activations when keep_z_
  std::vector<float> hprev_, cprev_, tc_, cnew_;  // (T, N, P, F): h, c entering step t; act(c_t); c_t
  std::vector<float> h_, c_;        // (N, P, F) the running state
  std::vector<float> r_;            // (N P, 4F) the step's recurrent convolution
  std::vector<float> cols_, dcols_;  // im2col scratch
  std::vector<float> hd_;           // (N, P, F) dropped-out state
  std::vector<float> xd_;           // (N, T, H, W, C) dropped-out input (training with dropout)
  std::vector<float> dxg_;          // (N, T, H, W, C) one gate block's dx (backward with dropout)
  // Backward.
  std::vector<float> dz_;           // (N, T, P, 4F)
  std::vector<float> dzs_;          // (N P, 4F) the step's dz
  std::vector<float> dh_, dc_, dhp_, tmp_;  // (N, P, F)
};

}  // namespace signcore
