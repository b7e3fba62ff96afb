// ConvLSTM2D: the batched input convolution, the time loop and its reverse (see conv_lstm2d.hpp
// for the equations and the algorithm). The LSTM cell itself is rnn::lstm_cell_forward/backward,
// shared with LSTM; patches come from im2col.hpp, shared with Conv2D.
//
// Layouts (P = OH OW, G = 4F): z_ and dz_ are (N, T, P, G), frame-major like x and y, so the
// whole-sequence GEMMs write and read them in im2col's row order (row = line * OW + ow, line =
// (n T + t) OH + oh). The per-step caches hprev_, cprev_, tc_ and cnew_ are time-major (T, N, P, F):
// hprev_[t] is one contiguous batch of N frames, which is what the recurrent im2col reads.
#include "signcore/layers/conv_lstm2d.hpp"

#include <cblas.h>

#include <algorithm>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/initializers.hpp"
#include "signcore/layers/conv2d.hpp"
#include "signcore/layers/recurrent_math.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

int I(std::size_t v) { return static_cast<int>(v); }

// Work per parallel chunk of the element-wise loops, in floats.
constexpr std::size_t kGrain = 1 << 14;

std::string pair_str(const std::array<long long, 2>& p) {
  return "(" + std::to_string(p[0]) + ", " + std::to_string(p[1]) + ")";
}

std::array<std::size_t, 2> positive_pair(const std::array<long long, 2>& p, const char* arg) {
  if (p[0] < 1 || p[1] < 1)
    fail<ValueError>("ConvLSTM2D: the `", arg, "` argument must be a tuple of 2 integers > 0. "
                     "Received: ", arg, "=", pair_str(p));
  return {static_cast<std::size_t>(p[0]), static_cast<std::size_t>(p[1])};
}

// Validates everything before a name is taken, so a rejected call does not use one up.
std::string checked_name(const ConvLSTM2DOptions& o) {
  if (o.rnn.units <= 0)
    fail<ValueError>("Invalid value for argument `filters`. Expected a strictly positive value. "
                     "Received: filters=", o.rnn.units);
  positive_pair(o.kernel_size, "kernel_size");
  const auto st = positive_pair(o.strides, "strides");
  const auto dil = positive_pair(o.dilation_rate, "dilation_rate");
  if (std::max(st[0], st[1]) > 1 && std::max(dil[0], dil[1]) > 1)
    fail<ValueError>("ConvLSTM2D: `strides > 1` not supported in conjunction with "
                     "`dilation_rate > 1`. Received: strides=", pair_str(o.strides),
                     " and dilation_rate=", pair_str(o.dilation_rate));
  parse_conv_padding(o.padding);
  if (o.rnn.return_state)
    fail<ValueError>("ConvLSTM2D: return_state=True is not supported in signcore yet (SimpleRNN, "
                     "LSTM and GRU support it). Received: return_state=True");
  if (!o.data_format.empty() && o.data_format != "channels_last")
    fail<ValueError>("signcore's ConvLSTM2D supports data_format=\"channels_last\" only (inputs "
                     "shaped (batch, time, height, width, channels)). Received: data_format=",
                     o.data_format);
  parse_activation(o.rnn.activation);
  parse_activation(o.rnn.recurrent_activation);
  check_initializer(o.rnn.kernel_initializer);
  check_initializer(o.rnn.recurrent_initializer);
  check_initializer(o.rnn.bias_initializer);
  check_dropout_rate(o.rnn.dropout, "dropout");
  check_dropout_rate(o.rnn.recurrent_dropout, "recurrent_dropout");
  return o.rnn.name.empty() ? unique_name("conv_lstm2d") : o.rnn.name;
}

}  // namespace

// ----- construction and config ----------------------------------------------------------------------

