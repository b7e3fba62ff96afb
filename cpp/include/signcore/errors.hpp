// Exceptions the core throws. The bindings translate them to the Python exception of the same name,
// so every message must say what was received ("Received: units=-3").
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace signcore {

struct ValueError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct TypeError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// File missing, unreadable, truncated or not ours. Python sees OSError (or ValueError for a corrupt file).
struct IOError : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Used in the wrong state (e.g. fit before compile). Python sees RuntimeError.
struct StateError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Build a message from streamable parts: fail<ValueError>("units must be positive. Received: units=", u);
template <class E, class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw E(os.str());
}

}  // namespace signcore
