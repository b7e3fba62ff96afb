// The machinery shared by SimpleRNN, LSTM and GRU: options, weights, masks, dropout, the input
// projection before the loop and the input gradients after it. The cells live in simple_rnn.cpp,
// lstm.cpp and gru.cpp.
#include "signcore/layers/recurrent.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"

namespace signcore {

namespace {

int I(std::size_t v) { return static_cast<int>(v); }

std::size_t checked_units(long long units) {
  if (units <= 0)
    fail<ValueError>("Received an invalid value for argument `units`, expected a positive integer. "
                     "Received: units=", units);
  return static_cast<std::size_t>(units);
}

// Validates everything before a name is taken, so a rejected call does not use one up.
std::string checked_name(const RecurrentOptions& o, const char* prefix) {
  checked_units(o.units);
  parse_activation(o.activation);
  parse_activation(o.recurrent_activation);
  check_initializer(o.kernel_initializer);
  check_initializer(o.recurrent_initializer);
  check_initializer(o.bias_initializer);
  check_dropout_rate(o.dropout, "dropout");
  check_dropout_rate(o.recurrent_dropout, "recurrent_dropout");
  if (o.implementation != 1 && o.implementation != 2)
    fail<ValueError>("`implementation` must be 1 or 2. Received: implementation=", o.implementation);
  return o.name.empty() ? unique_name(prefix) : o.name;
}

}  // namespace

void check_dropout_rate(double rate, const char* arg) {
  if (!(rate >= 0.0 && rate < 1.0))
    fail<ValueError>("Invalid value received for argument `", arg, "`. Expected a float value in "
                     "[0, 1). Received: ", arg, "=", rate);
}

const float* sequence_mask_of(const Context& ctx, std::size_t N, std::size_t T,
                              const std::string& layer, const std::string& cls, const Shape& xs) {
  if (!ctx.mask) return nullptr;
  const Shape ms = shape_of(*ctx.mask);
  if (ms.size() != 2 || ms[0] != N || ms[1] != T)
    fail<ValueError>("Layer '", layer, "' (", cls, "): the mask must have shape (batch, timesteps) = (",
                     N, ", ", T, ") to match the input of shape ", shape_str(xs, false),
                     ". Received: mask shape=", shape_str(ms, false));
  return ctx.mask->data();
}

// ----- config ---------------------------------------------------------------------------------------

RecurrentOptions recurrent_options_from_config(const json& c, const char* cls) {
  RecurrentOptions o;
  try {
    auto str = [&c](const char* key, const std::string& fallback) {
      if (!c.contains(key) || c[key].is_null()) return fallback;
      const json& v = c[key];
      // An initialiser may be Keras 3's {"class_name": "GlorotUniform", "config": {...}}.
      return v.is_object() ? v.at("class_name").get<std::string>() : v.get<std::string>();
    };
    auto flag = [&c](const char* key, bool fallback) {
      return c.contains(key) && !c[key].is_null() ? c[key].get<bool>() : fallback;
    };
    o.units = c.at("units").get<long long>();
    o.activation = str("activation", "linear");  // Keras writes None as null: linear
    if (!c.contains("activation")) o.activation = "tanh";
    o.recurrent_activation = str("recurrent_activation", "sigmoid");
    o.use_bias = flag("use_bias", true);
    o.kernel_initializer = str("kernel_initializer", "glorot_uniform");
    o.recurrent_initializer = str("recurrent_initializer", "orthogonal");
    o.bias_initializer = str("bias_initializer", "zeros");
    o.unit_forget_bias = flag("unit_forget_bias", true);
    o.reset_after = flag("reset_after", true);
    o.dropout = c.value("dropout", 0.0);
    o.recurrent_dropout = c.value("recurrent_dropout", 0.0);
    if (c.contains("seed") && !c["seed"].is_null()) o.seed = c["seed"].get<std::uint64_t>();
    o.return_sequences = flag("return_sequences", false);
    o.go_backwards = flag("go_backwards", false);
    o.zero_output_for_mask = flag("zero_output_for_mask", false);
    o.unroll = flag("unroll", false);
    o.implementation = c.value("implementation", 2);
    o.name = c.value("name", std::string());
    o.return_state = flag("return_state", false);
    if (flag("stateful", false))
      fail<ValueError>(cls, ": stateful=True is not supported. Received: ", c.dump());
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid ", cls, " config (", e.what(), "). Received: ", c.dump());
  }
  return o;
}

void write_recurrent_config(json& c, const RecurrentOptions& o) {
  c["use_bias"] = o.use_bias;
  c["kernel_initializer"] = o.kernel_initializer;
  c["recurrent_initializer"] = o.recurrent_initializer;
  c["bias_initializer"] = o.bias_initializer;
  c["dropout"] = o.dropout;
  c["recurrent_dropout"] = o.recurrent_dropout;
  c["seed"] = o.seed ? json(*o.seed) : json(nullptr);
  c["return_sequences"] = o.return_sequences;
  c["return_state"] = o.return_state;
  c["go_backwards"] = o.go_backwards;
  c["stateful"] = false;
  c["unroll"] = o.unroll;
}

json Recurrent::get_config() const {
  json c = Layer::get_config();
  c["units"] = units_;
  c["activation"] = activation_name(act_);
  write_recurrent_config(c, opt_);
  c["zero_output_for_mask"] = opt_.zero_output_for_mask;
  return c;
}

// ----- construction and build -----------------------------------------------------------------------

Recurrent::Recurrent(RecurrentOptions o, std::size_t gates, const char* prefix)
    : Layer(checked_name(o, prefix)),
      opt_(std::move(o)),
      units_(checked_units(opt_.units)),
      gates_(gates),
      act_(parse_activation(opt_.activation)),
      rec_act_(parse_activation(opt_.recurrent_activation)),
      own_rng_(opt_.seed.value_or(0)) {
  opt_.name.clear();  // the layer's name is name_ from now on
}

// (T, F) -> (U,) or (T, U); kernel (F, G U), recurrent_kernel (U, G U), then the bias.
Shape Recurrent::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 2)
    fail<ValueError>("Input 0 of layer '", name_, "' (", class_name(), ") is incompatible with the "
                     "layer: expected ndim=3 (batch, timesteps, features), found ndim=", in.size() + 1,
                     ". Full shape received: ", shape_str(in));
  T_ = in[0];
  features_ = in[1];
  const std::size_t GU = gates_ * units_;
  kernel_id_ = add_weight(params, "kernel", {features_, GU}, opt_.kernel_initializer);
  recurrent_id_ = add_weight(params, "recurrent_kernel", {units_, GU}, opt_.recurrent_initializer);
  if (opt_.use_bias) add_bias(params);
  if (opt_.return_sequences) return {T_, units_};
  return {units_};
}

