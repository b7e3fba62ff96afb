// LSTM (Keras gate order i, f, c, o). The shared machinery is in recurrent.cpp.
#include <algorithm>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/recurrent.hpp"
#include "signcore/layers/recurrent_math.hpp"

namespace signcore {

// Registered once per (bias_initializer, units) under a descriptive name; the name then works
// wherever an initialiser name does (Parameters::allocate runs it).
std::string lstm_forget_bias_initializer(const std::string& bias_initializer, std::size_t units) {
  const std::string name =
      "lstm_unit_forget_bias(" + bias_initializer + ", " + std::to_string(units) + ")";
  register_initializer(name, [bias_initializer, units](const Shape& shape, float* out, Rng& rng) {
    if (shape != Shape{4 * units})
      fail<ValueError>("The LSTM forget-bias initializer expects shape (", 4 * units,
                       ",). Received: shape=", shape_str(shape, false));
    initialize(bias_initializer, {units}, out, rng);
    std::fill(out + units, out + 2 * units, 1.f);
    initialize(bias_initializer, {2 * units}, out + 2 * units, rng);
  });
  return name;
}

LSTM::LSTM(RecurrentOptions o) : Recurrent(std::move(o), 4, "lstm") {}

LayerPtr LSTM::from_config(const json& c) {
  return std::make_shared<LSTM>(recurrent_options_from_config(c, "LSTM"));
}

json LSTM::get_config() const {
  json c = Recurrent::get_config();
  c["recurrent_activation"] = activation_name(rec_act_);
  c["unit_forget_bias"] = opt_.unit_forget_bias;
  return c;
}

// bias (4U,): with unit_forget_bias, Keras initialises the blocks i | f | c o as
// bias_initializer((U,)) | ones | bias_initializer((2U,)).
void LSTM::add_bias(Parameters& params) {
  const std::string init = opt_.unit_forget_bias
                               ? lstm_forget_bias_initializer(opt_.bias_initializer, units_)
                               : opt_.bias_initializer;
  bias_id_ = add_weight(params, "bias", {4 * units_}, init);
}

void LSTM::run_forward(Tensor& y) {
  const std::size_t N = N_, T = T_, U = units_, G4 = 4 * U;
  const bool keep_z = !activation_backward_uses_output(act_) ||
                      !activation_backward_uses_output(rec_act_);
  const bool keep_c = !activation_backward_uses_output(act_);
  if (keep_z) a_.resize(N * T * G4);
  if (keep_c) cnew_.resize(N * T * U);
  cprev_.resize(N * T * U);
  tc_.resize(N * T * U);
  c_.assign(N * U, 0.f);
  bool h_zero = true;
  for (std::size_t s = 0; s < T; ++s) {
    const std::size_t t = time_of(s);
    if (in_range(t))
      for (std::size_t n = 0; n < N; ++n) {
        std::memcpy(row(hprev_, n, t, T, U), h_.data() + n * U, U * sizeof(float));
        std::memcpy(row(cprev_, n, t, T, U), c_.data() + n * U, U * sizeof(float));
      }
    if (active_[t]) {
      if (!h_zero) recurrent_matmul(h_.data(), z_.data() + t * G4, T * G4, 0, G4);
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;  // masked: h and c carry over
        float* zr = row(z_, n, t, T, G4);
        rnn::lstm_cell_forward(act_, rec_act_, zr, keep_z ? row(a_, n, t, T, G4) : zr,
                               c_.data() + n * U, keep_c ? row(cnew_, n, t, T, U) : nullptr,
                               row(tc_, n, t, T, U), h_.data() + n * U, U);
      }
      h_zero = false;
    }
    if (opt_.return_sequences) write_step_output(y, s, t);
  }
  if (!opt_.return_sequences) write_last_output(y);
}

// Per step and sample (unmasked): rnn::lstm_cell_backward gives dz and dc_{t-1};
//   dh_{t-1} = dz U^T * rdp. Masked samples carry dh and dc.
void LSTM::run_backward(const Tensor& dy) {
  const std::size_t N = N_, T = T_, U = units_, G4 = 4 * U;
  const bool keep_z = !activation_backward_uses_output(act_) ||
                      !activation_backward_uses_output(rec_act_);
  const bool keep_c = !activation_backward_uses_output(act_);
  dc_.assign(N * U, 0.f);
  take_state_grad(1, dc_);
  dtc_.resize(U);
  for (std::size_t s = T; s-- > 0;) {
    const std::size_t t = time_of(s);
    add_output_grad(dy, s, t);
    if (!in_range(t)) continue;
    if (!active_[t]) {
      zero_time_rows(dz_, t, G4);
      continue;
    }
    for (std::size_t n = 0; n < N; ++n) {
      float* dzr = row(dz_, n, t, T, G4);
      if (!step_on(n, t)) {
        std::fill_n(dzr, G4, 0.f);
        continue;
      }
      const float* zr = row(z_, n, t, T, G4);
      rnn::lstm_cell_backward(act_, rec_act_, keep_z ? zr : nullptr, keep_z ? row(a_, n, t, T, G4) : zr,
                              row(cprev_, n, t, T, U), keep_c ? row(cnew_, n, t, T, U) : nullptr,
                              row(tc_, n, t, T, U), dh_.data() + n * U, dc_.data() + n * U, dzr,
                              dtc_.data(), U);
    }
    if (s > first_s_) {
      recurrent_matmul_t(dz_.data() + t * G4, T * G4, tmp_.data(), 0, G4);
      for (std::size_t n = 0; n < N; ++n)
        if (step_on(n, t)) std::memcpy(dh_.data() + n * U, tmp_.data() + n * U, U * sizeof(float));
    }
  }
  recurrent_weight_grad(hprev_, dz_.data(), 0, G4);
}

const std::vector<float>& LSTM::final_state(std::size_t k) const {
  return k == 1 ? c_ : Recurrent::final_state(k);
}

SIGNCORE_REGISTER_LAYER(LSTM);

}  // namespace signcore