ConvLSTM2D::ConvLSTM2D(ConvLSTM2DOptions o)
    : Layer(checked_name(o)),
      opt_(std::move(o)),
      filters_(static_cast<std::size_t>(opt_.rnn.units)),
      kernel_(positive_pair(opt_.kernel_size, "kernel_size")),
      strides_(positive_pair(opt_.strides, "strides")),
      dilation_(positive_pair(opt_.dilation_rate, "dilation_rate")),
      padding_(parse_conv_padding(opt_.padding)),
      act_(parse_activation(opt_.rnn.activation)),
      rec_act_(parse_activation(opt_.rnn.recurrent_activation)),
      own_rng_(opt_.rnn.seed.value_or(0)) {
  opt_.rnn.name.clear();  // the layer's name is name_ from now on
  opt_.data_format = "channels_last";
}

LayerPtr ConvLSTM2D::from_config(const json& c) {
  ConvLSTM2DOptions o;
  try {
    if (!c.is_object() || !c.contains("filters") || !c.contains("kernel_size"))
      fail<ValueError>("ConvLSTM2D config needs `filters` and `kernel_size`. Received: ", c.dump());
    json rc = c;
    rc["units"] = c.at("filters");  // the recurrent options read filters as units
    o.rnn = recurrent_options_from_config(rc, "ConvLSTM2D");
    auto pair = [&c](const char* key, long long fallback) -> std::array<long long, 2> {
      if (!c.contains(key) || c[key].is_null()) return {fallback, fallback};
      const json& v = c[key];
      if (v.is_number_integer()) return {v.get<long long>(), v.get<long long>()};
      if (!v.is_array() || v.size() != 2)
        fail<ValueError>("ConvLSTM2D config: `", key, "` must be an integer or a list of 2 "
                         "integers. Received: ", key, "=", v.dump());
      return {v[0].get<long long>(), v[1].get<long long>()};
    };
    o.kernel_size = pair("kernel_size", 1);
    o.strides = pair("strides", 1);
    o.dilation_rate = pair("dilation_rate", 1);
    o.padding = c.value("padding", std::string("valid"));
    if (c.contains("data_format") && c["data_format"].is_string())
      o.data_format = c["data_format"].get<std::string>();
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid ConvLSTM2D config (", e.what(), "). Received: ", c.dump());
  }
  return std::make_shared<ConvLSTM2D>(std::move(o));
}

json ConvLSTM2D::get_config() const {
  const RecurrentOptions& r = opt_.rnn;
  json c = Layer::get_config();
  c["filters"] = filters_;
  c["kernel_size"] = {kernel_[0], kernel_[1]};
  c["strides"] = {strides_[0], strides_[1]};
  c["padding"] = conv_padding_name(padding_);
  c["data_format"] = "channels_last";
  c["dilation_rate"] = {dilation_[0], dilation_[1]};
  c["activation"] = activation_name(act_);
  c["recurrent_activation"] = activation_name(rec_act_);
  c["unit_forget_bias"] = r.unit_forget_bias;
  write_recurrent_config(c, r);
  return c;
}

