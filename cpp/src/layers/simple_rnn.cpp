// SimpleRNN: h_t = act(x_t W + b + h_{t-1} U). The shared machinery is in recurrent.cpp.
#include <algorithm>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/layers/recurrent.hpp"
#include "signcore/layers/recurrent_math.hpp"

namespace signcore {

SimpleRNN::SimpleRNN(RecurrentOptions o) : Recurrent(std::move(o), 1, "simple_rnn") {}

LayerPtr SimpleRNN::from_config(const json& c) {
  return std::make_shared<SimpleRNN>(recurrent_options_from_config(c, "SimpleRNN"));
}

// z_ holds x W + b on entry; each computed step adds h' U and applies act (in place when act'
// needs only the output, else into a_).
void SimpleRNN::run_forward(Tensor& y) {
  const std::size_t N = N_, T = T_, U = units_;
  const bool keep_z = !activation_backward_uses_output(act_);
  if (keep_z) a_.resize(N * T * U);
  bool h_zero = true;  // the state is still all zeros: skip the recurrent GEMM
  for (std::size_t s = 0; s < T; ++s) {
    const std::size_t t = time_of(s);
    if (in_range(t))
      for (std::size_t n = 0; n < N; ++n)
        std::memcpy(row(hprev_, n, t, T, U), h_.data() + n * U, U * sizeof(float));
    if (active_[t]) {
      if (!h_zero) recurrent_matmul(h_.data(), z_.data() + t * U, T * U, 0, U);
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;  // masked: the state carries over
        float* zr = row(z_, n, t, T, U);
        float* ar = keep_z ? row(a_, n, t, T, U) : zr;
        rnn::act_forward(act_, zr, ar, U);
        std::memcpy(h_.data() + n * U, ar, U * sizeof(float));
      }
      h_zero = false;
    }
    if (opt_.return_sequences) write_step_output(y, s, t);
  }
  if (!opt_.return_sequences) write_last_output(y);
}

// dz = dh * act'(z) on the computed steps; dh_{t-1} = dz U^T * rdp, or dh itself where masked.
void SimpleRNN::run_backward(const Tensor& dy) {
  const std::size_t N = N_, T = T_, U = units_;
  const bool keep_z = !activation_backward_uses_output(act_);
  for (std::size_t s = T; s-- > 0;) {
    const std::size_t t = time_of(s);
    add_output_grad(dy, s, t);
    if (!in_range(t)) continue;
    if (!active_[t]) {
      zero_time_rows(dz_, t, U);
      continue;
    }
    for (std::size_t n = 0; n < N; ++n) {
      float* dzr = row(dz_, n, t, T, U);
      if (!step_on(n, t)) {
        std::fill_n(dzr, U, 0.f);
        continue;
      }
      const float* zr = row(z_, n, t, T, U);
      const float* ar = keep_z ? row(a_, n, t, T, U) : zr;
      rnn::act_backward(act_, keep_z ? zr : nullptr, ar, dh_.data() + n * U, dzr, U);
    }
    if (s > first_s_) {  // an earlier step produced h_{t-1}: pass the gradient on
      recurrent_matmul_t(dz_.data() + t * U, T * U, tmp_.data(), 0, U);
      for (std::size_t n = 0; n < N; ++n)
        if (step_on(n, t)) std::memcpy(dh_.data() + n * U, tmp_.data() + n * U, U * sizeof(float));
    }
  }
  recurrent_weight_grad(hprev_, dz_.data(), 0, U);
}

SIGNCORE_REGISTER_LAYER(SimpleRNN);

}  // namespace signcore
