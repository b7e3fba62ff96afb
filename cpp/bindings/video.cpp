// Video frames and dataset images (data/video.hpp): conversion only; decoding runs without the GIL.
#include <cstdint>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "signcore/data/video.hpp"

namespace signcore::bindings {

using namespace signcore::data;

namespace {

ResizeSpec resize_spec(std::size_t height, std::size_t width, const std::string& interpolation, bool crop) {
  ResizeSpec spec;
  spec.height = height;
  spec.width = width;
  spec.interpolation = frame_interpolation_from_string(interpolation);
  spec.crop_to_aspect_ratio = crop;
  return spec;
}

// A byte vector handed to NumPy without a copy.
py::array bytes_to_numpy(std::vector<uint8_t>&& bytes, const std::vector<py::ssize_t>& shape) {
  auto* owner = new std::vector<uint8_t>(std::move(bytes));
  py::capsule free_when_done(owner, [](void* p) { delete static_cast<std::vector<uint8_t>*>(p); });
  return py::array_t<uint8_t>(shape, owner->data(), free_when_done);
}

}  // namespace

void bind_video(py::module_& m) {
  m.def(
      "video_info",
      [](const std::string& path) {
        VideoInfo info;
        {
          py::gil_scoped_release release;
          info = video_info(path);
        }
        py::dict d;
        d["frame_count"] = info.frame_count;
        d["fps"] = info.fps;
        d["width"] = info.width;
        d["height"] = info.height;
        return d;
      },
      py::arg("path"), "Container metadata of a clip: frame_count (an estimate, 0 if unknown), fps, width, height.");
  m.def(
      "count_video_frames",
      [](const std::string& path) {
        py::gil_scoped_release release;
        return count_frames(path);
      },
      py::arg("path"), "Number of frames that decode (reads the whole clip).");
  m.def("sample_frame_indices", &sample_frame_indices, py::arg("frame_count"), py::arg("num_frames"),
        "Indices of the frames sampled from a clip of frame_count frames (see signcore.video).");
  m.def(
      "load_video_frames",
      [](const std::string& path, std::size_t num_frames, std::size_t height, std::size_t width,
         const std::string& interpolation, bool crop) {
        const ResizeSpec spec = resize_spec(height, width, interpolation, crop);
        ClipFrames clip;
        {
          py::gil_scoped_release release;
          clip = load_video_frames(path, num_frames, spec);
        }
        py::array_t<bool> mask(static_cast<py::ssize_t>(clip.mask.size()));
        std::copy(clip.mask.begin(), clip.mask.end(), mask.mutable_data());
        return py::make_tuple(to_numpy(std::move(clip.frames)), mask, clip.frame_count);
      },
      py::arg("path"), py::arg("num_frames"), py::arg("height"), py::arg("width"), py::arg("interpolation"),
      py::arg("crop_to_aspect_ratio"), "(frames (T, H, W, 3) float32, mask (T,) bool, frame_count).");
  m.def(
      "load_video_batch",
      [](const std::vector<std::string>& paths, std::size_t num_frames, std::size_t height, std::size_t width,
         const std::string& interpolation, bool crop) {
        const ResizeSpec spec = resize_spec(height, width, interpolation, crop);
        const auto n = static_cast<py::ssize_t>(paths.size());
        const auto t = static_cast<py::ssize_t>(num_frames);
        py::array_t<float> frames({n, t, static_cast<py::ssize_t>(height), static_cast<py::ssize_t>(width),
                                   py::ssize_t{3}});
        py::array_t<bool> mask({n, t});
        std::vector<std::size_t> counts(paths.size());
        float* f = frames.mutable_data();
        auto* mk = reinterpret_cast<uint8_t*>(mask.mutable_data());  // bool is one byte holding 0 or 1
        {
          py::gil_scoped_release release;
          load_video_batch(paths, num_frames, spec, f, mk, counts.data());
        }
        py::array_t<int64_t> frame_counts(n);
        std::copy(counts.begin(), counts.end(), frame_counts.mutable_data());
        return py::make_tuple(frames, mask, frame_counts);
      },
      py::arg("paths"), py::arg("num_frames"), py::arg("height"), py::arg("width"), py::arg("interpolation"),
      py::arg("crop_to_aspect_ratio"),
      "(frames (N, T, H, W, 3) float32, masks (N, T) bool, frame_counts (N,) int64); clips decoded in parallel.");
  m.def(
      "load_images_u8",
      [](const std::vector<std::string>& paths, const std::string& color_mode, std::size_t height, std::size_t width,
         const std::string& interpolation, bool keep_aspect_ratio) {
        const ColorMode mode = color_mode_from_string(color_mode);
        const Interpolation interp = interpolation_from_string(interpolation);
        std::size_t h = 0, w = 0;
        std::vector<uint8_t> pixels;
        {
          py::gil_scoped_release release;
          pixels = load_images_u8(paths, mode, height, width, interp, keep_aspect_ratio, h, w);
        }
        return bytes_to_numpy(std::move(pixels), {static_cast<py::ssize_t>(paths.size()), static_cast<py::ssize_t>(h),
                                                  static_cast<py::ssize_t>(w),
                                                  static_cast<py::ssize_t>(channels_of(mode))});
      },
      py::arg("paths"), py::arg("color_mode"), py::arg("height"), py::arg("width"), py::arg("interpolation"),
      py::arg("keep_aspect_ratio"),
      "Keras's load_img on every path, in parallel, into (N, H, W, C) uint8; height = width = 0 keeps the "
      "native size.");
}

}  // namespace signcore::bindings
