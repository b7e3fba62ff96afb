// Element-wise activations by Keras name (softmax over the last axis). Shared by the Activation
// layer and the layers that fuse an activation (Dense, later Conv2D and the recurrent layers).
#pragma once

#include <cstddef>
#include <string>

namespace signcore {

enum class ActivationKind { Linear, Relu, Sigmoid, Tanh, Softmax, LeakyRelu, Elu, Gelu, Selu,
                            Softplus, Softsign, Swish, HardSigmoid, Exponential };

// "relu" -> ActivationKind::Relu; None/"" and "linear" -> Linear; ValueError for unknown names.
ActivationKind parse_activation(const std::string& name);
std::string activation_name(ActivationKind kind);
// True when backward can be computed from the output y alone (no need to keep the input).
bool activation_backward_uses_output(ActivationKind kind);

// y = f(x) over `rows` rows of `cols` values (softmax normalises each row). x and y may alias.
void activation_forward(ActivationKind kind, const float* x, float* y, std::size_t rows,
                        std::size_t cols);
// dx = dy * f'(x). Needs x unless activation_backward_uses_output(kind), then y. dx may alias dy.
void activation_backward(ActivationKind kind, const float* x, const float* y, const float* dy,
                         float* dx, std::size_t rows, std::size_t cols);

}  // namespace signcore
