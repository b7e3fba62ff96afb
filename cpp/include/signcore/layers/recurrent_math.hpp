// Element-wise kernels for the recurrent layers' time loops: vectorised sigmoid and tanh (the
// default gate activations, evaluated N * U times per step) and dispatch to the generic activations
// (activations.hpp) for every other Keras activation. One call handles one row of n values.
#pragma once

#include <cstddef>

#include "signcore/activations.hpp"

namespace signcore::rnn {

// y = f(x) over n values (x and y may alias). Softmax normalises the n values as one row.
void act_forward(ActivationKind kind, const float* x, float* y, std::size_t n);

// dx = dy * f'(x) over n values, from the input x and/or the output y (activations.hpp says which
// a kind needs; pass both when at hand). dx may alias dy.
void act_backward(ActivationKind kind, const float* x, const float* y, const float* dy, float* dx,
                  std::size_t n);

// One LSTM cell over n units, Keras's gate order i, f, c, o (shared by LSTM and ConvLSTM2D):
//   [i f c~ o] = [rec(z_i) rec(z_f) act(z_c) rec(z_o)];  c = f c + i c~;  h = o act(c).
// z: (4n) pre-activations; a: (4n) the activations (may alias z); c: (n) the carry, updated in
// place; cnew: (n) a copy of the new carry, or null when act' does not need it; tc: (n) act(c);
// h: (n) the new state.
void lstm_cell_forward(ActivationKind act, ActivationKind rec, float* z, float* a, float* c,
                       float* cnew, float* tc, float* h, std::size_t n);

// Its reverse for one step: from dh (n) and dc (n, the carry's gradient, updated in place to
// dL/dc_{t-1}) and the forward's z (null when the activations' derivatives need only their
// outputs), a, cprev (the carry entering the step), cnew (null unless act' needs it) and tc,
// writes dz (4n), the gradient of the pre-activations. dtc: (n) scratch.
//   dc_t = dc + dh o act'(c_t);  d[i f c~ o] = [dc_t c~, dc_t c_{t-1}, dc_t i, dh act(c_t)]
//   through the activations;  dc_{t-1} = dc_t f.
void lstm_cell_backward(ActivationKind act, ActivationKind rec, const float* z, const float* a,
                        const float* cprev, const float* cnew, const float* tc, const float* dh,
                        float* dc, float* dz, float* dtc, std::size_t n);

// The scalar kernels behind act_forward (exposed for tests and benchmarks): relative error of a few
// float ulps over the whole range, tanh included near 0.
float fast_sigmoid(float x);
float fast_tanh(float x);

}  // namespace signcore::rnn
