#include "bindings.hpp"

namespace signcore::bindings {
void bind_saving(py::module_& m) {}
}  // namespace signcore::bindings
