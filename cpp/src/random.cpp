#include "signcore/random.hpp"

#include <sstream>

#include "signcore/errors.hpp"

namespace signcore {

Rng& global_rng() {
  static Rng rng(std::random_device{}());
  return rng;
}

void set_random_seed(std::uint64_t seed) { global_rng().seed(seed); }

std::string get_rng_state() {
  std::ostringstream os;
  os << global_rng();
  return os.str();
}

void set_rng_state(const std::string& state) {
  std::istringstream is(state);
  Rng rng;
  is >> rng;
  if (is.fail()) fail<ValueError>("not a random engine state (", state.size(), " characters). Received: '", state.substr(0, 40), "...'");
  global_rng() = rng;
}

}  // namespace signcore
