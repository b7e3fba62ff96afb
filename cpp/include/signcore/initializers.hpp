// Keras initialisers by name: glorot_uniform/normal, he_uniform/normal, lecun_uniform/normal,
// orthogonal, zeros, ones, random_normal/uniform. Fans follow Keras: for rank > 2,
// fan_in = prod(shape[:-2]) * shape[-2], fan_out = prod(shape[:-2]) * shape[-1].
#pragma once

#include <functional>
#include <string>

#include "signcore/random.hpp"
#include "signcore/tensor.hpp"

namespace signcore {

// Throws ValueError naming `name` if it is not a known initialiser.
void check_initializer(const std::string& name);

// Fill `out` (shape.size() elements) with values drawn by the named initialiser.
void initialize(const std::string& name, const Shape& shape, float* out, Rng& rng);

// Custom initialisers, for weights with structure (LSTM's bias with unit_forget_bias: ones on the
// forget block). A layer registers one under a unique name before declaring the weight; the name
// then works wherever an initialiser name does (check_initializer, initialize, so
// Parameters::allocate). Registering a name again replaces its function. Thread-safe.
using InitializerFn = std::function<void(const Shape& shape, float* out, Rng& rng)>;
void register_initializer(const std::string& name, InitializerFn fn);

}  // namespace signcore