// (T, H, W, C) -> (OH, OW, F) or (T, OH, OW, F); kernel (kh, kw, C, 4F), recurrent_kernel
// (kh, kw, F, 4F), bias (4F,) (the forget block at 1 with unit_forget_bias).
Shape ConvLSTM2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 4 || std::find(in.begin(), in.end(), std::size_t{0}) != in.end())
    fail<ValueError>("Input 0 of layer '", name_, "' (ConvLSTM2D) is incompatible with the layer: "
                     "expected ndim=5 (batch, timesteps, height, width, channels) with no empty "
                     "axis, found ndim=", in.size() + 1, ". Full shape received: ", shape_str(in));
  T_ = in[0];
  const std::size_t F = filters_, G = 4 * F, kh = kernel_[0], kw = kernel_[1];
  gx_ = conv_geometry_2d(in[1], in[2], in[3], kh, kw, strides_[0], strides_[1], dilation_[0],
                         dilation_[1], padding_);
  if (gx_.h.out == 0 || gx_.w.out == 0)
    fail<ValueError>("Computed output size would be zero or negative for layer '", name_,
                     "' (ConvLSTM2D): the frames are smaller than the (dilated) kernel. Received: "
                     "inputs shape=", shape_str(in), ", kernel_size=", pair_str(opt_.kernel_size),
                     ", dilation_rate=", pair_str(opt_.dilation_rate), ", padding=\"",
                     conv_padding_name(padding_), "\"");
  gh_ = conv_geometry_2d(gx_.h.out, gx_.w.out, F, kh, kw, 1, 1, 1, 1, ConvPadding::Same);
  const RecurrentOptions& r = opt_.rnn;
  kernel_id_ = add_weight(params, "kernel", {kh, kw, in[3], G}, r.kernel_initializer);
  recurrent_id_ = add_weight(params, "recurrent_kernel", {kh, kw, F, G}, r.recurrent_initializer);
  if (r.use_bias)
    bias_id_ = add_weight(params, "bias", {G},
                          r.unit_forget_bias ? lstm_forget_bias_initializer(r.bias_initializer, F)
                                             : r.bias_initializer);
  if (r.return_sequences) return {T_, gx_.h.out, gx_.w.out, F};
  return {gx_.h.out, gx_.w.out, F};
}

// ----- helpers ----------------------------------------------------------------------------------------

std::size_t ConvLSTM2D::chunk_lines(std::size_t width) const {
  const std::size_t line_bytes = std::max<std::size_t>(1, gx_.w.out * width * sizeof(float));
  return std::max<std::size_t>(1, Conv2D::chunk_bytes() / line_bytes);
}

template <class Fn>
void ConvLSTM2D::for_used_lines(std::size_t width, Fn&& fn) const {
  const std::size_t OH = gx_.h.out, frames = N_ * T_, step = chunk_lines(width);
  std::size_t f = 0;
  while (f < frames) {
    if (!step_on(f / T_, f % T_)) {
      ++f;
      continue;
    }
    std::size_t e = f + 1;  // [f, e): a run of used frames
    while (e < frames && step_on(e / T_, e % T_)) ++e;
    for (std::size_t l0 = f * OH; l0 < e * OH; l0 += step) fn(l0, std::min(e * OH, l0 + step));
    f = e;
  }
}

const float* ConvLSTM2D::dropped_input(std::size_t k) {
  if (!use_dp_) return x_;
  const std::size_t N = N_, T = T_, S = gx_.in_size();
  xd_.resize(N * T * S);
  const float* m = dp_.data() + k * N * S;  // (N, H, W, C), the same at every step
  float* out = xd_.data();
  const float* x = x_;
  parallel_for(N * T, std::max<std::size_t>(1, kGrain / S), [&](std::size_t b, std::size_t e) {
    for (std::size_t f = b; f < e; ++f) {
      const float* mf = m + (f / T) * S;
      for (std::size_t i = 0; i < S; ++i) out[f * S + i] = x[f * S + i] * mf[i];
    }
  });
  return out;
}

const float* ConvLSTM2D::dropped_state(const float* h, std::size_t k) {
  if (!use_rdp_) return h;
  const std::size_t NPF = N_ * gh_.in_size();
  hd_.resize(NPF);
  const float* m = rdp_.data() + k * NPF;
  for (std::size_t i = 0; i < NPF; ++i) hd_[i] = h[i] * m[i];
  return hd_.data();
}

void ConvLSTM2D::draw_masks(const Context& ctx) {
  use_dp_ = ctx.training && opt_.rnn.dropout > 0.0;
  use_rdp_ = ctx.training && opt_.rnn.recurrent_dropout > 0.0;
  if (!use_dp_ && !use_rdp_) return;
  Rng& rng = opt_.rnn.seed ? own_rng_ : *ctx.rng;
  if (use_dp_) fill_dropout_mask(rng, dp_, 4 * N_ * gx_.in_size(), opt_.rnn.dropout);
  if (use_rdp_) fill_dropout_mask(rng, rdp_, 4 * N_ * gh_.in_size(), opt_.rnn.recurrent_dropout);
}

