#include "bindings.hpp"

namespace signcore::bindings {
void bind_model(py::module_& m) {}
}  // namespace signcore::bindings
