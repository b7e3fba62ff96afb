// GRU (Keras gate order z, r, h), both reset_after variants. The shared machinery is in
// recurrent.cpp.
#include <algorithm>
#include <cblas.h>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/layers/recurrent.hpp"
#include "signcore/layers/recurrent_math.hpp"

namespace signcore {

GRU::GRU(RecurrentOptions o) : Recurrent(std::move(o), 3, "gru") {}

LayerPtr GRU::from_config(const json& c) {
  return std::make_shared<GRU>(recurrent_options_from_config(c, "GRU"));
}

json GRU::get_config() const {
  json c = Recurrent::get_config();
  c["recurrent_activation"] = activation_name(rec_act_);
  c["reset_after"] = opt_.reset_after;
  return c;
}

// reset_after: (2, 3U), row 0 for the input projection, row 1 for the recurrent one (as cuDNN).
void GRU::add_bias(Parameters& params) {
  if (opt_.reset_after) bias_id_ = add_weight(params, "bias", {2, 3 * units_}, opt_.bias_initializer);
  else bias_id_ = add_weight(params, "bias", {3 * units_}, opt_.bias_initializer);
}

// z_ holds x W + b_in on entry. A step computes the recurrent projection r_ = h' U (+ b') and
// leaves the pre-activations in z_ and z, r, h~ in a_ (or in place).
void GRU::run_forward(Tensor& y) {
  const std::size_t N = N_, T = T_, U = units_, G3 = 3 * U;
  const bool after = opt_.reset_after;
  const bool keep_z = !activation_backward_uses_output(act_) ||
                      !activation_backward_uses_output(rec_act_);
  if (keep_z) a_.resize(N * T * G3);
  rh_.resize(N * T * U);
  r_.resize(N * G3);
  const float* Ur = params_->value(recurrent_id_);
  const float* brec = opt_.use_bias && after ? params_->value(bias_id_) + G3 : nullptr;
  // reset before: the h block's GEMM input r * h' (h' = h * rdp of the h block in training)
  const float* rdp_h = use_rdp_ ? rdp_.data() + (mask_blocks_ - 1) * N * U : nullptr;
  bool h_zero = true;
  for (std::size_t s = 0; s < T; ++s) {
    const std::size_t t = time_of(s);
    if (in_range(t)) {
      for (std::size_t n = 0; n < N; ++n)
        std::memcpy(row(hprev_, n, t, T, U), h_.data() + n * U, U * sizeof(float));
      // reset before: rh_ feeds a weight-gradient GEMM over every computed row, so rows of masked
      // samples and skipped steps must hold zeros, not stale values.
      if (!after) zero_time_rows(rh_, t, U);
    }
    if (active_[t]) {
      // r_ = h' U (all three blocks with reset_after, z and r only before) + b'
      for (std::size_t n = 0; n < N; ++n) {
        float* rr = r_.data() + n * G3;
        if (brec) std::memcpy(rr, brec, G3 * sizeof(float));
        else std::fill_n(rr, G3, 0.f);
      }
      if (!h_zero) recurrent_matmul(h_.data(), r_.data(), G3, 0, after ? G3 : 2 * U);
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;
        float* zr = row(z_, n, t, T, G3);
        float* ar = keep_z ? row(a_, n, t, T, G3) : zr;
        const float* rr = r_.data() + n * G3;
        for (std::size_t j = 0; j < 2 * U; ++j) zr[j] += rr[j];
        rnn::act_forward(rec_act_, zr, ar, 2 * U);  // z, r
        float* rh = row(rh_, n, t, T, U);
        const float* r = ar + U;
        if (after) {
          for (std::size_t u = 0; u < U; ++u) {
            rh[u] = rr[2 * U + u];
            zr[2 * U + u] += r[u] * rh[u];
          }
        } else {
          const float* h = h_.data() + n * U;
          if (rdp_h)
            for (std::size_t u = 0; u < U; ++u) rh[u] = r[u] * h[u] * rdp_h[n * U + u];
          else
            for (std::size_t u = 0; u < U; ++u) rh[u] = r[u] * h[u];
        }
      }
      if (!after) {
        // The h block: (r * h') U_h, a GEMM over the batch once every r is known.
        if (!h_zero)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, static_cast<int>(N),
                      static_cast<int>(U), static_cast<int>(U), 1.f, rh_.data() + t * U,
                      static_cast<int>(T * U), Ur + 2 * U, static_cast<int>(G3), 0.f,
                      r_.data() + 2 * U, static_cast<int>(G3));
        else
          for (std::size_t n = 0; n < N; ++n) std::fill_n(r_.data() + n * G3 + 2 * U, U, 0.f);
        for (std::size_t n = 0; n < N; ++n) {
          if (!step_on(n, t)) continue;
          float* zr = row(z_, n, t, T, G3);
          const float* rr = r_.data() + n * G3;
          for (std::size_t u = 0; u < U; ++u) zr[2 * U + u] += rr[2 * U + u];
        }
      }
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;
        float* zr = row(z_, n, t, T, G3);
        float* ar = keep_z ? row(a_, n, t, T, G3) : zr;
        rnn::act_forward(act_, zr + 2 * U, ar + 2 * U, U);  // h~
        const float *z = ar, *hh = ar + 2 * U;
        float* h = h_.data() + n * U;
        for (std::size_t u = 0; u < U; ++u) h[u] = z[u] * h[u] + (1.f - z[u]) * hh[u];
      }
      h_zero = false;
    }
    if (opt_.return_sequences) write_step_output(y, s, t);
  }
  if (!opt_.return_sequences) write_last_output(y);
}

