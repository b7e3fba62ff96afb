#include "bindings.hpp"

namespace signcore::bindings {
void bind_callbacks(py::module_& m) {}
}  // namespace signcore::bindings
