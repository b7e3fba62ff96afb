// Video frames through OpenCV, and batches of still images through image.hpp (see video.hpp).
#include "signcore/data/video.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <filesystem>
#include <mutex>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>
#include <opencv2/videoio/registry.hpp>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"
#include "signcore/serialization.hpp"  // FileNotFoundError

namespace signcore::data {

namespace {

int cv_interpolation(FrameInterpolation i) {
  switch (i) {
    case FrameInterpolation::Nearest: return cv::INTER_NEAREST;
    case FrameInterpolation::Bicubic: return cv::INTER_CUBIC;
    case FrameInterpolation::Area: return cv::INTER_AREA;
    case FrameInterpolation::Bilinear: break;
  }
  return cv::INTER_LINEAR;
}

// Network streams ("rtsp://...", "http://...") are handed to OpenCV as they are.
bool is_url(const std::string& path) { return path.find("://") != std::string::npos; }

void check_file(const std::string& path, const char* what) {
  if (is_url(path)) return;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) fail<FileNotFoundError>("No such ", what, " file: '", path, "'");
  if (std::filesystem::is_directory(path, ec))
    fail<IOError>("Expected a ", what, " file but '", path, "' is a directory");
}

cv::VideoCapture open_clip(const std::string& path) {
  check_file(path, "video");
  cv::VideoCapture cap;
  // FFmpeg reads every common container; CAP_ANY could read an image file as a one-frame "video"
  // (CAP_IMAGES), so it is only the fallback for OpenCV builds without FFmpeg.
  const int api = cv::videoio_registry::hasBackend(cv::CAP_FFMPEG) ? cv::CAP_FFMPEG : cv::CAP_ANY;
  try {
    cap.open(path, api);
  } catch (const cv::Exception& e) {
    fail<IOError>("OpenCV could not open the video '", path, "': ", e.what());
  }
  if (!cap.isOpened())
    fail<IOError>("OpenCV could not open '", path,
                  "' as a video (missing permissions, an unsupported container or codec, or not a video file)");
  return cap;
}

// Frames left to decode from the current position (reads to the end).
std::size_t count_remaining(cv::VideoCapture& cap, const std::string& path) {
  std::size_t n = 0;
  try {
    while (cap.grab()) ++n;
  } catch (const cv::Exception& e) {
    fail<IOError>("OpenCV failed while decoding frame ", n, " of '", path, "': ", e.what());
  }
  return n;
}

std::size_t reported_frame_count(cv::VideoCapture& cap) {
  const double n = cap.get(cv::CAP_PROP_FRAME_COUNT);
  return (std::isfinite(n) && n >= 1.0) ? static_cast<std::size_t>(std::llround(n)) : 0;
}

// Centre crop to the target aspect ratio (Keras's smart_resize rule), then resize. Returns `src`
// itself (no copy) when nothing changes.
cv::Mat fit_to(const cv::Mat& src, const ResizeSpec& spec) {
  if (spec.keeps_native_size()) return src;
  const std::size_t h = src.rows, w = src.cols;
  cv::Mat region = src;
  if (spec.crop_to_aspect_ratio) {
    std::size_t ch = static_cast<std::size_t>(static_cast<double>(w * spec.height) / spec.width);
    std::size_t cw = static_cast<std::size_t>(static_cast<double>(h * spec.width) / spec.height);
    ch = std::max<std::size_t>(std::min(h, ch), 1);
    cw = std::max<std::size_t>(std::min(w, cw), 1);
    const std::size_t top = (h - ch) / 2, left = (w - cw) / 2;
    region = src(cv::Rect(static_cast<int>(left), static_cast<int>(top), static_cast<int>(cw), static_cast<int>(ch)));
  }
  if (static_cast<std::size_t>(region.rows) == spec.height && static_cast<std::size_t>(region.cols) == spec.width)
    return region;
  cv::Mat out;
  cv::resize(region, out, cv::Size(static_cast<int>(spec.width), static_cast<int>(spec.height)), 0, 0,
             cv_interpolation(spec.interpolation));
  return out;
}

// value / 255 for every byte value, computed once (identical to the division itself).
const std::array<float, 256>& unit_scale() {
  static const std::array<float, 256> lut = [] {
    std::array<float, 256> t{};
    for (int v = 0; v < 256; ++v) t[v] = static_cast<float>(v) / 255.0f;
    return t;
  }();
  return lut;
}

// bgr: (H, W, 3) uint8 BGR -> out: (H, W, 3) float32 RGB in [0, 1].
void bgr_to_unit_rgb(const cv::Mat& bgr, float* out) {
  const auto& lut = unit_scale();
  const std::size_t w = bgr.cols;
  for (int r = 0; r < bgr.rows; ++r) {
    const uint8_t* s = bgr.ptr<uint8_t>(r);
    float* o = out + static_cast<std::size_t>(r) * w * 3;
    for (std::size_t p = 0; p < w; ++p) {
      o[3 * p + 0] = lut[s[3 * p + 2]];
      o[3 * p + 1] = lut[s[3 * p + 1]];
      o[3 * p + 2] = lut[s[3 * p + 0]];
    }
  }
}

// One sequential pass over a clip: keeps (resized, BGR uint8) the frames whose indices are in
// `wanted` (ascending) and counts every frame that decodes.
struct Pass {
  std::size_t decoded = 0;
  std::vector<cv::Mat> kept;
};

Pass decode_pass(cv::VideoCapture& cap, const std::string& path, const std::vector<std::size_t>& wanted,
                 const ResizeSpec& spec) {
  Pass pass;
  std::size_t next = 0;
  cv::Mat frame;
  try {
    while (cap.grab()) {  // grab() decodes; retrieve() only converts the frames we keep
      if (next < wanted.size() && wanted[next] == pass.decoded) {
        if (!cap.retrieve(frame) || frame.empty()) break;
        if (frame.type() != CV_8UC3) {
          cv::Mat bgr;
          if (frame.channels() == 1) cv::cvtColor(frame, bgr, cv::COLOR_GRAY2BGR);
          else if (frame.channels() == 4) cv::cvtColor(frame, bgr, cv::COLOR_BGRA2BGR);
          else fail<IOError>("Unsupported pixel format in video '", path, "': ", frame.channels(), " channels");
          frame = bgr;
        }
        pass.kept.push_back(fit_to(frame, spec).clone());
        ++next;
      }
      ++pass.decoded;
    }
  } catch (const cv::Exception& e) {
    fail<IOError>("OpenCV failed while decoding frame ", pass.decoded, " of '", path, "': ", e.what());
  }
  return pass;
}

// Sample one clip (the rule in video.hpp). Returns min(n, T) resized BGR frames; n in frame_count.
std::vector<cv::Mat> sample_clip(const std::string& path, std::size_t num_frames, const ResizeSpec& spec,
                                 std::size_t& frame_count) {
  cv::VideoCapture cap = open_clip(path);
  std::size_t planned = reported_frame_count(cap);
  if (planned == 0) {  // no usable estimate: count first
    planned = count_remaining(cap, path);
    cap = open_clip(path);
  }
  std::vector<std::size_t> wanted = sample_frame_indices(planned, num_frames);
  Pass pass = decode_pass(cap, path, wanted, spec);
  if (pass.decoded == 0) fail<IOError>("The video '", path, "' has no frames that OpenCV can decode");
  if (pass.decoded != planned) {  // the container's count was only an estimate
    std::vector<std::size_t> exact = sample_frame_indices(pass.decoded, num_frames);
    if (exact != wanted || pass.kept.size() != exact.size()) {
      cap = open_clip(path);
      const std::size_t first = pass.decoded;
      pass = decode_pass(cap, path, exact, spec);
      if (pass.kept.size() != exact.size())
        fail<IOError>("The video '", path, "' decoded to ", first, " frames and then to ", pass.decoded,
                      " frames on a second read; it may be damaged");
    }
  }
  frame_count = pass.decoded;
  return std::move(pass.kept);
}

ResizeSpec checked(const ResizeSpec& spec) {
  if ((spec.height == 0) != (spec.width == 0))
    fail<ValueError>("size must give both height and width (or neither). Received: size=(", spec.height, ", ",
                     spec.width, ")");
  return spec;
}

}  // namespace

