// One global random engine for initialisers, shuffling and dropout. `set_random_seed` makes a run
// reproducible: the same seed and data give bit-identical weights after fit.
#pragma once

#include <cstdint>
#include <random>

namespace signcore {

using Rng = std::mt19937_64;

Rng& global_rng();
void set_random_seed(std::uint64_t seed);

}  // namespace signcore