// ----- forward ----------------------------------------------------------------------------------------

// z_ rows of the used frames = im2col(x') W (x' = x * dp_k for gate block k with dropout).
void ConvLSTM2D::input_convolution() {
  const std::size_t G = 4 * filters_, Kx = gx_.patch(), OW = gx_.w.out;
  const std::size_t K = use_dp_ ? 4 : 1, BW = G / K, width = std::max(Kx, G);
  const float* W = params_->value(kernel_id_);
  cols_.resize(std::max(cols_.size(), chunk_lines(width) * OW * Kx));
  for (std::size_t k = 0; k < K; ++k) {
    const float* src = dropped_input(k);
    for_used_lines(width, [&](std::size_t l0, std::size_t l1) {
      const std::size_t rows = (l1 - l0) * OW;
      im2col(gx_, src, l0, l1, cols_.data());
      // (rows, Kx) (Kx, BW) -> (rows, BW), columns [k BW, (k + 1) BW) of z
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, I(rows), I(BW), I(Kx), 1.f,
                  cols_.data(), I(Kx), W + k * BW, I(G), 0.f, z_.data() + l0 * OW * G + k * BW, I(G));
    });
  }
}

// r_ (N P, G) = im2col(h') U, h' = h * rdp_k for gate block k with recurrent dropout.
void ConvLSTM2D::recurrent_convolution(const float* h) {
  const std::size_t G = 4 * filters_, Kh = gh_.patch(), NP = N_ * gh_.rows();
  const std::size_t K = use_rdp_ ? 4 : 1, BW = G / K;
  const float* U = params_->value(recurrent_id_);
  cols_.resize(std::max(cols_.size(), NP * Kh));
  for (std::size_t k = 0; k < K; ++k) {
    im2col(gh_, dropped_state(h, k), 0, N_ * gh_.lines(), cols_.data());
    // (N P, Kh) (Kh, BW) -> (N P, BW)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, I(NP), I(BW), I(Kh), 1.f, cols_.data(),
                I(Kh), U + k * BW, I(G), 0.f, r_.data() + k * BW, I(G));
  }
}

// The cell at time t for every position of every sample that uses t: z += r + b, then the gates
// and the new h, c. Samples masked at t keep their h and c.
void ConvLSTM2D::step_forward(std::size_t t, bool with_r) {
  const std::size_t N = N_, T = T_, P = gx_.rows(), F = filters_, G = 4 * F, NPF = N * P * F;
  std::memcpy(hprev_.data() + t * NPF, h_.data(), NPF * sizeof(float));
  std::memcpy(cprev_.data() + t * NPF, c_.data(), NPF * sizeof(float));
  const float* b = opt_.rnn.use_bias ? params_->value(bias_id_) : nullptr;
  const float* r = with_r ? r_.data() : nullptr;
  parallel_for(N * P, std::max<std::size_t>(1, kGrain / (2 * G)), [&](std::size_t r0, std::size_t r1) {
    for (std::size_t q = r0; q < r1; ++q) {  // q = n P + p
      const std::size_t n = q / P;
      if (!step_on(n, t)) continue;
      const std::size_t zi = ((n * T + t) * P + q % P) * G, ci = t * NPF + q * F;
      float* zr = z_.data() + zi;
      if (r)
        for (std::size_t j = 0; j < G; ++j) zr[j] += r[q * G + j];
      if (b)
        for (std::size_t j = 0; j < G; ++j) zr[j] += b[j];
      rnn::lstm_cell_forward(act_, rec_act_, zr, keep_z_ ? a_.data() + zi : zr, c_.data() + q * F,
                             keep_c_ ? cnew_.data() + ci : nullptr, tc_.data() + ci,
                             h_.data() + q * F, F);
    }
  });
}

