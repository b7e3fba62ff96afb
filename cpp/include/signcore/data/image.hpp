// Image files: decoding (OpenCV's imdecode), colour conversion and resizing the way Keras's
// load_img does it with Pillow, so flow_from_directory sees the pixels Keras sees.
//
//  - Decoding: the file is read whole and decoded with cv::imdecode(IMREAD_UNCHANGED), which, like
//    Pillow, ignores the EXIF orientation; OpenCV's BGR(A) order is turned into RGB(A). 16-bit
//    images are reduced to 8 bits (value / 256). A JPEG without its end-of-image marker after the
//    last scan is reported as truncated (Pillow raises for those too; libjpeg alone would pad the
//    image with grey).
//  - Colour (Pillow's convert): grey from RGB with Pillow's integer ITU-R 601-2 formula
//    L = (19595 R + 38470 G + 7471 B + 32768) >> 16; RGBA -> RGB drops alpha; grey -> RGB repeats
//    the value; added alpha is 255.
//  - Resizing (Pillow's Image.resize, bit-exact): "nearest" samples column floor((x + 0.5) * scale)
//    with Pillow's running sum; "bilinear", "bicubic", "lanczos", "box" and "hamming" are Pillow's
//    separable convolutions whose support widens with the downscale factor (antialiased), with
//    Pillow's 22-bit fixed-point weights and 8-bit rounding between the two passes, done in
//    Pillow 13's order (vertical first when the height shrinks by more than twice the width,
//    horizontal first otherwise; older Pillow always went horizontal first, which differs by one
//    level on some pixels); RGBA is premultiplied by alpha around those filters, as Pillow does.
//  - TF-style resizing for image_dataset_from_directory (tf.image.resize, no antialiasing, float
//    output): "bilinear" and "area" use cv::resize (INTER_LINEAR with half-pixel centres, INTER_AREA),
//    "nearest" samples floor((x + 0.5) * scale), "bicubic" uses INTER_CUBIC (a = -0.75, TF uses -0.5).
//
// Threading: these functions are called from the iterators' worker threads. OpenCV's own thread
// pool (TBB in Debian's OpenCV 4.6) is switched off once per process (cv::setNumThreads(0), see
// disable_opencv_threads), so an OpenCV call runs on the thread that makes it and never multiplies
// the workers' threads. It is process-wide: the video reader's OpenCV calls run sequentially too.
// (imdecode itself is single-threaded either way.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace signcore::data {

enum class ColorMode { Grayscale, RGB, RGBA };
// "grayscale", "rgb", "rgba"; ValueError otherwise.
ColorMode color_mode_from_string(const std::string& s);
std::size_t channels_of(ColorMode mode);

// Pillow's resampling filters (Keras's load_img `interpolation`).
enum class Interpolation { Nearest, Bilinear, Bicubic, Lanczos, Box, Hamming };
// "nearest", "bilinear", "bicubic", "lanczos", "box", "hamming"; ValueError otherwise.
Interpolation interpolation_from_string(const std::string& s);

// An 8-bit image, (height, width, channels) row-major.
struct Image8 {
  std::size_t height = 0, width = 0, channels = 0;
  std::vector<std::uint8_t> data;
};

// Decode the file at `path` with its own channels (1, 3 or 4; RGB order). IOError naming the file
// when it cannot be read, is empty, truncated or not an image OpenCV can decode.
Image8 decode_image(const std::string& path);

// Pillow's Image.convert to the colour mode.
Image8 convert_color(const Image8& img, ColorMode mode);

// Pillow's Image.resize to (out_h, out_w) with a source box {x0, y0, x1, y1} in pixels (nullptr: the
// whole image).
Image8 resize_pil(const Image8& img, std::size_t out_h, std::size_t out_w, Interpolation interp,
                  const float* box = nullptr);

// Keras's load_img: decode, convert to `mode`, resize to (target_h, target_w) when it differs
// (0, 0: keep the size). keep_aspect_ratio crops the centred box with the target's aspect ratio first.
Image8 load_img(const std::string& path, ColorMode mode, std::size_t target_h, std::size_t target_w,
                Interpolation interp, bool keep_aspect_ratio);

// TF-style loading for image_dataset_from_directory: decode, convert to `mode`, optionally crop the
// centred box with the target aspect ratio, resize without antialiasing into `out` (float32,
// (h, w, channels_of(mode))). interp: "bilinear", "nearest", "bicubic" or "area".
void load_image_tf(const std::string& path, ColorMode mode, std::size_t h, std::size_t w,
                   const std::string& interp, bool crop_to_aspect_ratio, float* out);

// Decode many files on `workers` threads (0 or 1: this thread) into out: (N, h, w, C). The first
// failure (in file order) is rethrown after all threads stop.
void load_images_tf(const std::vector<std::string>& paths, ColorMode mode, std::size_t h, std::size_t w,
                    const std::string& interp, bool crop_to_aspect_ratio, int workers, float* out);

// cv::setNumThreads(0), once per process.
void disable_opencv_threads();

}  // namespace signcore::data
