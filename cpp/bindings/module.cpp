// The extension module signcore._core. Each area binds itself in its own file.
#include "bindings.hpp"

PYBIND11_MODULE(_core, m) {
  m.doc() = "signcore's C++ core";
  using namespace signcore::bindings;
  bind_utils(m);
  bind_layers(m);
  bind_layers_pooling(m);
  bind_layers_conv(m);
  bind_layers_recurrent(m);
  bind_layers_conv_lstm(m);
  bind_layers_volumetric(m);
  bind_losses_metrics(m);
  bind_optimizers(m);
  bind_callbacks(m);
  bind_model(m);
  bind_data(m);
  bind_video(m);
  bind_saving(m);
}