// x: (N, T, H, W, C) -> y: (N, OH, OW, F) or (N, T, OH, OW, F)
void ConvLSTM2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  const Shape frame = {T_, gx_.h.in, gx_.w.in, gx_.channels};
  if (xs.size() != 5 || Shape(xs.begin() + 1, xs.end()) != frame)
    fail<ValueError>("Layer '", name_, "' (ConvLSTM2D) expects inputs of shape ", shape_str(frame),
                     ". Received: shape=", shape_str(xs, false));
  N_ = xs[0];
  const std::size_t N = N_, T = T_, P = gx_.rows(), F = filters_, G = 4 * F, NPF = N * P * F;
  mask_ = sequence_mask_of(ctx, N, T, name_, class_name(), xs);
  x_ = x.data();
  const bool seq = opt_.rnn.return_sequences;
  ensure_shape(y, seq ? Shape{N, T, gx_.h.out, gx_.w.out, F} : Shape{N, gx_.h.out, gx_.w.out, F});

  active_.assign(T, 0);
  for (std::size_t n = 0; n < N; ++n)
    for (std::size_t t = 0; t < T; ++t)
      if (step_on(n, t)) active_[t] = 1;
  first_s_ = T;
  for (std::size_t s = 0; s < T && first_s_ == T; ++s)
    if (active_[time_of(s)]) first_s_ = s;

  keep_z_ = !activation_backward_uses_output(act_) || !activation_backward_uses_output(rec_act_);
  keep_c_ = !activation_backward_uses_output(act_);
  draw_masks(ctx);
  z_.resize(N * T * P * G);
  if (keep_z_) a_.resize(N * T * P * G);
  hprev_.resize(T * NPF);
  cprev_.resize(T * NPF);
  tc_.resize(T * NPF);
  if (keep_c_) cnew_.resize(T * NPF);
  h_.assign(NPF, 0.f);
  c_.assign(NPF, 0.f);
  r_.resize(N * P * G);
  if (N > 0) input_convolution();

  for (std::size_t s = 0; s < T && N > 0; ++s) {
    const std::size_t t = time_of(s);
    if (active_[t]) {
      const bool with_r = s > first_s_;  // before the first used step h is 0
      if (with_r) recurrent_convolution(h_.data());
      step_forward(t, with_r);
    }
    if (seq)
      for (std::size_t n = 0; n < N; ++n)
        std::memcpy(y.data() + (n * T + s) * P * F, h_.data() + n * P * F, P * F * sizeof(float));
  }
  if (!seq) std::copy(h_.begin(), h_.end(), y.data());
}

// ----- backward ---------------------------------------------------------------------------------------

// dzs_ (N P, G) = the cell's reverse at time t (zero rows for samples masked at t); dc_ becomes
// dL/dc_{t-1} for the samples that use t.
void ConvLSTM2D::step_backward(std::size_t t) {
  const std::size_t N = N_, T = T_, P = gx_.rows(), F = filters_, G = 4 * F, NPF = N * P * F;
  parallel_for(N * P, std::max<std::size_t>(1, kGrain / (2 * G)), [&](std::size_t r0, std::size_t r1) {
    std::vector<float> dtc(F);
    for (std::size_t q = r0; q < r1; ++q) {
      const std::size_t n = q / P;
      float* dzr = dzs_.data() + q * G;
      if (!step_on(n, t)) {
        std::fill_n(dzr, G, 0.f);
        continue;
      }
      const std::size_t zi = ((n * T + t) * P + q % P) * G, ci = t * NPF + q * F;
      const float* zr = z_.data() + zi;
      rnn::lstm_cell_backward(act_, rec_act_, keep_z_ ? zr : nullptr, keep_z_ ? a_.data() + zi : zr,
                              cprev_.data() + ci, keep_c_ ? cnew_.data() + ci : nullptr,
                              tc_.data() + ci, dh_.data() + q * F, dc_.data() + q * F, dzr,
                              dtc.data(), F);
    }
  });
}

