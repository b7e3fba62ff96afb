#include "bindings.hpp"

namespace signcore::bindings {
void bind_losses_metrics(py::module_& m) {}
}  // namespace signcore::bindings