// Per step and sample (unmasked), with p = h_{t-1}:
//   dh~ = dh (1 - z), dz = dh (p - h~), direct dp = dh z; da = dh~ act'(h~) (input h block).
//   reset_after: recurrent h block da r, dr = da (p U_h + b'_h);
//   reset before: d(r p') = da U_h^T, dr = d(r p') p', dp' = d(r p') r.
//   dp = [dz_z dz_r (recurrent h block)] U^T * rdp + direct. Masked samples carry dh.
void GRU::run_backward(const Tensor& dy) {
  const std::size_t N = N_, T = T_, U = units_, G3 = 3 * U;
  const bool after = opt_.reset_after;
  const bool keep_z = !activation_backward_uses_output(act_) ||
                      !activation_backward_uses_output(rec_act_);
  const float* Ur = params_->value(recurrent_id_);
  const float* rdp_h = use_rdp_ ? rdp_.data() + (mask_blocks_ - 1) * N * U : nullptr;
  if (after) dzr_.resize(N * T * G3);
  direct_.resize(N * U);
  for (std::size_t s = T; s-- > 0;) {
    const std::size_t t = time_of(s);
    add_output_grad(dy, s, t);
    if (!in_range(t)) continue;
    if (!active_[t]) {
      zero_time_rows(dz_, t, G3);
      if (after) zero_time_rows(dzr_, t, G3);
      continue;
    }
    for (std::size_t n = 0; n < N; ++n) {
      float* dzx = row(dz_, n, t, T, G3);
      if (!step_on(n, t)) {
        std::fill_n(dzx, G3, 0.f);
        if (after) std::fill_n(row(dzr_, n, t, T, G3), G3, 0.f);
        continue;
      }
      const float* zr = row(z_, n, t, T, G3);
      const float* ar = keep_z ? row(a_, n, t, T, G3) : zr;
      const float *z = ar, *r = ar + U, *hh = ar + 2 * U;
      const float* p = row(hprev_, n, t, T, U);
      const float* dh = dh_.data() + n * U;
      float* direct = direct_.data() + n * U;
      for (std::size_t u = 0; u < U; ++u) {
        dzx[2 * U + u] = dh[u] * (1.f - z[u]);  // dh~
        dzx[u] = dh[u] * (p[u] - hh[u]);        // dz
        direct[u] = dh[u] * z[u];
      }
      rnn::act_backward(act_, keep_z ? zr + 2 * U : nullptr, hh, dzx + 2 * U, dzx + 2 * U, U);
      if (after) {
        const float* rh = row(rh_, n, t, T, U);
        float* dzr = row(dzr_, n, t, T, G3);
        for (std::size_t u = 0; u < U; ++u) {
          dzx[U + u] = dzx[2 * U + u] * rh[u];  // dr
          dzr[2 * U + u] = dzx[2 * U + u] * r[u];
        }
        rnn::act_backward(rec_act_, keep_z ? zr : nullptr, ar, dzx, dzx, 2 * U);
        std::memcpy(dzr, dzx, 2 * U * sizeof(float));
      }
    }
    if (!after) {
      // dq = da U_h^T for the batch (q = r * p'), then dr and the h block's share of dp.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(N), static_cast<int>(U),
                  static_cast<int>(U), 1.f, dz_.data() + t * G3 + 2 * U, static_cast<int>(T * G3),
                  Ur + 2 * U, static_cast<int>(G3), 0.f, hd_.data(), static_cast<int>(U));
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;
        float* dzx = row(dz_, n, t, T, G3);
        const float* zr = row(z_, n, t, T, G3);
        const float* ar = keep_z ? row(a_, n, t, T, G3) : zr;
        const float* r = ar + U;
        const float* p = row(hprev_, n, t, T, U);
        const float* dq = hd_.data() + n * U;
        float* direct = direct_.data() + n * U;
        for (std::size_t u = 0; u < U; ++u) {
          const float m = rdp_h ? rdp_h[n * U + u] : 1.f;
          dzx[U + u] = dq[u] * p[u] * m;  // dr
          direct[u] += dq[u] * r[u] * m;  // dp through q
        }
        rnn::act_backward(rec_act_, keep_z ? zr : nullptr, ar, dzx, dzx, 2 * U);
      }
    }
    if (s > first_s_) {
      const float* src = after ? dzr_.data() + t * G3 : dz_.data() + t * G3;
      recurrent_matmul_t(src, T * G3, tmp_.data(), 0, after ? G3 : 2 * U);
      for (std::size_t n = 0; n < N; ++n) {
        if (!step_on(n, t)) continue;
        float* dh = dh_.data() + n * U;
        const float* a = tmp_.data() + n * U;
        const float* b = direct_.data() + n * U;
        for (std::size_t u = 0; u < U; ++u) dh[u] = a[u] + b[u];
      }
    }
  }
  if (after) {
    recurrent_weight_grad(hprev_, dzr_.data(), 0, G3);
    if (opt_.use_bias && trainable_weight(bias_id_))
      add_column_sums(dzr_.data(), G3, G3, params_->grad(bias_id_) + G3);
  } else {
    recurrent_weight_grad(hprev_, dz_.data(), 0, 2 * U);
    if (trainable_weight(recurrent_id_))  // dU_h += q^T da over the computed steps
      gemm_tn_rows(rh_.data(), U, dz_.data() + 2 * U, G3, params_->grad(recurrent_id_) + 2 * U, G3,
                   U, U);
  }
}

SIGNCORE_REGISTER_LAYER(GRU);

}  // namespace signcore
