#include "signcore/data/augment.hpp"

#include <algorithm>
#include <cmath>

#include "signcore/errors.hpp"

namespace signcore::data {

namespace {
// NumPy rounds every operation. Where bit-equality with it matters, keep the compiler from fusing
// a * b + c into one FMA (-march=native with GCC's default -ffp-contract=fast would).
inline double mul_add_rounded(double a, double b, double c) {
  volatile double p = a * b;
  return p + c;
}
inline float mul_add_rounded(float a, float b, float c) {
  volatile float p = a * b;
  return p + c;
}
}  // namespace

// ---------------------------------------------------------------------------------------------
// NumPy's legacy RandomState: MT19937 seeded with init_genrand, doubles from two 32-bit draws
// (27 + 26 bits), bounded integers by masked rejection on 32-bit draws.

void NumpyRandomState::seed_with(std::uint32_t s) {
  key[0] = s;
  for (int i = 1; i < kStateSize; ++i)
    key[i] = 1812433253u * (key[i - 1] ^ (key[i - 1] >> 30)) + static_cast<std::uint32_t>(i);
  pos = kStateSize;
}

void NumpyRandomState::generate() {
  constexpr std::uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
  constexpr int kM = 397;
  auto twist = [&](int i, int next, int far) {
    const std::uint32_t y = (key[i] & kUpper) | (key[next] & kLower);
    key[i] = key[far] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
  };
  int i = 0;
  for (; i < kStateSize - kM; ++i) twist(i, i + 1, i + kM);
  for (; i < kStateSize - 1; ++i) twist(i, i + 1, i + kM - kStateSize);
  twist(kStateSize - 1, 0, kM - 1);
  pos = 0;
}

std::uint32_t NumpyRandomState::next_uint32() {
  if (pos >= kStateSize) generate();
  std::uint32_t y = key[pos++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

double NumpyRandomState::random_sample() {
  const std::uint32_t a = next_uint32() >> 5, b = next_uint32() >> 6;
  return (a * 67108864.0 + b) / 9007199254740992.0;
}

double NumpyRandomState::uniform(double low, double high) {
  return mul_add_rounded(high - low, random_sample(), low);
}

std::uint64_t NumpyRandomState::bounded(std::uint64_t max) {
  if (max == 0) return 0;
  std::uint64_t mask = max;
  for (int s = 1; s <= 32; s *= 2) mask |= mask >> s;
  std::uint64_t v;
  if (max <= 0xffffffffu) {
    do v = next_uint32() & mask; while (v > max);
  } else {
    do {
      const std::uint64_t hi = next_uint32();
      v = ((hi << 32) | next_uint32()) & mask;
    } while (v > max);
  }
  return v;
}

std::vector<std::size_t> NumpyRandomState::permutation(std::size_t n) {
  std::vector<std::size_t> x(n);
  for (std::size_t i = 0; i < n; ++i) x[i] = i;
  for (std::size_t i = n > 0 ? n - 1 : 0; i >= 1; --i) std::swap(x[i], x[bounded(i)]);
  return x;
}

// ---------------------------------------------------------------------------------------------
// Configuration and parameters

FillMode fill_mode_from_string(const std::string& s) {
  if (s == "constant") return FillMode::Constant;
  if (s == "nearest") return FillMode::Nearest;
  if (s == "reflect") return FillMode::Reflect;
  if (s == "wrap") return FillMode::Wrap;
  fail<ValueError>("fill_mode must be one of 'constant', 'nearest', 'reflect' or 'wrap'. Received: fill_mode=", s);
}

void AugmentConfig::validate() const {
  if (interpolation_order != 0 && interpolation_order != 1)
    fail<ValueError>("interpolation_order must be 0 (nearest) or 1 (bilinear). Received: interpolation_order=",
                     interpolation_order);
  for (double v : {rotation_range, shear_range, zoom_low, zoom_high, channel_shift_range, cval, rescale})
    if (!std::isfinite(v)) fail<ValueError>("ImageDataGenerator settings must be finite numbers. Received: ", v);
  if (has_brightness && (!std::isfinite(brightness_low) || !std::isfinite(brightness_high)))
    fail<ValueError>("brightness_range must hold two finite numbers. Received: (", brightness_low, ", ",
                     brightness_high, ")");
  if (!mean.empty() && !std.empty() && mean.size() != std.size())
    fail<ValueError>("featurewise mean and std must have the same size. Received: ", mean.size(), " and ", std.size());
}

namespace {

double draw_shift(const ShiftRange& r, NumpyRandomState& rng, std::size_t size) {
  double t;
  if (r.from_choices) {
    t = r.choices[rng.bounded(r.choices.size() - 1)];
    t *= rng.bounded(1) ? 1.0 : -1.0;  // np.random.choice([-1, 1])
  } else {
    t = rng.uniform(-r.range, r.range);
  }
  if (r.fraction) t *= static_cast<double>(size);
  return t;
}

}  // namespace

TransformParams draw_transform(const AugmentConfig& c, NumpyRandomState& rng, std::size_t h, std::size_t w) {
  TransformParams p;
  if (c.rotation_range != 0) p.theta = rng.uniform(-c.rotation_range, c.rotation_range);
  if (c.height_shift.enabled) p.tx = draw_shift(c.height_shift, rng, h);
  if (c.width_shift.enabled) p.ty = draw_shift(c.width_shift, rng, w);
  if (c.shear_range != 0) p.shear = rng.uniform(-c.shear_range, c.shear_range);
  if (!(c.zoom_low == 1 && c.zoom_high == 1)) {
    p.zx = rng.uniform(c.zoom_low, c.zoom_high);
    p.zy = rng.uniform(c.zoom_low, c.zoom_high);
  }
  // Both coins are tossed whatever the flags, as Keras does, so the stream stays aligned.
  p.flip_horizontal = rng.random_sample() < 0.5 && c.horizontal_flip;
  p.flip_vertical = rng.random_sample() < 0.5 && c.vertical_flip;
  if (c.channel_shift_range != 0) {
    p.has_channel_shift = true;
    p.channel_shift_intensity = rng.uniform(-c.channel_shift_range, c.channel_shift_range);
  }
  if (c.has_brightness) {
    p.has_brightness = true;
    p.brightness = rng.uniform(c.brightness_low, c.brightness_high);
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// The warp: scipy.ndimage's coordinate mapping and order-0/1 spline taps.

namespace {

using Mat3 = std::array<std::array<double, 3>, 3>;

Mat3 matmul(const Mat3& x, const Mat3& y) {
  Mat3 r{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j) r[i][j] = x[i][0] * y[0][j] + x[i][1] * y[1][j] + x[i][2] * y[2][j];
  return r;
}

// Keras's apply_affine_transform matrix, in scipy's (row, column) frame for channels-last images.
// False when the parameters leave the image unchanged (Keras then skips the warp).
bool keras_matrix(const TransformParams& p, std::size_t h, std::size_t w, std::array<double, 4>& a,
                  std::array<double, 2>& b) {
  constexpr double kDegToRad = M_PI / 180.0;
  Mat3 t{};
  bool has = false;
  auto compose = [&](const Mat3& m) {
    t = has ? matmul(t, m) : m;
    has = true;
  };
  if (p.theta != 0) {
    const double th = p.theta * kDegToRad;
    compose({{{std::cos(th), -std::sin(th), 0}, {std::sin(th), std::cos(th), 0}, {0, 0, 1}}});
  }
  if (p.tx != 0 || p.ty != 0) compose({{{1, 0, p.tx}, {0, 1, p.ty}, {0, 0, 1}}});
  if (p.shear != 0) {
    const double s = p.shear * kDegToRad;
    compose({{{1, -std::sin(s), 0}, {0, std::cos(s), 0}, {0, 0, 1}}});
  }
  if (p.zx != 1 || p.zy != 1) compose({{{p.zx, 0, 0}, {0, p.zy, 0}, {0, 0, 1}}});
  if (!has) return false;
  const double ox = static_cast<double>(h) / 2 - 0.5, oy = static_cast<double>(w) / 2 - 0.5;
  const Mat3 offset{{{1, 0, ox}, {0, 1, oy}, {0, 0, 1}}}, reset{{{1, 0, -ox}, {0, 1, -oy}, {0, 0, 1}}};
  t = matmul(matmul(offset, t), reset);
  // Keras swaps x and y (rows and columns of the matrix) for channels-last data.
  a = {t[1][1], t[1][0], t[0][1], t[0][0]};
  b = {t[1][2], t[0][2]};
  return true;
}

// scipy's map_coordinate: bring an input coordinate back inside [0, len-1] (or (-1, len) for
// reflect); -1 marks "outside" for constant mode.
double map_coordinate(double in, std::ptrdiff_t len, FillMode mode) {
  if (in < 0) {
    switch (mode) {
      case FillMode::Reflect:
        if (len <= 1) return 0;
        {
          const double sz2 = 2.0 * static_cast<double>(len);
          if (in < -sz2) in = sz2 * static_cast<double>(static_cast<std::ptrdiff_t>(-in / sz2)) + in;
          in = in < -static_cast<double>(len) ? in + sz2 : (in > -1e-15 ? 1e-15 : -in) - 1;
        }
        return in;
      case FillMode::Wrap:
        if (len <= 1) return 0;
        {
          const double sz = static_cast<double>(len - 1);
          return in + sz * static_cast<double>(static_cast<std::ptrdiff_t>(-in / sz) + 1);
        }
      case FillMode::Nearest: return 0;
      case FillMode::Constant: return -1;
    }
  } else if (in > static_cast<double>(len - 1)) {
    switch (mode) {
      case FillMode::Reflect:
        if (len <= 1) return 0;
        {
          const double sz2 = 2.0 * static_cast<double>(len);
          in -= sz2 * static_cast<double>(static_cast<std::ptrdiff_t>(in / sz2));
          if (in >= static_cast<double>(len)) in = sz2 - in - 1;
        }
        return in;
      case FillMode::Wrap:
        if (len <= 1) return 0;
        {
          const double sz = static_cast<double>(len - 1);
          return in - sz * static_cast<double>(static_cast<std::ptrdiff_t>(in / sz));
        }
      case FillMode::Nearest: return static_cast<double>(len - 1);
      case FillMode::Constant: return -1;
    }
  }
  return in;
}

// A tap index outside the image, folded back the way scipy does for the spline support
// (nearest: clamp; reflect: symmetric; constant and wrap: mirror). Taps that land here carry a zero
// weight except in reflect and nearest modes.
std::ptrdiff_t fold_index(std::ptrdiff_t i, std::ptrdiff_t len, FillMode mode) {
  if (i >= 0 && i < len) return i;
  if (len <= 1) return 0;
  switch (mode) {
    case FillMode::Nearest: return i < 0 ? 0 : len - 1;
    case FillMode::Reflect: return i < 0 ? -i - 1 : 2 * len - 1 - i;
    default: return i < 0 ? -i : 2 * len - 2 - i;
  }
}

struct Taps {
  std::ptrdiff_t i0 = 0, i1 = 0;
  double w0 = 1, w1 = 0;
};

// False: the sample is `cval` (constant mode, outside the image).
bool taps_of(double cc, std::ptrdiff_t len, FillMode mode, int order, Taps& t) {
  cc = map_coordinate(cc, len, mode);
  if (!(cc > -1.0) && mode == FillMode::Constant) return false;
  if (order == 0) {
    t.i0 = fold_index(static_cast<std::ptrdiff_t>(std::floor(cc + 0.5)), len, mode);
    t.w0 = 1;
    t.i1 = t.i0;
    t.w1 = 0;
    return true;
  }
  const double start = std::floor(cc);
  const double frac = cc - start;
  const auto s = static_cast<std::ptrdiff_t>(start);
  t.i0 = fold_index(s, len, mode);
  t.i1 = fold_index(s + 1, len, mode);
  t.w0 = 1.0 - frac;
  t.w1 = frac;
  return true;
}

}  // namespace

void affine_warp(const float* src, float* dst, std::size_t h, std::size_t w, std::size_t c,
                 const std::array<double, 4>& a, const std::array<double, 2>& b, FillMode mode, float cval,
                 int order) {
  const auto H = static_cast<std::ptrdiff_t>(h), W = static_cast<std::ptrdiff_t>(w);
  const double hmax = static_cast<double>(H - 1), wmax = static_cast<double>(W - 1);
  const std::size_t row = w * c;
  for (std::ptrdiff_t r = 0; r < H; ++r) {
    float* out = dst + static_cast<std::size_t>(r) * row;
    const double rd = static_cast<double>(r);
    for (std::ptrdiff_t k = 0; k < W; ++k, out += c) {
      const double kd = static_cast<double>(k);
      const double ir = rd * a[0] + kd * a[1] + b[0];
      const double ic = rd * a[2] + kd * a[3] + b[1];
      Taps tr, tc;
      if (order == 1 && ir >= 0 && ir < hmax && ic >= 0 && ic < wmax) {
        // Inside: every mode samples the same two taps per axis (the common case).
        const auto r0 = static_cast<std::ptrdiff_t>(ir), c0 = static_cast<std::ptrdiff_t>(ic);
        tr = {r0, r0 + 1, 1.0 - (ir - static_cast<double>(r0)), ir - static_cast<double>(r0)};
        tc = {c0, c0 + 1, 1.0 - (ic - static_cast<double>(c0)), ic - static_cast<double>(c0)};
      } else if (!taps_of(ir, H, mode, order, tr) || !taps_of(ic, W, mode, order, tc)) {
        for (std::size_t ch = 0; ch < c; ++ch) out[ch] = cval;
        continue;
      }
      const float* p00 = src + (static_cast<std::size_t>(tr.i0) * w + static_cast<std::size_t>(tc.i0)) * c;
      const float* p01 = src + (static_cast<std::size_t>(tr.i0) * w + static_cast<std::size_t>(tc.i1)) * c;
      const float* p10 = src + (static_cast<std::size_t>(tr.i1) * w + static_cast<std::size_t>(tc.i0)) * c;
      const float* p11 = src + (static_cast<std::size_t>(tr.i1) * w + static_cast<std::size_t>(tc.i1)) * c;
      if (order == 0) {
        for (std::size_t ch = 0; ch < c; ++ch) out[ch] = p00[ch];
        continue;
      }
      // scipy's accumulation order: ((value * row weight) * column weight), taps row-major.
      for (std::size_t ch = 0; ch < c; ++ch) {
        double v = static_cast<double>(p00[ch]) * tr.w0 * tc.w0;
        v += static_cast<double>(p01[ch]) * tr.w0 * tc.w1;
        v += static_cast<double>(p10[ch]) * tr.w1 * tc.w0;
        v += static_cast<double>(p11[ch]) * tr.w1 * tc.w1;
        out[ch] = static_cast<float>(v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// apply_transform

namespace {

// Keras's apply_brightness_shift(x, brightness, scale=False): through an 8-bit PIL image (values
// truncated), PIL's ImageEnhance.Brightness (blend with black in float32, truncated, clipped), and
// back to the original range if it was outside [0, 255]. The alpha channel of a 4-channel image is
// kept as is.
void brightness_shift(float* img, std::size_t n, std::size_t c, double factor) {
  if (c != 1 && c != 3 && c != 4)
    fail<ValueError>("brightness_range needs images with 1, 3 or 4 channels. Received: ", c, " channels");
  float mn = img[0], mx = img[0];
  for (std::size_t i = 1; i < n; ++i) {
    mn = std::min(mn, img[i]);
    mx = std::max(mx, img[i]);
  }
  const bool local_scale = mn < 0 || mx > 255;
  const float range = mx - mn;
  const float alpha = static_cast<float>(factor);
  const bool inside = alpha >= 0 && alpha <= 1;
  for (std::size_t i = 0; i < n; ++i) {
    float v = img[i];
    if (local_scale) {
      v = v - mn;
      if (range != 0) v = v / range;
      v = v * 255.0f;
    }
    const auto u = static_cast<std::uint8_t>(v);
    std::uint8_t out = u;
    if (!(c == 4 && i % 4 == 3)) {
      const float t = alpha * static_cast<float>(u);
      if (inside) out = static_cast<std::uint8_t>(t);
      else out = t <= 0.0f ? 0 : (t >= 255.0f ? 255 : static_cast<std::uint8_t>(t));
    }
    float r = static_cast<float>(out);
    if (local_scale) r = mul_add_rounded(r / 255.0f, range, mn);
    img[i] = r;
  }
}

void flip_columns(float* img, std::size_t h, std::size_t w, std::size_t c) {
  for (std::size_t r = 0; r < h; ++r) {
    float* row = img + r * w * c;
    for (std::size_t a = 0, b = w - 1; a < b; ++a, --b)
      std::swap_ranges(row + a * c, row + a * c + c, row + b * c);
  }
}

void flip_rows(float* img, std::size_t h, std::size_t w, std::size_t c) {
  const std::size_t row = w * c;
  for (std::size_t a = 0, b = h - 1; a < b && h > 0; ++a, --b)
    std::swap_ranges(img + a * row, img + a * row + row, img + b * row);
}

}  // namespace

void apply_transform(const AugmentConfig& config, const TransformParams& p, float* img, std::size_t h,
                     std::size_t w, std::size_t c, std::vector<float>& scratch) {
  const std::size_t n = h * w * c;
  if (n == 0) return;
  std::array<double, 4> a;
  std::array<double, 2> b;
  if (keras_matrix(p, h, w, a, b)) {
    scratch.assign(img, img + n);
    affine_warp(scratch.data(), img, h, w, c, a, b, config.fill_mode, static_cast<float>(config.cval),
                config.interpolation_order);
  }
  if (p.has_channel_shift) {
    // Keras adds the same intensity to every channel and clips to the image's own min and max.
    float mn = img[0], mx = img[0];
    for (std::size_t i = 1; i < n; ++i) {
      mn = std::min(mn, img[i]);
      mx = std::max(mx, img[i]);
    }
    for (std::size_t i = 0; i < n; ++i) {
      const double v = static_cast<double>(img[i]) + p.channel_shift_intensity;
      img[i] = static_cast<float>(std::clamp(v, static_cast<double>(mn), static_cast<double>(mx)));
    }
  }
  if (p.flip_horizontal) flip_columns(img, h, w, c);
  if (p.flip_vertical) flip_rows(img, h, w, c);
  if (p.has_brightness) brightness_shift(img, n, c, p.brightness);
}

// ---------------------------------------------------------------------------------------------
// standardize

void standardize(const AugmentConfig& config, float* x, std::size_t count, std::size_t c) {
  if (count == 0) return;
  if (config.rescale != 0) {
    const float r = static_cast<float>(config.rescale);
    for (std::size_t i = 0; i < count; ++i) x[i] *= r;
  }
  if (config.samplewise_center) {
    double sum = 0;
    for (std::size_t i = 0; i < count; ++i) sum += x[i];
    const float mean = static_cast<float>(sum / static_cast<double>(count));
    for (std::size_t i = 0; i < count; ++i) x[i] -= mean;
  }
  if (config.samplewise_std_normalization) {
    double sum = 0, sq = 0;
    for (std::size_t i = 0; i < count; ++i) sum += x[i];
    const double mean = sum / static_cast<double>(count);
    for (std::size_t i = 0; i < count; ++i) sq += (x[i] - mean) * (x[i] - mean);
    const float sd = static_cast<float>(std::sqrt(sq / static_cast<double>(count)));
    const float denom = sd + 1e-6f;
    for (std::size_t i = 0; i < count; ++i) x[i] /= denom;
  }
  auto check = [&](const std::vector<float>& v, const char* what) {
    if (v.size() != count && !(c > 0 && v.size() == c))
      fail<ValueError>("the featurewise ", what, " has ", v.size(), " values but the image has ", count);
  };
  if (config.featurewise_center && !config.mean.empty()) {
    check(config.mean, "mean");
    const bool per_channel = config.mean.size() != count;
    for (std::size_t i = 0; i < count; ++i) x[i] -= config.mean[per_channel ? i % c : i];
  }
  if (config.featurewise_std_normalization && !config.std.empty()) {
    check(config.std, "std");
    const bool per_channel = config.std.size() != count;
    for (std::size_t i = 0; i < count; ++i) x[i] /= config.std[per_channel ? i % c : i] + 1e-6f;
  }
}

}  // namespace signcore::data