FrameInterpolation frame_interpolation_from_string(const std::string& name) {
  if (name == "nearest") return FrameInterpolation::Nearest;
  if (name == "bilinear") return FrameInterpolation::Bilinear;
  if (name == "bicubic") return FrameInterpolation::Bicubic;
  if (name == "area") return FrameInterpolation::Area;
  fail<ValueError>("interpolation must be one of 'nearest', 'bilinear', 'bicubic', 'area'. Received: interpolation='",
                   name, "'");
}

VideoInfo video_info(const std::string& path) {
  cv::VideoCapture cap = open_clip(path);
  VideoInfo info;
  info.frame_count = reported_frame_count(cap);
  const double fps = cap.get(cv::CAP_PROP_FPS);
  info.fps = std::isfinite(fps) && fps > 0 ? fps : 0.0;
  info.width = static_cast<std::size_t>(std::max(0.0, cap.get(cv::CAP_PROP_FRAME_WIDTH)));
  info.height = static_cast<std::size_t>(std::max(0.0, cap.get(cv::CAP_PROP_FRAME_HEIGHT)));
  return info;
}

std::size_t count_frames(const std::string& path) {
  cv::VideoCapture cap = open_clip(path);
  return count_remaining(cap, path);
}

std::vector<std::size_t> sample_frame_indices(std::size_t n, std::size_t num_frames) {
  if (num_frames == 0) fail<ValueError>("num_frames must be a positive integer. Received: num_frames=0");
  std::vector<std::size_t> idx;
  if (n < num_frames) {
    for (std::size_t i = 0; i < n; ++i) idx.push_back(i);
    return idx;
  }
  if (num_frames == 1) return {0};
  // round_half_up(k (n-1) / (T-1)) = floor((2 k (n-1) + (T-1)) / (2 (T-1))), exact in integers.
  const std::size_t den = 2 * (num_frames - 1);
  for (std::size_t k = 0; k < num_frames; ++k) idx.push_back((2 * k * (n - 1) + (num_frames - 1)) / den);
  return idx;
}

