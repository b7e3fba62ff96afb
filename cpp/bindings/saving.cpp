// Model files and pickling: thin wrappers over serialization.hpp; the GIL is released around the
// encoding, decoding and file IO.
#include <string>

#include "bindings.hpp"
#include "signcore/serialization.hpp"

namespace signcore::bindings {

namespace {

using json = nlohmann::json;

// str or os.PathLike -> a path string.
std::string path_of(const py::object& p) {
  py::object fs = py::module_::import("os").attr("fspath")(p);
  if (!py::isinstance<py::str>(fs))
    throw py::type_error("A file path must be a str or os.PathLike of str. Received: " +
                         py::repr(p).cast<std::string>());
  return fs.cast<std::string>();
}

json metadata_of(const py::object& m) { return m.is_none() ? json(nullptr) : py_to_json(m); }

}  // namespace

void bind_saving(py::module_& m) {
  // FileNotFoundError is an IOError; this translator runs before the generic one (pybind11 tries
  // the most recently registered first).
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FileNotFoundError& e) {
      PyErr_SetString(PyExc_FileNotFoundError, e.what());
    }
  });

  m.attr("FORMAT_VERSION") = kFormatVersion;

  m.def(
      "save_model",
      [](const Model& model, const py::object& path, bool include_optimizer, const py::object& metadata) {
        const std::string p = path_of(path);
        const json meta = metadata_of(metadata);
        py::gil_scoped_release release;
        save_model(model, p, include_optimizer, meta);
      },
      py::arg("model"), py::arg("path"), py::arg("include_optimizer") = true, py::arg("metadata") = py::none(),
      "Write the model (architecture, weights, compile settings and optimizer state) to one file.");
  m.def(
      "load_model",
      [](const py::object& path) {
        const std::string p = path_of(path);
        py::gil_scoped_release release;
        return load_model(p);
      },
      py::arg("path"), "Rebuild a model written by save_model.");
  m.def(
      "save_weights",
      [](const Model& model, const py::object& path) {
        const std::string p = path_of(path);
        py::gil_scoped_release release;
        save_weights(model, p);
      },
      py::arg("model"), py::arg("path"));
  m.def(
      "load_weights",
      [](Model& model, const py::object& path) {
        const std::string p = path_of(path);
        py::gil_scoped_release release;
        load_weights(model, p);
      },
      py::arg("model"), py::arg("path"));
  m.def(
      "read_model_header",
      [](const py::object& path) {
        const std::string p = path_of(path);
        json h;
        {
          py::gil_scoped_release release;
          h = read_header(p);
        }
        return json_to_py(h);
      },
      py::arg("path"), "The validated JSON header of a signcore file, as a dict.");
  m.def(
      "model_to_bytes",
      [](const Model& model, bool include_optimizer, const py::object& metadata) {
        const json meta = metadata_of(metadata);
        std::string bytes;
        {
          py::gil_scoped_release release;
          bytes = model_to_bytes(model, include_optimizer, meta);
        }
        return py::bytes(bytes);
      },
      py::arg("model"), py::arg("include_optimizer") = true, py::arg("metadata") = py::none());
  m.def(
      "model_from_bytes",
      [](const py::bytes& data) {
        std::string bytes = data;
        py::gil_scoped_release release;
        return model_from_bytes(bytes);
      },
      py::arg("data"));
  m.def(
      "weights_to_bytes",
      [](const Model& model) {
        std::string bytes;
        {
          py::gil_scoped_release release;
          bytes = weights_to_bytes(model);
        }
        return py::bytes(bytes);
      },
      py::arg("model"));
  m.def(
      "weights_from_bytes",
      [](Model& model, const py::bytes& data) {
        std::string bytes = data;
        py::gil_scoped_release release;
        weights_from_bytes(model, bytes);
      },
      py::arg("model"), py::arg("data"));
  m.def(
      "crc32", [](const py::bytes& data, std::uint32_t crc) {
        const std::string s = data;
        return crc32(s.data(), s.size(), crc);
      },
      py::arg("data"), py::arg("crc") = 0);
}

}  // namespace signcore::bindings