void Recurrent::add_bias(Parameters& params) {
  bias_id_ = add_weight(params, "bias", {gates_ * units_}, opt_.bias_initializer);
}

// ----- forward ----------------------------------------------------------------------------------------

void Recurrent::draw_masks(const Context& ctx) {
  // LSTM and GRU apply dropout only for 0 < rate < 1 (the constructor already rejects rate >= 1).
  use_dp_ = ctx.training && opt_.dropout > 0.0;
  use_rdp_ = ctx.training && opt_.recurrent_dropout > 0.0;
  mask_blocks_ = (gates_ > 1 && (opt_.implementation == 1 || opt_.recurrent_dropout > 0.0)) ? gates_ : 1;
  if (!use_dp_ && !use_rdp_) return;
  Rng& rng = opt_.seed ? own_rng_ : *ctx.rng;
  if (use_dp_) fill_dropout_mask(rng, dp_, mask_blocks_ * N_ * features_, opt_.dropout);
  if (use_rdp_) fill_dropout_mask(rng, rdp_, mask_blocks_ * N_ * units_, opt_.recurrent_dropout);
}

void Recurrent::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  if (xs.size() != 3 || xs[1] != T_ || xs[2] != features_)
    fail<ValueError>("Layer '", name_, "' (", class_name(), ") expects inputs of shape (N, ", T_, ", ",
                     features_, "). Received: shape=", shape_str(xs, false));
  N_ = xs[0];
  const std::size_t N = N_, T = T_, U = units_;
  mask_ = sequence_mask_of(ctx, N, T, name_, class_name(), xs);
  x_ = x.data();

  // Which input times each sample uses: its rows [slo, shi) get projected, and the loop visits
  // the times [lo, hi) that cover them all.
  active_.assign(T, 0);
  slo_.assign(N, 0);
  shi_.assign(N, 0);
  lo_ = T;
  hi_ = 0;
  full_rows_ = true;
  for (std::size_t n = 0; n < N; ++n) {
    std::size_t first = T, last = 0;
    for (std::size_t t = 0; t < T; ++t)
      if (step_on(n, t)) {
        active_[t] = 1;
        first = std::min(first, t);
        last = t + 1;
      }
    if (last > 0) {
      slo_[n] = first;
      shi_[n] = last;
      lo_ = std::min(lo_, first);
      hi_ = std::max(hi_, last);
    }
    full_rows_ = full_rows_ && slo_[n] == 0 && shi_[n] == T;
  }
  if (hi_ == 0) lo_ = 0;  // nothing to compute
  rows_.clear();
  if (!full_rows_)
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t t = slo_[n]; t < shi_[n]; ++t) rows_.push_back(n * T + t);
  first_s_ = T;
  for (std::size_t s = 0; s < T; ++s)
    if (active_[time_of(s)]) {
      first_s_ = s;
      break;
    }

  draw_masks(ctx);
  dstate_.assign(state_count(), {});
  const std::size_t GU = gates_ * U;
  z_.resize(N * T * GU);
  hprev_.resize(N * T * U);
  h_.assign(N * U, 0.f);
  hd_.resize(N * U);
  tmp_.resize(N * U);
  project_inputs();

  ensure_shape(y, opt_.return_sequences ? Shape{N, T, U} : Shape{N, U});
  run_forward(y);
}

