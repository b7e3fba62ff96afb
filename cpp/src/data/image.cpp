#include "signcore/data/image.hpp"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <exception>
#include <fstream>
#include <mutex>
#include <thread>

#include "signcore/errors.hpp"

namespace signcore::data {

ColorMode color_mode_from_string(const std::string& s) {
  if (s == "grayscale") return ColorMode::Grayscale;
  if (s == "rgb") return ColorMode::RGB;
  if (s == "rgba") return ColorMode::RGBA;
  fail<ValueError>("color_mode must be one of 'rgb', 'rgba' or 'grayscale'. Received: color_mode=", s);
}

std::size_t channels_of(ColorMode mode) {
  switch (mode) {
    case ColorMode::Grayscale: return 1;
    case ColorMode::RGB: return 3;
    default: return 4;
  }
}

Interpolation interpolation_from_string(const std::string& s) {
  if (s == "nearest") return Interpolation::Nearest;
  if (s == "bilinear") return Interpolation::Bilinear;
  if (s == "bicubic") return Interpolation::Bicubic;
  if (s == "lanczos") return Interpolation::Lanczos;
  if (s == "box") return Interpolation::Box;
  if (s == "hamming") return Interpolation::Hamming;
  fail<ValueError>("Invalid interpolation method ", s,
                   " specified. Supported methods are nearest, bilinear, bicubic, lanczos, box, hamming. "
                   "Received: interpolation=", s);
}

void disable_opencv_threads() {
  static std::once_flag once;
  std::call_once(once, [] { cv::setNumThreads(0); });
}

// ---------------------------------------------------------------------------------------------
// Decoding

namespace {

std::vector<std::uint8_t> read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) fail<IOError>("Cannot open image file '", path, "': it does not exist or cannot be read");
  const std::streamoff size = f.tellg();
  if (size < 0) fail<IOError>("Cannot read image file '", path, "'");
  std::vector<std::uint8_t> buf(static_cast<std::size_t>(size));
  f.seekg(0);
  if (size > 0 && !f.read(reinterpret_cast<char*>(buf.data()), size))
    fail<IOError>("Cannot read image file '", path, "'");
  return buf;
}

// A JPEG must have an end-of-image marker (FF D9) after its last start-of-scan marker (FF DA).
// Neither byte pair can occur inside entropy-coded data (0xFF is stuffed), so a missing one means
// the file was cut short.
bool jpeg_truncated(const std::vector<std::uint8_t>& b) {
  std::ptrdiff_t last_sos = -1, last_eoi = -1;
  for (std::size_t i = 0; i + 1 < b.size(); ++i) {
    if (b[i] != 0xFF) continue;
    if (b[i + 1] == 0xDA) last_sos = static_cast<std::ptrdiff_t>(i);
    else if (b[i + 1] == 0xD9) last_eoi = static_cast<std::ptrdiff_t>(i);
  }
  return last_sos < 0 || last_eoi < last_sos;
}

}  // namespace