// Through the recurrent convolution at time t: dU += im2col(h')^T dzs (if need_u) and
// dhp_ = sum over the gate blocks of col2im(dzs_k U_k^T) * rdp_k.
void ConvLSTM2D::recurrent_backward(std::size_t t, bool need_u) {
  const std::size_t G = 4 * filters_, Kh = gh_.patch(), NP = N_ * gh_.rows(), NPF = NP * filters_;
  const std::size_t K = use_rdp_ ? 4 : 1, BW = G / K, lines = N_ * gh_.lines();
  const float* U = params_->value(recurrent_id_);
  float* dU = params_->grad(recurrent_id_);
  const float* hp = hprev_.data() + t * NPF;
  cols_.resize(std::max(cols_.size(), NP * Kh));
  dcols_.resize(std::max(dcols_.size(), NP * Kh));
  for (std::size_t k = 0; k < K; ++k) {
    const float* dz = dzs_.data() + k * BW;
    if (need_u) {
      im2col(gh_, dropped_state(hp, k), 0, lines, cols_.data());
      // (Kh, N P) (N P, BW) -> (Kh, BW), accumulated
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I(Kh), I(BW), I(NP), 1.f, cols_.data(),
                  I(Kh), dz, I(G), 1.f, dU + k * BW, I(G));
    }
    // (N P, BW) (BW, Kh) -> (N P, Kh)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(NP), I(Kh), I(BW), 1.f, dz, I(G),
                U + k * BW, I(G), 0.f, dcols_.data(), I(Kh));
    col2im(gh_, dcols_.data(), 0, lines, use_rdp_ ? tmp_.data() : dhp_.data(), /*accumulate=*/false);
    if (use_rdp_) {
      const float* m = rdp_.data() + k * NPF;
      for (std::size_t i = 0; i < NPF; ++i) dhp_[i] = (k ? dhp_[i] : 0.f) + tmp_[i] * m[i];
    }
  }
}

void ConvLSTM2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  if (!x_) fail<StateError>("Layer '", name_, "' (ConvLSTM2D): backward called before forward");
  const std::size_t N = N_, T = T_, P = gx_.rows(), F = filters_, G = 4 * F, PF = P * F;
  const bool seq = opt_.rnn.return_sequences;
  const Shape expected =
      seq ? Shape{N, T, gx_.h.out, gx_.w.out, F} : Shape{N, gx_.h.out, gx_.w.out, F};
  if (shape_of(dy) != expected)
    fail<ValueError>("Layer '", name_, "' (ConvLSTM2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected ", shape_str(expected, false));
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (dx) ensure_shape(*dx, {N, T, gx_.h.in, gx_.w.in, gx_.channels});
  const bool need_w = trainable_weight(kernel_id_), need_u = trainable_weight(recurrent_id_);
  const bool need_b = opt_.rnn.use_bias && trainable_weight(bias_id_);
  if (!dx && !need_w && !need_u && !need_b) return;
  if (N == 0 || first_s_ >= T) {  // nothing was computed: no gradient reaches x or the weights
    if (dx) std::fill(dx->begin(), dx->end(), 0.f);
    return;
  }
  dz_.resize(N * T * P * G);
  dzs_.resize(N * P * G);
  dh_.assign(N * PF, 0.f);
  dc_.assign(N * PF, 0.f);
  dhp_.resize(N * PF);
  tmp_.resize(N * PF);
  for (std::size_t s = T; s-- > 0;) {
    const std::size_t t = time_of(s);
    if (seq || s == T - 1)  // the output of step s is the state after it
      for (std::size_t n = 0; n < N; ++n) {
        const float* g = dy.data() + (seq ? (n * T + s) * PF : n * PF);
        float* d = dh_.data() + n * PF;
        for (std::size_t i = 0; i < PF; ++i) d[i] += g[i];
      }
    if (!active_[t]) continue;
    step_backward(t);
    for (std::size_t n = 0; n < N; ++n)
      std::memcpy(dz_.data() + (n * T + t) * P * G, dzs_.data() + n * P * G, P * G * sizeof(float));
    if (s > first_s_) {
      recurrent_backward(t, need_u);
      for (std::size_t n = 0; n < N; ++n)  // masked samples carry dh
        if (step_on(n, t))
          std::memcpy(dh_.data() + n * PF, dhp_.data() + n * PF, PF * sizeof(float));
    }
  }
  input_gradients(dx, need_w, need_b);
}

