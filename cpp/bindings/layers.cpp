#include "bindings.hpp"

namespace signcore::bindings {
void bind_layers(py::module_& m) {}
}  // namespace signcore::bindings