void Recurrent::gather_rows(const float* src, std::size_t ld, std::size_t width, float* dst) const {
  const std::size_t R = computed_rows();
  for (std::size_t i = 0; i < R; ++i)
    std::memcpy(dst + i * width, src + row_index(i) * ld, width * sizeof(float));
}

// z[(n, t)] = x'(n, t) W + b for the computed rows, x' = x * dp_k for gate block k in training.
void Recurrent::project_inputs() {
  const std::size_t N = N_, T = T_, F = features_, GU = gates_ * units_;
  if (N == 0 || hi_ <= lo_) return;
  const float* W = params_->value(kernel_id_);
  const std::size_t K = use_dp_ ? mask_blocks_ : 1, BW = GU / K, R = computed_rows();
  float* zc = z_.data();  // (R, G U): z_ itself for full rows, else gathered and scattered after
  if (!full_rows_) {
    ga_.resize(std::max(ga_.size(), R * GU));
    zc = ga_.data();
  }
  for (std::size_t k = 0; k < K; ++k) {
    const float* src = x_;
    if (use_dp_ || !full_rows_) {  // (R, F): the computed rows of x, times dp_k
      gb_.resize(std::max(gb_.size(), R * F));
      const float* mk = use_dp_ ? dp_.data() + k * N * F : nullptr;
      for (std::size_t i = 0; i < R; ++i) {
        const std::size_t r = row_index(i);
        const float* xr = x_ + r * F;
        float* dr = gb_.data() + i * F;
        if (mk) {
          const float* m = mk + (r / T) * F;
          for (std::size_t f = 0; f < F; ++f) dr[f] = xr[f] * m[f];
        } else {
          std::memcpy(dr, xr, F * sizeof(float));
        }
      }
      src = gb_.data();
    }
    // (R, F) (F, BW) -> (R, BW), columns [k BW, (k+1) BW)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, I(R), I(BW), I(F), 1.f, src, I(F),
                W + k * BW, I(GU), 0.f, zc + k * BW, I(GU));
  }
  const float* b = opt_.use_bias ? params_->value(bias_id_) : nullptr;  // GRU reset_after: row 0
  for (std::size_t i = 0; i < R; ++i) {
    float* zr = z_.data() + row_index(i) * GU;
    if (!full_rows_) std::memcpy(zr, zc + i * GU, GU * sizeof(float));
    if (b)
      for (std::size_t j = 0; j < GU; ++j) zr[j] += b[j];
  }
}