// From dz_: db += column sums, dW += im2col(x')^T dz, dx = sum over the gate blocks of
// col2im(dz_k W_k^T) * dp_k; only the used frames (the others get dx = 0).
void ConvLSTM2D::input_gradients(Tensor* dx, bool need_w, bool need_b) {
  const std::size_t N = N_, T = T_, P = gx_.rows(), G = 4 * filters_, Kx = gx_.patch();
  const std::size_t OW = gx_.w.out, S = gx_.in_size();
  if (need_b) {
    float* db = params_->grad(bias_id_);
    for (std::size_t f = 0; f < N * T; ++f) {
      if (!step_on(f / T, f % T)) continue;
      const float* zr = dz_.data() + f * P * G;
      for (std::size_t p = 0; p < P; ++p)
        for (std::size_t j = 0; j < G; ++j) db[j] += zr[p * G + j];
    }
  }
  if (!need_w && !dx) return;
  const std::size_t K = use_dp_ ? 4 : 1, BW = G / K, width = std::max(Kx, G);
  const std::size_t chunk = chunk_lines(width) * OW * Kx;
  cols_.resize(std::max(cols_.size(), chunk));
  dcols_.resize(std::max(dcols_.size(), chunk));
  const float* W = params_->value(kernel_id_);
  float* dW = need_w ? params_->grad(kernel_id_) : nullptr;
  auto zero = [](float* p, std::size_t n) {
    parallel_for(n, kGrain, [&](std::size_t b, std::size_t e) { std::fill(p + b, p + e, 0.f); });
  };
  if (dx) zero(dx->data(), dx->size());
  for (std::size_t k = 0; k < K; ++k) {
    const float* src = need_w ? dropped_input(k) : nullptr;
    float* dst = nullptr;  // where col2im gathers this block's dx
    if (dx && use_dp_) {
      dxg_.resize(N * T * S);
      zero(dxg_.data(), dxg_.size());
      dst = dxg_.data();
    } else if (dx) {
      dst = dx->data();
    }
    for_used_lines(width, [&](std::size_t l0, std::size_t l1) {
      const std::size_t rows = (l1 - l0) * OW;
      const float* dz = dz_.data() + l0 * OW * G + k * BW;
      if (need_w) {
        im2col(gx_, src, l0, l1, cols_.data());
        // (Kx, rows) (rows, BW) -> (Kx, BW), accumulated
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, I(Kx), I(BW), I(rows), 1.f,
                    cols_.data(), I(Kx), dz, I(G), 1.f, dW + k * BW, I(G));
      }
      if (dst) {
        // (rows, BW) (BW, Kx) -> (rows, Kx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, I(rows), I(Kx), I(BW), 1.f, dz, I(G),
                    W + k * BW, I(G), 0.f, dcols_.data(), I(Kx));
        col2im(gx_, dcols_.data(), l0, l1, dst, /*accumulate=*/true);
      }
    });
    if (dx && use_dp_) {
      const float* m = dp_.data() + k * N * S;
      float* out = dx->data();
      const float* g = dxg_.data();
      parallel_for(N * T, std::max<std::size_t>(1, kGrain / S), [&](std::size_t b, std::size_t e) {
        for (std::size_t f = b; f < e; ++f) {
          const float* mf = m + (f / T) * S;
          for (std::size_t i = 0; i < S; ++i) out[f * S + i] += g[f * S + i] * mf[i];
        }
      });
    }
  }
}

SIGNCORE_REGISTER_LAYER(ConvLSTM2D);

}  // namespace signcore
