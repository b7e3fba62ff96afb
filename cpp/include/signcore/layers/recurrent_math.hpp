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

// The scalar kernels behind act_forward (exposed for tests and benchmarks): relative error of a few
// float ulps over the whole range, tanh included near 0.
float fast_sigmoid(float x);
float fast_tanh(float x);

}  // namespace signcore::rnn