Image8 decode_image(const std::string& path) {
  const std::vector<std::uint8_t> buf = read_file(path);
  if (buf.empty()) fail<IOError>("cannot identify image file '", path, "': the file is empty");
  if (buf.size() >= 2 && buf[0] == 0xFF && buf[1] == 0xD8 && jpeg_truncated(buf))
    fail<IOError>("image file is truncated: '", path, "' (a JPEG without its end-of-image marker)");
  cv::Mat m;
  try {
    const cv::Mat raw(1, static_cast<int>(buf.size()), CV_8U, const_cast<std::uint8_t*>(buf.data()));
    m = cv::imdecode(raw, cv::IMREAD_UNCHANGED);
  } catch (const cv::Exception& e) {
    fail<IOError>("cannot identify image file '", path, "': OpenCV failed to decode it (", e.what(), ")");
  }
  if (m.empty())
    fail<IOError>("cannot identify image file '", path,
                  "': it is corrupt or not in a format signcore decodes (png, jpg/jpeg, bmp, ppm/pgm, tif/tiff)");
  if (m.depth() == CV_16U) {
    cv::Mat m8;
    m.convertTo(m8, CV_8U, 1.0 / 256.0);
    m = m8;
  } else if (m.depth() != CV_8U) {
    fail<IOError>("unsupported pixel type in image file '", path, "': only 8- and 16-bit images are read");
  }
  const int ch = m.channels();
  if (ch < 1 || ch > 4) fail<IOError>("unsupported channel count ", ch, " in image file '", path, "'");
  if (!m.isContinuous()) m = m.clone();
  // One copy out of OpenCV, turning BGR(A) into RGB(A) on the way (grey + alpha becomes RGBA).
  Image8 img;
  img.height = static_cast<std::size_t>(m.rows);
  img.width = static_cast<std::size_t>(m.cols);
  img.channels = ch == 2 ? 4 : static_cast<std::size_t>(ch);
  const std::size_t n = img.height * img.width;
  img.data.resize(n * img.channels);
  const std::uint8_t* s = m.data;
  std::uint8_t* d = img.data.data();
  switch (ch) {
    case 1: std::copy(s, s + n, d); break;
    case 2:
      for (std::size_t i = 0; i < n; ++i, s += 2, d += 4) d[0] = d[1] = d[2] = s[0], d[3] = s[1];
      break;
    case 3:
      for (std::size_t i = 0; i < n; ++i, s += 3, d += 3) d[0] = s[2], d[1] = s[1], d[2] = s[0];
      break;
    default:
      for (std::size_t i = 0; i < n; ++i, s += 4, d += 4) d[0] = s[2], d[1] = s[1], d[2] = s[0], d[3] = s[3];
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// Colour

Image8 convert_color(const Image8& img, ColorMode mode) {
  const std::size_t out_c = channels_of(mode), in_c = img.channels, n = img.height * img.width;
  if (in_c == out_c) return img;
  Image8 out;
  out.height = img.height;
  out.width = img.width;
  out.channels = out_c;
  out.data.resize(n * out_c);
  const std::uint8_t* s = img.data.data();
  std::uint8_t* d = out.data.data();
  for (std::size_t i = 0; i < n; ++i, s += in_c, d += out_c) {
    if (out_c == 1) {
      // Pillow's L24: ITU-R 601-2 luma in 16-bit fixed point, rounded.
      d[0] = static_cast<std::uint8_t>((s[0] * 19595u + s[1] * 38470u + s[2] * 7471u + 0x8000u) >> 16);
    } else if (in_c == 1) {
      d[0] = d[1] = d[2] = s[0];
      if (out_c == 4) d[3] = 255;
    } else {
      d[0] = s[0];
      d[1] = s[1];
      d[2] = s[2];
      if (out_c == 4) d[3] = 255;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Pillow's resize

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;

struct Filter {
  double (*fn)(double);
  double support;
};

double box_filter(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming_filter(double x) {
  if (x < 0.0) x = -x;
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54f + 0.46f * std::cos(x));
}
double bicubic_filter(double x) {
  constexpr double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos_filter(double x) { return (-3.0 <= x && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

Filter filter_of(Interpolation i) {
  switch (i) {
    case Interpolation::Box: return {box_filter, 0.5};
    case Interpolation::Bilinear: return {bilinear_filter, 1.0};
    case Interpolation::Hamming: return {hamming_filter, 1.0};
    case Interpolation::Bicubic: return {bicubic_filter, 2.0};
    default: return {lanczos_filter, 3.0};
  }
}

// Per output pixel: the first input pixel, the tap count, and ksize fixed-point weights.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // (xmin, count) per output pixel
  std::vector<std::int32_t> k;
};

Coeffs precompute(int in_size, float in0, float in1, int out_size, const Filter& f) {
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;
  const double support = f.support * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<std::size_t>(out_size) * 2);
  c.k.assign(static_cast<std::size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(static_cast<std::size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = f.fn((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      c.k[static_cast<std::size_t>(xx) * c.ksize + x] =
          v < 0 ? static_cast<std::int32_t>(-0.5 + v * (1 << kPrecisionBits))
                : static_cast<std::int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.bounds[2 * xx] = xmin;
    c.bounds[2 * xx + 1] = xmax;
  }
  return c;
}

inline std::uint8_t clip8(std::int32_t v) {
  const std::int32_t s = v >> kPrecisionBits;  // arithmetic shift: floor
  return static_cast<std::uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

// rows [row0, row0 + rows) of src (width sw) -> dst (width dw), channels ch.
void resample_horizontal(const std::uint8_t* src, std::size_t sw, std::size_t row0, std::size_t rows,
                         std::uint8_t* dst, std::size_t dw, std::size_t ch, const Coeffs& c) {
  for (std::size_t y = 0; y < rows; ++y) {
    const std::uint8_t* in = src + (row0 + y) * sw * ch;
    std::uint8_t* out = dst + y * dw * ch;
    for (std::size_t xx = 0; xx < dw; ++xx) {
      const int xmin = c.bounds[2 * xx], xmax = c.bounds[2 * xx + 1];
      const std::int32_t* k = &c.k[xx * c.ksize];
      for (std::size_t b = 0; b < ch; ++b) {
        std::int32_t ss = 1 << (kPrecisionBits - 1);
        for (int x = 0; x < xmax; ++x) ss += in[(static_cast<std::size_t>(x + xmin)) * ch + b] * k[x];
        out[xx * ch + b] = clip8(ss);
      }
    }
  }
}

void resample_vertical(const std::uint8_t* src, std::size_t w, std::uint8_t* dst, std::size_t dh,
                       std::size_t ch, const Coeffs& c, int shift) {
  const std::size_t row = w * ch;
  for (std::size_t yy = 0; yy < dh; ++yy) {
    const int ymin = c.bounds[2 * yy] - shift, ymax = c.bounds[2 * yy + 1];
    const std::int32_t* k = &c.k[yy * c.ksize];
    std::uint8_t* out = dst + yy * row;
    for (std::size_t i = 0; i < row; ++i) {
      std::int32_t ss = 1 << (kPrecisionBits - 1);
      for (int y = 0; y < ymax; ++y) ss += src[static_cast<std::size_t>(y + ymin) * row + i] * k[y];
      out[i] = clip8(ss);
    }
  }
}

Image8 resample_pil(const Image8& img, std::size_t out_h, std::size_t out_w, const Filter& f, const float* box) {
  const std::size_t ch = img.channels;
  const int in_w = static_cast<int>(img.width), in_h = static_cast<int>(img.height);
  const bool need_h = out_w != img.width || box[0] != 0 || box[2] != static_cast<float>(out_w);
  const bool need_v = out_h != img.height || box[1] != 0 || box[3] != static_cast<float>(out_h);
  const Coeffs ch_coeffs = precompute(in_w, box[0], box[2], static_cast<int>(out_w), f);
  const Coeffs cv_coeffs = precompute(in_h, box[1], box[3], static_cast<int>(out_h), f);
  // Pillow 13 resizes vertically first when the height shrinks by more than twice the width
  // (python-pillow/Pillow#9549); the order changes the 8-bit rounding between the passes.
  const long long dh = static_cast<long long>(img.height) - static_cast<long long>(out_h);
  const long long dw = static_cast<long long>(img.width) - static_cast<long long>(out_w);
  if (need_h && need_v && dh > 0 && dh > 2 * dw) {
    Image8 tmp;
    tmp.width = img.width;
    tmp.height = out_h;
    tmp.channels = ch;
    tmp.data.resize(tmp.width * out_h * ch);
    resample_vertical(img.data.data(), img.width, tmp.data.data(), out_h, ch, cv_coeffs, 0);
    Image8 out;
    out.width = out_w;
    out.height = out_h;
    out.channels = ch;
    out.data.resize(out_w * out_h * ch);
    resample_horizontal(tmp.data.data(), tmp.width, 0, out_h, out.data.data(), out_w, ch, ch_coeffs);
    return out;
  }
  const int ybox_first = cv_coeffs.bounds[0];
  const int ybox_last = cv_coeffs.bounds[2 * out_h - 2] + cv_coeffs.bounds[2 * out_h - 1];
  Image8 cur = img;
  int shift = 0;
  if (need_h) {
    Image8 tmp;
    tmp.width = out_w;
    tmp.height = need_v ? static_cast<std::size_t>(ybox_last - ybox_first) : img.height;
    tmp.channels = ch;
    tmp.data.resize(tmp.width * tmp.height * ch);
    resample_horizontal(img.data.data(), img.width, need_v ? static_cast<std::size_t>(ybox_first) : 0, tmp.height,
                        tmp.data.data(), out_w, ch, ch_coeffs);
    cur = std::move(tmp);
    shift = need_v ? ybox_first : 0;
  }
  if (need_v) {
    Image8 out;
    out.width = cur.width;
    out.height = out_h;
    out.channels = ch;
    out.data.resize(out.width * out_h * ch);
    resample_vertical(cur.data.data(), cur.width, out.data.data(), out_h, ch, cv_coeffs, shift);
    cur = std::move(out);
  }
  return cur;
}

// Pillow's ImagingScaleAffine: nearest neighbour with running sums x0 + a (x + 0.5).
Image8 resize_nearest_pil(const Image8& img, std::size_t out_h, std::size_t out_w, const float* box) {
  const std::size_t ch = img.channels;
  const double ax = static_cast<double>(box[2] - box[0]) / static_cast<double>(out_w);
  const double ay = static_cast<double>(box[3] - box[1]) / static_cast<double>(out_h);
  auto table = [](double a, double start, std::size_t n, std::size_t in) {
    std::vector<std::ptrdiff_t> t(n);
    double o = start + a * 0.5;
    for (std::size_t i = 0; i < n; ++i) {
      const std::ptrdiff_t v = o < 0.0 ? -1 : static_cast<std::ptrdiff_t>(o);
      t[i] = (v >= 0 && v < static_cast<std::ptrdiff_t>(in)) ? v : -1;
      o += a;
    }
    return t;
  };
  const auto xt = table(ax, box[0], out_w, img.width), yt = table(ay, box[1], out_h, img.height);
  Image8 out;
  out.height = out_h;
  out.width = out_w;
  out.channels = ch;
  out.data.assign(out_h * out_w * ch, 0);
  for (std::size_t y = 0; y < out_h; ++y) {
    if (yt[y] < 0) continue;
    const std::uint8_t* in = img.data.data() + static_cast<std::size_t>(yt[y]) * img.width * ch;
    std::uint8_t* o = out.data.data() + y * out_w * ch;
    for (std::size_t x = 0; x < out_w; ++x) {
      if (xt[x] < 0) continue;
      std::copy(in + static_cast<std::size_t>(xt[x]) * ch, in + static_cast<std::size_t>(xt[x]) * ch + ch, o + x * ch);
    }
  }
  return out;
}

inline std::uint8_t muldiv255(unsigned a, unsigned b) {
  const unsigned t = a * b + 128;
  return static_cast<std::uint8_t>(((t >> 8) + t) >> 8);
}

}  // namespace

Image8 resize_pil(const Image8& img, std::size_t out_h, std::size_t out_w, Interpolation interp, const float* box) {
  if (out_h == 0 || out_w == 0) fail<ValueError>("target size must be positive. Received: (", out_h, ", ", out_w, ")");
  if (img.height == 0 || img.width == 0) fail<ValueError>("cannot resize an empty image");
  const float full[4] = {0.0f, 0.0f, static_cast<float>(img.width), static_cast<float>(img.height)};
  if (!box) box = full;
  if (out_h == img.height && out_w == img.width && box[0] == 0 && box[1] == 0 &&
      box[2] == static_cast<float>(out_w) && box[3] == static_cast<float>(out_h))
    return img;
  if (interp == Interpolation::Nearest) return resize_nearest_pil(img, out_h, out_w, box);
  const Filter f = filter_of(interp);
  if (img.channels != 4) return resample_pil(img, out_h, out_w, f, box);
  // RGBA: resample premultiplied by alpha ("RGBa"), then divide back.
  Image8 pre = img;
  for (std::size_t i = 0; i < pre.data.size(); i += 4)
    for (int b = 0; b < 3; ++b) pre.data[i + b] = muldiv255(img.data[i + b], img.data[i + 3]);
  Image8 out = resample_pil(pre, out_h, out_w, f, box);
  for (std::size_t i = 0; i < out.data.size(); i += 4) {
    const unsigned alpha = out.data[i + 3];
    if (alpha == 255 || alpha == 0) continue;
    for (int b = 0; b < 3; ++b) out.data[i + b] = static_cast<std::uint8_t>(std::min(255u, (255u * out.data[i + b]) / alpha));
  }
  return out;
}

Image8 load_img(const std::string& path, ColorMode mode, std::size_t target_h, std::size_t target_w,
                Interpolation interp, bool keep_aspect_ratio) {
  Image8 img = convert_color(decode_image(path), mode);
  if (target_h == 0 || target_w == 0 || (img.height == target_h && img.width == target_w)) return img;
  if (!keep_aspect_ratio) return resize_pil(img, target_h, target_w, interp, nullptr);
  const std::size_t width = img.width, height = img.height;
  const std::size_t crop_h = std::min(height, (width * target_h) / target_w);
  const std::size_t crop_w = std::min(width, (height * target_w) / target_h);
  const std::size_t h0 = (height - crop_h) / 2, w0 = (width - crop_w) / 2;
  const float box[4] = {static_cast<float>(w0), static_cast<float>(h0), static_cast<float>(w0 + crop_w),
                        static_cast<float>(h0 + crop_h)};
  return resize_pil(img, target_h, target_w, interp, box);
}

// ---------------------------------------------------------------------------------------------
// TF-style loading (image_dataset_from_directory)

void load_image_tf(const std::string& path, ColorMode mode, std::size_t h, std::size_t w, const std::string& interp,
                   bool crop_to_aspect_ratio, float* out) {
  Image8 img = convert_color(decode_image(path), mode);
  const int c = static_cast<int>(img.channels);
  cv::Mat m(static_cast<int>(img.height), static_cast<int>(img.width), CV_8UC(c), img.data.data());
  if (crop_to_aspect_ratio) {
    const int height = m.rows, width = m.cols;
    int crop_h = static_cast<int>(static_cast<float>(width * static_cast<int>(h)) / static_cast<float>(w));
    int crop_w = static_cast<int>(static_cast<float>(height * static_cast<int>(w)) / static_cast<float>(h));
    crop_h = std::min(height, crop_h);
    crop_w = std::min(width, crop_w);
    const int h0 = static_cast<int>(static_cast<float>(height - crop_h) / 2);
    const int w0 = static_cast<int>(static_cast<float>(width - crop_w) / 2);
    m = m(cv::Rect(w0, h0, crop_w, crop_h));
  }
  cv::Mat f;
  m.convertTo(f, CV_32FC(c));
  cv::Mat dst(static_cast<int>(h), static_cast<int>(w), CV_32FC(c), out);
  if (f.rows == dst.rows && f.cols == dst.cols) {
    f.copyTo(dst);
    return;
  }
  if (interp == "nearest") {
    const float sy = static_cast<float>(f.rows) / static_cast<float>(h);
    const float sx = static_cast<float>(f.cols) / static_cast<float>(w);
    for (int y = 0; y < dst.rows; ++y) {
      const int iy = std::min(static_cast<int>(std::floor((static_cast<float>(y) + 0.5f) * sy)), f.rows - 1);
      const float* in = f.ptr<float>(iy);
      float* o = dst.ptr<float>(y);
      for (int x = 0; x < dst.cols; ++x) {
        const int ix = std::min(static_cast<int>(std::floor((static_cast<float>(x) + 0.5f) * sx)), f.cols - 1);
        std::copy(in + ix * c, in + ix * c + c, o + x * c);
      }
    }
    return;
  }
  int flag;
  if (interp == "bilinear") flag = cv::INTER_LINEAR;
  else if (interp == "area") flag = cv::INTER_AREA;
  else if (interp == "bicubic") flag = cv::INTER_CUBIC;
  else fail<ValueError>("interpolation must be 'bilinear', 'nearest', 'bicubic' or 'area'. Received: interpolation=", interp);
  cv::resize(f, dst, dst.size(), 0, 0, flag);
  if (dst.data != reinterpret_cast<uchar*>(out))  // cv::resize reallocated: should not happen
    fail<StateError>("internal error: resize did not write in place");
}

void load_images_tf(const std::vector<std::string>& paths, ColorMode mode, std::size_t h, std::size_t w,
                    const std::string& interp, bool crop_to_aspect_ratio, int workers, float* out) {
  disable_opencv_threads();
  const std::size_t per = h * w * channels_of(mode), n = paths.size();
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::size_t first_bad = n;
  std::exception_ptr error;
  auto run = [&] {
    for (;;) {
      const std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      {
        std::lock_guard<std::mutex> lock(mu);
        if (i > first_bad) return;  // an earlier file failed: stop
      }
      try {
        load_image_tf(paths[i], mode, h, w, interp, crop_to_aspect_ratio, out + i * per);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (i < first_bad) {
          first_bad = i;
          error = std::current_exception();
        }
      }
    }
  };
  const int threads = std::max(1, std::min<int>(workers, static_cast<int>(n)));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace signcore::data
