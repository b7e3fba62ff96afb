// Video clips as frame sequences for sequence models (ConvLSTM2D, CNN features + RNN), decoded with
// OpenCV's VideoCapture, and a parallel batch image reader for the dataset loaders (uint8 arrays, as
// keras.datasets returns them; each image goes through image.hpp's load_img, Keras's load_img).
//
// Frame sampling rule (documented once, used everywhere):
//   A clip with n decodable frames gives num_frames = T frames.
//   n >= T: frame indices i_k = round_half_up(k * (n - 1) / (T - 1)), k = 0..T-1 (i.e.
//           np.floor(np.linspace(0, n - 1, T) + 0.5) computed in exact integer arithmetic), so the
//           first and last frames are always included and the T indices are distinct. T == 1 takes
//           frame 0. The mask is all true.
//   n <  T: every frame 0..n-1 in order, then T - n zero frames; the mask is false for the padding.
// n is the number of frames that actually decode, not the container's estimate: when the two
// disagree the clip is decoded a second time with the true count (clips are read sequentially,
// never by seeking, which is unreliable for H.264).
//
// Pixels: BGR from OpenCV -> RGB, channels-last, float32 in [0, 1] (value / 255). Sizes are
// (height, width), as Keras's image_size. Frames are resized with cv::resize on the 8-bit frame
// before scaling (as cv2.resize in Keras's video recipes; bilinear = INTER_LINEAR, half-pixel
// centres, no antialiasing).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "signcore/data/image.hpp"
#include "signcore/tensor.hpp"

namespace signcore::data {

// How frames are resized: cv::resize's INTER_* under Keras's names.
enum class FrameInterpolation { Nearest, Bilinear, Bicubic, Area };
// "nearest", "bilinear", "bicubic", "area"; anything else is a ValueError naming it.
FrameInterpolation frame_interpolation_from_string(const std::string& name);

// Target geometry for frames. height == width == 0 keeps the native size. crop_to_aspect_ratio:
// first crop the largest centred region with the target's aspect ratio (Keras's smart_resize rule),
// so nothing is stretched.
struct ResizeSpec {
  std::size_t height = 0;
  std::size_t width = 0;
  FrameInterpolation interpolation = FrameInterpolation::Bilinear;
  bool crop_to_aspect_ratio = false;
  bool keeps_native_size() const { return height == 0 && width == 0; }
};

// What the container says about a clip (frame_count may be an estimate; 0 when unknown).
struct VideoInfo {
  std::size_t frame_count = 0;
  double fps = 0.0;
  std::size_t width = 0;
  std::size_t height = 0;
};

// Container metadata. Throws FileNotFoundError / IOError naming the path.
VideoInfo video_info(const std::string& path);

// Frames that actually decode (reads the whole clip).
std::size_t count_frames(const std::string& path);

// The T frame indices for a clip of n frames (rule above); for n < T the n indices 0..n-1.
std::vector<std::size_t> sample_frame_indices(std::size_t n, std::size_t num_frames);

// One clip, sampled and resized.
struct ClipFrames {
  Tensor frames;              // (T, H, W, 3) float32 in [0, 1], RGB; zero frames where mask is 0
  std::vector<uint8_t> mask;  // (T,) 1 for a real frame, 0 for padding
  std::size_t frame_count = 0;  // frames the clip really has
};

// Read `path` and return num_frames frames (rule above) resized by `resize`.
ClipFrames load_video_frames(const std::string& path, std::size_t num_frames, const ResizeSpec& resize);

// Many clips into caller memory, clips decoded in parallel (one VideoCapture per clip).
// frames: (N, T, H, W, 3) float32, mask: (N, T) uint8, frame_counts: (N,). `resize` must give a
// size (height, width > 0). The first failure is rethrown after all workers stop, naming its clip.
void load_video_batch(const std::vector<std::string>& paths, std::size_t num_frames, const ResizeSpec& resize,
                      float* frames, uint8_t* mask, std::size_t* frame_counts);

// Still images for dataset loaders: load_img (image.hpp: Keras's load_img, Pillow's conversions and
// resampling) on every path, in parallel, into (N, H, W, C) uint8 with C = channels_of(mode).
// target_h == target_w == 0 keeps the native size, which must then be the size of the first image.
// out_h, out_w receive the size. The first failure in path order is rethrown, naming its file.
std::vector<uint8_t> load_images_u8(const std::vector<std::string>& paths, ColorMode mode, std::size_t target_h,
                                    std::size_t target_w, Interpolation interpolation, bool keep_aspect_ratio,
                                    std::size_t& out_h, std::size_t& out_w);

}  // namespace signcore::data
