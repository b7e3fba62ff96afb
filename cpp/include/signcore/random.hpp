// One global random engine for initialisers, shuffling and dropout. `set_random_seed` makes a run
// reproducible: the same seed and data give bit-identical weights after fit.
#pragma once

#include <cstdint>
#include <random>
#include <string>

namespace signcore {

using Rng = std::mt19937_64;

Rng& global_rng();
void set_random_seed(std::uint64_t seed);

// The global engine's full state as text (the standard stream format of std::mt19937_64), and back.
// BackupAndRestore saves it so that a resumed fit draws the same shuffles and dropout masks.
// set_rng_state throws ValueError for text that is not such a state (the engine is left unchanged).
std::string get_rng_state();
void set_rng_state(const std::string& state);

}  // namespace signcore