void Recurrent::recurrent_matmul(const float* h, float* out, std::size_t ldo, std::size_t c0,
                                 std::size_t c1) {
  const std::size_t N = N_, U = units_, GU = gates_ * U;
  const float* Ur = params_->value(recurrent_id_);
  const std::size_t K = use_rdp_ ? mask_blocks_ : 1, BW = GU / K;
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t b0 = std::max(c0, k * BW), b1 = std::min(c1, (k + 1) * BW);
    if (b0 >= b1) continue;
    const float* src = h;
    if (use_rdp_) {
      const float* mk = rdp_.data() + k * N * U;
      for (std::size_t i = 0; i < N * U; ++i) hd_[i] = h[i] * mk[i];
      src = hd_.data();
    }
    // (N, U) (U, b1 - b0) -> (N, b1 - b0), accumulated
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, I(N), I(b1 - b0), I(U), 1.f, src, I(U),
                Ur + b0, I(GU), 1.f, out + b0, I(ldo));
  }
}

void Recurrent::recurrent_matmul_t(const float* dz, std::size_t ldz, float* out, std::size_t c0,
                                   std::size_t c1) {
  const std::size_t N = N_, U = units_, GU = gates_ * U;
  const float* Ur = params_->value(recurrent_id_);
  if (!use_rdp_) {
    // (N, c1 - c0) (c1 - c0, U) -> (N, U): dz U^T over the columns at once
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(N), I(U), I(c1 - c0), 1.f, dz + c0, I(ldz),
                Ur + c0, I(GU), 0.f, out, I(U));
    return;
  }
  const std::size_t K = mask_blocks_, BW = GU / K;
  std::fill(out, out + N * U, 0.f);
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t b0 = std::max(c0, k * BW), b1 = std::min(c1, (k + 1) * BW);
    if (b0 >= b1) continue;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(N), I(U), I(b1 - b0), 1.f, dz + b0, I(ldz),
                Ur + b0, I(GU), 0.f, hd_.data(), I(U));
    const float* mk = rdp_.data() + k * N * U;
    for (std::size_t i = 0; i < N * U; ++i) out[i] += hd_[i] * mk[i];
  }
}

void Recurrent::gemm_tn_rows(const float* A, std::size_t lda, const float* B, std::size_t ldb,
                             float* C, std::size_t ldc, std::size_t m, std::size_t n) {
  const std::size_t R = computed_rows();
  if (R == 0 || hi_ <= lo_) return;
  if (!full_rows_) {
    ga_.resize(std::max(ga_.size(), R * m));
    gb_.resize(std::max(gb_.size(), R * n));
    gather_rows(A, lda, m, ga_.data());
    gather_rows(B, ldb, n, gb_.data());
    A = ga_.data();
    B = gb_.data();
    lda = m;
    ldb = n;
  }
  // (m, R) (R, n) -> (m, n), accumulated
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I(m), I(n), I(R), 1.f, A, I(lda), B, I(ldb),
              1.f, C, I(ldc));
}

