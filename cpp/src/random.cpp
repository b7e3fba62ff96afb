#include "signcore/random.hpp"

namespace signcore {

Rng& global_rng() {
  static Rng rng(std::random_device{}());
  return rng;
}

void set_random_seed(std::uint64_t seed) { global_rng().seed(seed); }

}  // namespace signcore