ClipFrames load_video_frames(const std::string& path, std::size_t num_frames, const ResizeSpec& resize) {
  if (num_frames == 0) fail<ValueError>("num_frames must be a positive integer. Received: num_frames=0");
  const ResizeSpec spec = checked(resize);
  ClipFrames out;
  std::vector<cv::Mat> frames = sample_clip(path, num_frames, spec, out.frame_count);
  const std::size_t h = frames.front().rows, w = frames.front().cols;
  out.frames = Tensor::from_shape({num_frames, h, w, 3});
  std::fill(out.frames.begin(), out.frames.end(), 0.0f);
  out.mask.assign(num_frames, 0);
  for (std::size_t t = 0; t < frames.size(); ++t) {
    if (static_cast<std::size_t>(frames[t].rows) != h || static_cast<std::size_t>(frames[t].cols) != w)
      fail<ValueError>("The frames of '", path, "' change size (", h, "x", w, " then ", frames[t].rows, "x",
                       frames[t].cols, "); pass a size to resize them");
    bgr_to_unit_rgb(frames[t], out.frames.data() + t * h * w * 3);
    out.mask[t] = 1;
  }
  return out;
}

void load_video_batch(const std::vector<std::string>& paths, std::size_t num_frames, const ResizeSpec& resize,
                      float* frames, uint8_t* mask, std::size_t* frame_counts) {
  if (num_frames == 0) fail<ValueError>("num_frames must be a positive integer. Received: num_frames=0");
  const ResizeSpec spec = checked(resize);
  if (spec.keeps_native_size())
    fail<ValueError>("Loading several clips needs a frame size, e.g. size=(150, 150). Received: size=None");
  const std::size_t frame_size = spec.height * spec.width * 3;
  std::mutex error_mutex;
  std::exception_ptr error;
  std::size_t error_index = paths.size();
  parallel_for(paths.size(), 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) {
      float* clip = frames + i * num_frames * frame_size;
      uint8_t* m = mask + i * num_frames;
      std::fill(clip, clip + num_frames * frame_size, 0.0f);
      std::fill(m, m + num_frames, uint8_t{0});
      frame_counts[i] = 0;
      try {
        std::vector<cv::Mat> kept = sample_clip(paths[i], num_frames, spec, frame_counts[i]);
        for (std::size_t t = 0; t < kept.size(); ++t) {
          bgr_to_unit_rgb(kept[t], clip + t * frame_size);
          m[t] = 1;
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {  // report the first failing clip in list order
          error_index = i;
          error = std::current_exception();
        }
      }
    }
  });
  if (error) std::rethrow_exception(error);
}

std::vector<uint8_t> load_images_u8(const std::vector<std::string>& paths, ColorMode mode, std::size_t target_h,
                                    std::size_t target_w, Interpolation interpolation, bool keep_aspect_ratio,
                                    std::size_t& out_h, std::size_t& out_w) {
  if ((target_h == 0) != (target_w == 0))
    fail<ValueError>("image_size must give both height and width (or neither). Received: (", target_h, ", ",
                     target_w, ")");
  const std::size_t channels = channels_of(mode);
  auto decode = [&](const std::string& path) {
    check_file(path, "image");
    return load_img(path, mode, target_h, target_w, interpolation, keep_aspect_ratio);
  };
  out_h = target_h;
  out_w = target_w;
  std::vector<uint8_t> out;
  if (paths.empty()) return out;
  disable_opencv_threads();  // the workers below are the parallelism
  const Image8 first = decode(paths[0]);  // fixes the size when native sizes are kept
  out_h = first.height;
  out_w = first.width;
  const std::size_t image_size = out_h * out_w * channels;
  out.resize(paths.size() * image_size);
  auto store = [&](const Image8& img, std::size_t i) {
    if (img.height != out_h || img.width != out_w)
      fail<ValueError>("Images differ in size: '", paths[0], "' is ", out_h, "x", out_w, " but '", paths[i], "' is ",
                       img.height, "x", img.width, " (height x width); pass image_size to resize them");
    std::copy(img.data.begin(), img.data.end(), out.begin() + static_cast<std::ptrdiff_t>(i * image_size));
  };
  store(first, 0);

  std::mutex error_mutex;
  std::exception_ptr error;
  std::size_t error_index = paths.size();
  parallel_for(paths.size() - 1, 16, [&](std::size_t begin, std::size_t end) {
    for (std::size_t j = begin; j < end; ++j) {
      const std::size_t i = j + 1;
      try {
        store(decode(paths[i]), i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < error_index) {  // report the first failing file in list order
          error_index = i;
          error = std::current_exception();
        }
        return;  // the rest of this chunk is not needed
      }
    }
  });
  if (error) std::rethrow_exception(error);
  return out;
}

}  // namespace signcore::data