void Recurrent::recurrent_weight_grad(const std::vector<float>& states, const float* dz,
                                      std::size_t c0, std::size_t c1) {
  if (!trainable_weight(recurrent_id_)) return;
  const std::size_t N = N_, T = T_, U = units_, GU = gates_ * U;
  float* dU = params_->grad(recurrent_id_);
  const std::size_t K = use_rdp_ ? mask_blocks_ : 1, BW = GU / K;
  for (std::size_t k = 0; k < K; ++k) {
    const std::size_t b0 = std::max(c0, k * BW), b1 = std::min(c1, (k + 1) * BW);
    if (b0 >= b1) continue;
    const float* src = states.data();
    if (use_rdp_) {
      xd_.resize(std::max(xd_.size(), N * T * U));
      const float* mk = rdp_.data() + k * N * U;
      for (std::size_t n = 0; n < N; ++n)
        for (std::size_t t = slo_[n]; t < shi_[n]; ++t) {
          const float* hr = states.data() + (n * T + t) * U;
          float* dr = xd_.data() + (n * T + t) * U;
          for (std::size_t u = 0; u < U; ++u) dr[u] = hr[u] * mk[n * U + u];
        }
      src = xd_.data();
    }
    gemm_tn_rows(src, U, dz + b0, GU, dU + b0, GU, U, b1 - b0);
  }
}

void Recurrent::add_column_sums(const float* src, std::size_t ld, std::size_t width, float* out) {
  for (std::size_t n = 0; n < N_; ++n)
    for (std::size_t t = slo_[n]; t < shi_[n]; ++t) {
      const float* r = src + (n * T_ + t) * ld;
      for (std::size_t j = 0; j < width; ++j) out[j] += r[j];
    }
}

void Recurrent::write_step_output(Tensor& y, std::size_t s, std::size_t t) const {
  const std::size_t U = units_;
  for (std::size_t n = 0; n < N_; ++n) {
    float* yr = y.data() + (n * T_ + s) * U;
    if (opt_.zero_output_for_mask && !step_on(n, t)) std::fill(yr, yr + U, 0.f);
    else std::memcpy(yr, h_.data() + n * U, U * sizeof(float));
  }
}

void Recurrent::write_last_output(Tensor& y) const {
  const std::size_t U = units_, t = time_of(T_ - 1);
  for (std::size_t n = 0; n < N_; ++n) {
    float* yr = y.data() + n * U;
    if (opt_.zero_output_for_mask && !step_on(n, t)) std::fill(yr, yr + U, 0.f);
    else std::memcpy(yr, h_.data() + n * U, U * sizeof(float));
  }
}

const std::vector<float>& Recurrent::final_state(std::size_t k) const {
  if (k != 0) fail<ValueError>("Layer '", name_, "' (", class_name(), ") has 1 state. Received: index=", k);
  return h_;
}

void Recurrent::add_state_grad(std::size_t k, const float* d) {
  if (k >= dstate_.size())
    fail<StateError>("Layer '", name_, "' (", class_name(), "): state gradient ", k, " before forward");
  auto& g = dstate_[k];
  if (g.empty()) g.assign(N_ * units_, 0.f);
  for (std::size_t i = 0; i < g.size(); ++i) g[i] += d[i];
}

void Recurrent::take_state_grad(std::size_t k, std::vector<float>& d) {
  if (k >= dstate_.size() || dstate_[k].empty()) return;
  for (std::size_t i = 0; i < d.size(); ++i) d[i] += dstate_[k][i];
  dstate_[k].clear();
}

std::string Recurrent::summary_shape() const {
  if (!opt_.return_state) return Layer::summary_shape();
  const std::string state = shape_str({units_});
  std::string s = "[" + shape_str(output_shape_);
  for (std::size_t k = 0; k < state_count(); ++k) s += ", " + state;
  return s + "]";
}

void Recurrent::zero_time_rows(std::vector<float>& b, std::size_t t, std::size_t width) {
  for (std::size_t n = 0; n < N_; ++n) std::fill_n(b.data() + (n * T_ + t) * width, width, 0.f);
}

// ----- backward ---------------------------------------------------------------------------------------

