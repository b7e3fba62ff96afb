#include "bindings.hpp"

namespace signcore::bindings {
void bind_optimizers(py::module_& m) {}
}  // namespace signcore::bindings
