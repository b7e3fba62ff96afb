// Python bindings of the video / volume layers: TimeDistributed (and Conv3D). The 3-D poolings are
// bound next to the 2-D ones in layers_pooling.cpp (one shared binder). Constructors take Keras 3's
// Python signatures (argument handling shared through layer_args.hpp).
#include <memory>
#include <string>

#include "bindings.hpp"
#include "layer_args.hpp"
#include "signcore/errors.hpp"
#include "signcore/layers/time_distributed.hpp"

namespace signcore::bindings {

void bind_layers_volumetric(py::module_& m) {
  // ----- TimeDistributed ------------------------------------------------------------------------------
  py::class_<TimeDistributed, Layer, std::shared_ptr<TimeDistributed>>(m, "TimeDistributed", R"doc(
This wrapper applies a layer to every temporal slice of an input, with the same weights at every
step.

Every input should be at least 3D, and the dimension of index one of the first input is considered
to be the temporal dimension. For example, 32 videos of 10 frames of 128x128 RGB images are a
(32, 10, 128, 128, 3) input; `TimeDistributed(Conv2D(64, (3, 3)))` applies the same convolution to
each of the 10 frames, giving (32, 10, 126, 126, 64).

Args:
    layer: A `Layer` instance (Dense, Conv2D, MaxPooling2D, Flatten, Dropout, BatchNormalization,
        ...). The layer itself is used (not a copy); its weights are listed under the wrapper, named
        "time_distributed/<layer name>/<weight>".

Time steps are folded into the batch: the wrapped layer runs once on batch * timesteps samples.
Dropout therefore draws a different mask for every sample and step; BatchNormalization in training
uses statistics over the batch and the steps together (Keras 3 uses per-step statistics).
An incoming sequence mask (batch, timesteps) is passed on unchanged to the next layer; the wrapped
layer itself runs unmasked.

Input shape: (batch, timesteps, ...). Output shape: (batch, timesteps, ...) where the trailing axes
are the wrapped layer's output for one step.
)doc")
      .def(py::init([](const py::object& layer, const py::object& name, const py::object& trainable,
                       const py::object& input_shape, const py::object& dtype, py::kwargs kwargs) {
             const char* cls = "TimeDistributed";
             BaseArgs b = base_args(cls, name, trainable, input_shape, dtype, kwargs);
             if (!py::isinstance<Layer>(layer))
               fail<TypeError>("Please initialize `TimeDistributed` layer with a `signcore.layers.Layer` "
                               "instance. Received: layer=", repr_of(layer));
             return finish(std::make_shared<TimeDistributed>(layer.cast<LayerPtr>(), b.name), b);
           }),
           py::arg("layer"), py::kw_only(), py::arg("name") = py::none(), py::arg("trainable") = true,
           py::arg("input_shape") = py::none(), py::arg("dtype") = py::none())
      .def_property_readonly("layer", &TimeDistributed::layer)
      .def_property_readonly("supports_masking", [](const TimeDistributed&) { return true; })
      .def_static("from_config",
                  [](const py::dict& c) { return layer_from_config("TimeDistributed", py_to_json(c)); });
}

}  // namespace signcore::bindings