void Recurrent::add_output_grad(const Tensor& dy, std::size_t s, std::size_t t) {
  const std::size_t U = units_;
  if (!opt_.return_sequences && s != T_ - 1) return;
  for (std::size_t n = 0; n < N_; ++n) {
    if (opt_.zero_output_for_mask && !step_on(n, t)) continue;
    const float* g = opt_.return_sequences ? dy.data() + (n * T_ + s) * U : dy.data() + n * U;
    float* d = dh_.data() + n * U;
    for (std::size_t u = 0; u < U; ++u) d[u] += g[u];
  }
}

void Recurrent::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (", class_name(), "): backward called before forward");
  const std::size_t N = N_, T = T_, U = units_;
  const Shape expected = opt_.return_sequences ? Shape{N, T, U} : Shape{N, U};
  if (shape_of(dy) != expected)
    fail<ValueError>("Layer '", name_, "' (", class_name(), "): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(expected, false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (dx) ensure_shape(*dx, {N, T, features_});
  const bool weights = trainable_weight(kernel_id_) || trainable_weight(recurrent_id_) ||
                       (opt_.use_bias && trainable_weight(bias_id_));
  if (!dx && !weights) return;
  if (N == 0 || hi_ <= lo_) {  // nothing was computed: no gradient reaches x or the weights
    if (dx) std::fill(dx->begin(), dx->end(), 0.f);
    return;
  }
  dz_.resize(N * T * gates_ * U);
  dh_.assign(N * U, 0.f);
  take_state_grad(0, dh_);
  run_backward(dy);
  input_gradients(dx);
}

// From dz (the projection's gradient): dW += x'^T dz, db += sum dz, dx = sum_k (dz_k W_k^T) * dp_k.
void Recurrent::input_gradients(Tensor* dx) {
  const std::size_t N = N_, T = T_, F = features_, GU = gates_ * units_;
  const std::size_t K = use_dp_ ? mask_blocks_ : 1, BW = GU / K;
  const float* W = params_->value(kernel_id_);
  auto dropped_inputs = [&](std::size_t k) {  // xd_ = x * dp_k on the computed rows
    const float* mk = dp_.data() + k * N * F;
    for (std::size_t n = 0; n < N; ++n)
      for (std::size_t t = slo_[n]; t < shi_[n]; ++t) {
        const float* xr = x_ + (n * T + t) * F;
        float* dr = xd_.data() + (n * T + t) * F;
        for (std::size_t f = 0; f < F; ++f) dr[f] = xr[f] * mk[n * F + f];
      }
  };
  if (use_dp_) xd_.resize(std::max(xd_.size(), N * T * F));

  if (trainable_weight(kernel_id_)) {
    float* dW = params_->grad(kernel_id_);
    for (std::size_t k = 0; k < K; ++k) {
      if (use_dp_) dropped_inputs(k);
      gemm_tn_rows(use_dp_ ? xd_.data() : x_, F, dz_.data() + k * BW, GU, dW + k * BW, GU, F, BW);
    }
  }
  if (opt_.use_bias && trainable_weight(bias_id_))
    add_column_sums(dz_.data(), GU, GU, params_->grad(bias_id_));

  if (!dx) return;
  float* out = dx->data();
  // Rows outside the computed ones get no gradient.
  for (std::size_t n = 0; n < N; ++n) {
    std::fill(out + n * T * F, out + (n * T + slo_[n]) * F, 0.f);
    std::fill(out + (n * T + std::max(slo_[n], shi_[n])) * F, out + (n + 1) * T * F, 0.f);
  }
  const std::size_t R = computed_rows();
  if (full_rows_ && !use_dp_) {
    // (R, G U) (G U, F) -> (R, F), straight into dx
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(R), I(F), I(GU), 1.f, dz_.data(), I(GU),
                W, I(GU), 0.f, out, I(F));
    return;
  }
  const float* dz = dz_.data();
  if (!full_rows_) {  // the computed rows of dz, contiguous
    ga_.resize(std::max(ga_.size(), R * GU));
    gather_rows(dz_.data(), GU, GU, ga_.data());
    dz = ga_.data();
  }
  gb_.resize(std::max(gb_.size(), R * F));
  for (std::size_t k = 0; k < K; ++k) {
    // gb_ = dz_k W_k^T: (R, BW) (BW, F) -> (R, F); then dx (+)= gb_ * dp_k row by row
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(R), I(F), I(BW), 1.f, dz + k * BW, I(GU),
                W + k * BW, I(GU), 0.f, gb_.data(), I(F));
    const float* mk = use_dp_ ? dp_.data() + k * N * F : nullptr;
    for (std::size_t i = 0; i < R; ++i) {
      const std::size_t r = row_index(i);
      const float* sr = gb_.data() + i * F;
      float* dr = out + r * F;
      if (!mk) {
        std::memcpy(dr, sr, F * sizeof(float));
        continue;
      }
      const float* m = mk + (r / T) * F;
      if (k == 0)
        for (std::size_t f = 0; f < F; ++f) dr[f] = sr[f] * m[f];
      else
        for (std::size_t f = 0; f < F; ++f) dr[f] += sr[f] * m[f];
    }
  }
}

