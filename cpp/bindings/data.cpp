// signcore._core image pipeline: ImageDataGenerator's per-image transforms, the image iterators
// (BatchSources that fit/evaluate/predict consume directly), and image loading.
// The Python wrappers (python/signcore/preprocessing/image.py) normalise the Keras arguments; the
// configuration arrives here as a dict of plain values.
#include "bindings.hpp"
#include "signcore/data/augment.hpp"
#include "signcore/data/image.hpp"
#include "signcore/data/image_iterator.hpp"
#include "signcore/errors.hpp"

namespace signcore::bindings {
namespace {

namespace sd = signcore::data;

template <class T>
T get(const py::dict& d, const char* key, T fallback) {
  if (!d.contains(key) || d[key].is_none()) return fallback;
  return d[key].cast<T>();
}

std::vector<float> floats_of(const py::dict& d, const char* key) {
  if (!d.contains(key) || d[key].is_none()) return {};
  const FloatArray a = FloatArray::ensure(d[key]);
  if (!a) fail<TypeError>("'", key, "' must be an array of numbers");
  return std::vector<float>(a.data(), a.data() + a.size());
}

sd::ShiftRange shift_of(const py::dict& d, const char* key) {
  sd::ShiftRange r;
  if (!d.contains(key) || d[key].is_none()) return r;
  const py::dict s = d[key].cast<py::dict>();
  r.enabled = true;
  r.fraction = get<bool>(s, "fraction", false);
  if (s.contains("choices") && !s["choices"].is_none()) {
    r.from_choices = true;
    r.choices = s["choices"].cast<std::vector<double>>();
    if (r.choices.empty()) fail<ValueError>(key, " has no values to choose from");
  } else {
    r.range = get<double>(s, "range", 0.0);
  }
  return r;
}

// The generator configuration, as ImageDataGenerator._core_config() builds it.
sd::AugmentConfig config_of(const py::dict& d) {
  sd::AugmentConfig c;
  c.rotation_range = get<double>(d, "rotation_range", 0.0);
  c.width_shift = shift_of(d, "width_shift");
  c.height_shift = shift_of(d, "height_shift");
  c.shear_range = get<double>(d, "shear_range", 0.0);
  c.zoom_low = get<double>(d, "zoom_low", 1.0);
  c.zoom_high = get<double>(d, "zoom_high", 1.0);
  c.channel_shift_range = get<double>(d, "channel_shift_range", 0.0);
  c.horizontal_flip = get<bool>(d, "horizontal_flip", false);
  c.vertical_flip = get<bool>(d, "vertical_flip", false);
  if (d.contains("brightness_range") && !d["brightness_range"].is_none()) {
    const auto b = d["brightness_range"].cast<std::vector<double>>();
    if (b.size() != 2) fail<ValueError>("brightness_range must hold two numbers");
    c.has_brightness = true;
    c.brightness_low = b[0];
    c.brightness_high = b[1];
  }
  c.fill_mode = sd::fill_mode_from_string(get<std::string>(d, "fill_mode", "nearest"));
  c.cval = get<double>(d, "cval", 0.0);
  c.interpolation_order = get<int>(d, "interpolation_order", 1);
  c.rescale = get<double>(d, "rescale", 0.0);
  c.samplewise_center = get<bool>(d, "samplewise_center", false);
  c.samplewise_std_normalization = get<bool>(d, "samplewise_std_normalization", false);
  c.featurewise_center = get<bool>(d, "featurewise_center", false);
  c.featurewise_std_normalization = get<bool>(d, "featurewise_std_normalization", false);
  c.mean = floats_of(d, "mean");
  c.std = floats_of(d, "std");
  c.validate();
  return c;
}

py::dict params_to_py(const sd::TransformParams& p) {
  py::dict d;
  d["theta"] = p.theta;
  d["tx"] = p.tx;
  d["ty"] = p.ty;
  d["shear"] = p.shear;
  d["zx"] = p.zx;
  d["zy"] = p.zy;
  d["flip_horizontal"] = static_cast<int>(p.flip_horizontal);
  d["flip_vertical"] = static_cast<int>(p.flip_vertical);
  d["channel_shift_intensity"] = p.has_channel_shift ? py::object(py::float_(p.channel_shift_intensity)) : py::none();
  d["brightness"] = p.has_brightness ? py::object(py::float_(p.brightness)) : py::none();
  return d;
}

// Keras's apply_transform reads the dict with .get(key, default).
sd::TransformParams params_from_py(const py::dict& d) {
  sd::TransformParams p;
  p.theta = get<double>(d, "theta", 0.0);
  p.tx = get<double>(d, "tx", 0.0);
  p.ty = get<double>(d, "ty", 0.0);
  p.shear = get<double>(d, "shear", 0.0);
  p.zx = get<double>(d, "zx", 1.0);
  p.zy = get<double>(d, "zy", 1.0);
  p.flip_horizontal = d.contains("flip_horizontal") && py::bool_(d["flip_horizontal"]);
  p.flip_vertical = d.contains("flip_vertical") && py::bool_(d["flip_vertical"]);
  if (d.contains("channel_shift_intensity") && !d["channel_shift_intensity"].is_none()) {
    p.has_channel_shift = true;
    p.channel_shift_intensity = d["channel_shift_intensity"].cast<double>();
  }
  if (d.contains("brightness") && !d["brightness"].is_none()) {
    p.has_brightness = true;
    p.brightness = d["brightness"].cast<double>();
  }
  return p;
}

sd::IteratorOptions options_of(std::size_t batch_size, bool shuffle, std::optional<long long> seed,
                               std::uint32_t fallback_seed, int workers, std::size_t max_queue_size) {
  sd::IteratorOptions o;
  o.batch_size = batch_size;
  o.shuffle = shuffle;
  if (seed) {
    if (*seed < 0 || *seed > 0xffffffffLL)
      fail<ValueError>("seed must be between 0 and 2**32 - 1. Received: seed=", *seed);
    o.seed = static_cast<std::uint32_t>(*seed);
  }
  o.fallback_seed = fallback_seed;
  o.workers = workers;
  o.max_queue_size = max_queue_size;
  return o;
}

// A Python preprocessing_function called from get_batch's thread (the GIL is taken for the call).
std::function<void(float*, const Shape&)> python_preprocess(py::object fn) {
  // The function object is released with the GIL held, wherever the iterator dies.
  std::shared_ptr<py::object> holder(new py::object(std::move(fn)), [](py::object* p) {
    py::gil_scoped_acquire gil;
    delete p;
  });
  return [holder](float* img, const Shape& s) {
    py::gil_scoped_acquire gil;
    const std::size_t n = shape_size(s);
    py::array_t<float> a(std::vector<py::ssize_t>(s.begin(), s.end()));
    std::copy(img, img + n, a.mutable_data());
    py::object r = (*holder)(a);
    const FloatArray out = FloatArray::ensure(r);
    if (!out) fail<TypeError>("preprocessing_function must return an array. Received: ", py::repr(r).cast<std::string>());
    const Shape got(out.shape(), out.shape() + out.ndim());
    if (got != s)
      fail<ValueError>("preprocessing_function must return an array of the image's shape ", shape_str(s, false),
                       ". Received: shape ", shape_str(got, false));
    std::copy(out.data(), out.data() + n, img);
  };
}

py::tuple serve(sd::ImageIterator& self, std::size_t index) {
  std::vector<Tensor> xs;
  Tensor y;
  {
    py::gil_scoped_release nogil;
    self.get_batch(index, xs, self.has_targets() ? &y : nullptr);
  }
  py::object ys = self.has_targets() ? py::object(to_numpy(std::move(y))) : py::none();
  const auto& idx = self.last_indices();
  py::array_t<long long> ids(static_cast<py::ssize_t>(idx.size()));
  for (std::size_t i = 0; i < idx.size(); ++i) ids.mutable_data()[i] = static_cast<long long>(idx[i]);
  return py::make_tuple(to_numpy(std::move(xs[0])), ys, ids);
}

}  // namespace

void bind_data(py::module_& m) {
  m.def("image_get_random_transform",
        [](const py::dict& config, std::size_t h, std::size_t w, py::array_t<std::uint32_t, py::array::c_style | py::array::forcecast> key,
           int pos) {
          const sd::AugmentConfig c = config_of(config);
          if (key.size() != sd::NumpyRandomState::kStateSize)
            fail<ValueError>("a MT19937 state has 624 keys. Received: ", key.size());
          sd::NumpyRandomState rng;
          std::copy(key.data(), key.data() + key.size(), rng.key.begin());
          rng.pos = pos;
          const sd::TransformParams p = sd::draw_transform(c, rng, h, w);
          py::array_t<std::uint32_t> out(sd::NumpyRandomState::kStateSize);
          std::copy(rng.key.begin(), rng.key.end(), out.mutable_data());
          return py::make_tuple(params_to_py(p), out, rng.pos);
        },
        py::arg("config"), py::arg("height"), py::arg("width"), py::arg("key"), py::arg("pos"),
        "Keras's get_random_transform drawn from a NumPy MT19937 state (key, pos); returns (params, key, pos).");
  m.def("image_apply_transform",
        [](const py::dict& config, const FloatArray& x, const py::dict& params) {
          if (x.ndim() != 3) fail<ValueError>("apply_transform needs one image of rank 3 (height, width, channels)");
          const sd::AugmentConfig c = config_of(config);
          const sd::TransformParams p = params_from_py(params);
          Tensor t = to_tensor(x);
          {
            py::gil_scoped_release nogil;
            std::vector<float> scratch;
            sd::apply_transform(c, p, t.data(), t.shape()[0], t.shape()[1], t.shape()[2], scratch);
          }
          return to_numpy(std::move(t));
        },
        py::arg("config"), py::arg("x"), py::arg("params"));
  m.def("image_standardize",
        [](const py::dict& config, py::array_t<float, py::array::c_style> x) {
          const sd::AugmentConfig c = config_of(config);
          if (x.ndim() < 1) fail<ValueError>("standardize needs an array with a channel axis");
          const std::size_t ch = static_cast<std::size_t>(x.shape(x.ndim() - 1));
          float* p = x.mutable_data();
          const std::size_t n = static_cast<std::size_t>(x.size());
          py::gil_scoped_release nogil;
          sd::standardize(c, p, n, ch);
        },
        py::arg("config"), py::arg("x"), "Keras's standardize (without preprocessing_function), in place.");
  m.def("image_load",
        [](const std::string& path, const std::string& color_mode, std::size_t h, std::size_t w,
           const std::string& interpolation, bool keep_aspect_ratio) {
          const auto mode = sd::color_mode_from_string(color_mode);
          const auto interp = sd::interpolation_from_string(interpolation);
          sd::Image8 img;
          {
            py::gil_scoped_release nogil;
            img = sd::load_img(path, mode, h, w, interp, keep_aspect_ratio);
          }
          py::array_t<std::uint8_t> out({static_cast<py::ssize_t>(img.height), static_cast<py::ssize_t>(img.width),
                                         static_cast<py::ssize_t>(img.channels)});
          std::copy(img.data.begin(), img.data.end(), out.mutable_data());
          return out;
        },
        py::arg("path"), py::arg("color_mode") = "rgb", py::arg("height") = 0, py::arg("width") = 0,
        py::arg("interpolation") = "nearest", py::arg("keep_aspect_ratio") = false,
        "Keras's load_img as a uint8 (H, W, C) array (Pillow-exact conversion and resizing).");
  m.def("image_load_batch",
        [](const std::vector<std::string>& paths, const std::string& color_mode, std::size_t h, std::size_t w,
           const std::string& interpolation, bool crop_to_aspect_ratio, int workers) {
          const auto mode = sd::color_mode_from_string(color_mode);
          if (h == 0 || w == 0) fail<ValueError>("image_size must hold two positive integers. Received: (", h, ", ", w, ")");
          Tensor out = Tensor::from_shape({paths.size(), h, w, sd::channels_of(mode)});
          {
            py::gil_scoped_release nogil;
            sd::load_images_tf(paths, mode, h, w, interpolation, crop_to_aspect_ratio, workers, out.data());
          }
          return to_numpy(std::move(out));
        },
        py::arg("paths"), py::arg("color_mode"), py::arg("height"), py::arg("width"), py::arg("interpolation"),
        py::arg("crop_to_aspect_ratio"), py::arg("workers"),
        "Decode and resize files TF-style (image_dataset_from_directory) into float32 (N, H, W, C).");

  py::class_<sd::ImageIterator, BatchSource, std::shared_ptr<sd::ImageIterator>>(
      m, "ImageIterator", "Base of the C++ image iterators: batches are prepared on worker threads.")
      .def("_batch", &serve, py::arg("index"),
           "Batch `index` of the current pass as (x, y or None, sample indices); the GIL is released.")
      .def("on_epoch_end", &sd::ImageIterator::on_epoch_end)
      .def_property_readonly("samples", &sd::ImageIterator::samples)
      .def_property_readonly("batch_size", &sd::ImageIterator::batch_size)
      .def_property_readonly("total_batches_seen", &sd::ImageIterator::total_batches_seen)
      .def_property_readonly("image_shape", [](const sd::ImageIterator& s) { return py::tuple(py::cast(s.image_shape())); })
      .def_property_readonly("workers", &sd::ImageIterator::workers)
      .def_property_readonly("_wait_seconds", &sd::ImageIterator::wait_seconds,
                             "Seconds the consumer spent inside get_batch (waiting for data).")
      .def("_stop_workers", &sd::ImageIterator::stop_workers, py::call_guard<py::gil_scoped_release>())
      .def("_set_preprocessing_function", [](sd::ImageIterator& self, py::object fn) {
        if (fn.is_none()) self.set_preprocess(nullptr);
        else self.set_preprocess(python_preprocess(std::move(fn)));
      });

  py::class_<sd::DirectoryIterator, sd::ImageIterator, std::shared_ptr<sd::DirectoryIterator>>(m, "DirectoryIterator")
      .def(py::init([](std::vector<std::string> paths, std::vector<int> classes, std::size_t num_classes,
                       const std::string& class_mode, const std::string& color_mode, std::size_t height,
                       std::size_t width, const std::string& interpolation, bool keep_aspect_ratio,
                       const py::dict& config, std::size_t batch_size, bool shuffle, std::optional<long long> seed,
                       std::uint32_t fallback_seed, int workers, std::size_t max_queue_size) {
             sd::DirectoryIterator::Files files{std::move(paths), std::move(classes), num_classes};
             sd::DirectoryIterator::Loading loading;
             loading.color_mode = sd::color_mode_from_string(color_mode);
             loading.height = height;
             loading.width = width;
             loading.interpolation = sd::interpolation_from_string(interpolation);
             loading.keep_aspect_ratio = keep_aspect_ratio;
             return std::make_shared<sd::DirectoryIterator>(
                 std::move(files), sd::class_mode_from_string(class_mode), loading, config_of(config),
                 options_of(batch_size, shuffle, seed, fallback_seed, workers, max_queue_size));
           }),
           py::arg("paths"), py::arg("classes"), py::arg("num_classes"), py::arg("class_mode"), py::arg("color_mode"),
           py::arg("height"), py::arg("width"), py::arg("interpolation"), py::arg("keep_aspect_ratio"),
           py::arg("config"), py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"), py::arg("fallback_seed"),
           py::arg("workers"), py::arg("max_queue_size"));

  py::class_<sd::NumpyArrayIterator, sd::ImageIterator, std::shared_ptr<sd::NumpyArrayIterator>>(m, "NumpyArrayIterator")
      .def(py::init([](py::array x, std::optional<FloatArray> y, const py::dict& config, std::size_t batch_size,
                       bool shuffle, std::optional<long long> seed, std::uint32_t fallback_seed, int workers,
                       std::size_t max_queue_size) {
             const bool is_u8 = x.dtype().is(py::dtype::of<std::uint8_t>());
             if (!is_u8 && !x.dtype().is(py::dtype::of<float>()))
               fail<TypeError>("flow() keeps uint8 or float32 images. Received dtype ", py::str(x.dtype()).cast<std::string>());
             if (!(x.flags() & py::array::c_style)) fail<ValueError>("flow() needs a C-contiguous array");
             sd::NumpyArrayIterator::Images images;
             images.data = x.data();
             images.is_uint8 = is_u8;
             images.shape.assign(x.shape(), x.shape() + x.ndim());
             images.keep_alive = std::shared_ptr<const void>(new py::array(x), [](const void* p) {
               py::gil_scoped_acquire gil;
               delete static_cast<const py::array*>(p);
             });
             std::optional<Tensor> targets;
             if (y) targets = to_tensor(*y);
             return std::make_shared<sd::NumpyArrayIterator>(
                 std::move(images), std::move(targets), config_of(config),
                 options_of(batch_size, shuffle, seed, fallback_seed, workers, max_queue_size));
           }),
           py::arg("x"), py::arg("y"), py::arg("config"), py::arg("batch_size"), py::arg("shuffle"), py::arg("seed"),
           py::arg("fallback_seed"), py::arg("workers"), py::arg("max_queue_size"));
}

}  // namespace signcore::bindings
