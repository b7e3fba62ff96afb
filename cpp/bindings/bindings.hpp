// Shared helpers for the binding files: NumPy <-> ArrayView/Tensor conversion and the GIL rules.
// Bindings stay thin: convert, release the GIL around C++ compute, take it back only to call Python.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <nlohmann/json.hpp>

#include "signcore/callbacks.hpp"
#include "signcore/tensor.hpp"

namespace py = pybind11;

namespace signcore::bindings {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A view of a C-contiguous float32 array (no copy). The array must outlive the view.
ArrayView view_of(const FloatArray& a);
// Move a tensor into a NumPy array that owns its buffer (no copy).
py::array to_numpy(Tensor&& t);
// Copy a NumPy array into a tensor.
Tensor to_tensor(const FloatArray& a);

// JSON <-> Python objects (dicts, lists, numbers, strings, None).
py::object json_to_py(const nlohmann::json& j);
nlohmann::json py_to_json(const py::handle& o);

// The area binders, one per file; module.cpp calls them in order.
void bind_utils(py::module_& m);        // utils.cpp: threads, seeds, config, exceptions
void bind_layers(py::module_& m);       // layers.cpp
void bind_layers_pooling(py::module_& m);  // layers_pooling.cpp: 2-D/3-D pooling, BatchNormalization, SpatialDropout2D
void bind_layers_conv(py::module_& m);  // layers_conv.cpp: Conv2D, ZeroPadding2D
void bind_layers_recurrent(py::module_& m);  // layers_recurrent.cpp: SimpleRNN, LSTM, GRU, Masking, Bidirectional
void bind_layers_conv_lstm(py::module_& m);  // layers_conv_lstm.cpp: ConvLSTM2D
void bind_layers_volumetric(py::module_& m);  // layers_volumetric.cpp: TimeDistributed, Conv3D
void bind_data(py::module_& m);         // data.cpp: image transforms, image iterators, image loading
void bind_losses_metrics(py::module_& m);  // losses_metrics.cpp
void bind_optimizers(py::module_& m);   // optimizers.cpp
void bind_callbacks(py::module_& m);    // callbacks.cpp
void bind_model(py::module_& m);        // model.cpp
void bind_saving(py::module_& m);       // saving.cpp
void bind_video(py::module_& m);        // video.cpp: video frames, dataset image decoding

// callbacks.cpp: cache which hooks Python callbacks override (call with the GIL held).
void prepare_callbacks(const std::vector<std::shared_ptr<Callback>>& callbacks);

}  // namespace signcore::bindings