// ----- RecurrentState -------------------------------------------------------------------------------

RecurrentState::RecurrentState(long long index, std::string name)
    : Layer(std::string()), index_(static_cast<std::size_t>(std::max(0LL, index))) {
  if (index < 0 || index > 1)
    fail<ValueError>("RecurrentState: the state index must be 0 (h) or 1 (LSTM's c). Received: index=", index);
  name_ = name.empty() ? unique_name("recurrent_state") : std::move(name);
}

LayerPtr RecurrentState::from_config(const json& c) {
  try {
    return std::make_shared<RecurrentState>(c.at("index").get<long long>(), c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid RecurrentState config (", e.what(), "). Received: ", c.dump());
  }
}

json RecurrentState::get_config() const {
  json c = Layer::get_config();
  c["index"] = index_;
  return c;
}

void RecurrentState::connect(const std::vector<LayerPtr>& input_layers) {
  auto src = input_layers.size() == 1 ? std::dynamic_pointer_cast<Recurrent>(input_layers[0]) : nullptr;
  if (!src || !src->return_state())
    fail<ValueError>("RecurrentState '", name_, "' must follow a SimpleRNN, LSTM or GRU layer with "
                     "return_state=True. Received: ",
                     input_layers.size() == 1 && input_layers[0]
                         ? "layer '" + input_layers[0]->name() + "' (" + input_layers[0]->class_name() + ")"
                         : std::to_string(input_layers.size()) + " input(s)");
  if (index_ >= src->state_count())
    fail<ValueError>("Layer '", src->name(), "' (", src->class_name(), ") has ", src->state_count(),
                     " state(s). Received: index=", index_);
  source_ = std::move(src);
}

// (source output) -> (U,)
Shape RecurrentState::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  if (!source_)
    fail<ValueError>("RecurrentState '", name_, "' is not connected to a recurrent layer (use it "
                     "through the functional call of a layer with return_state=True)");
  return {source_->units()};
}

void RecurrentState::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context&) {
  x_ = inputs[0];
  const std::vector<float>& h = source_->final_state(index_);
  const std::size_t N = x_->shape()[0], U = source_->units();
  ensure_shape(y, {N, U});
  if (h.size() != N * U)
    fail<StateError>("RecurrentState '", name_, "': layer '", source_->name(), "' has not run on this batch");
  std::copy(h.begin(), h.end(), y.begin());
}

void RecurrentState::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (RecurrentState): backward called before forward");
  source_->add_state_grad(index_, dy.data());
  if (!dinputs.empty() && dinputs[0]) {
    ensure_shape(*dinputs[0], shape_of(*x_));
    std::fill(dinputs[0]->begin(), dinputs[0]->end(), 0.f);
  }
}

SIGNCORE_REGISTER_LAYER(RecurrentState);

}  // namespace signcore
