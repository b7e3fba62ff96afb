// Keras's ImageDataGenerator, the per-image part: random transform parameters, the affine warp,
// flips, channel and brightness shifts, and standardize. Images are float32 (H, W, C), row-major,
// channels last, with values as loaded (0..255 before `rescale`).
//
// Keras semantics (keras/src/legacy/preprocessing/image.py), matched exactly:
//  - Parameters are drawn with NumPy's legacy RandomState stream (NumpyRandomState below), in Keras's
//    order: theta, tx (height shift), ty (width shift), shear, zx and zy, the two flip coins (always
//    drawn, even when flips are off), the channel shift, the brightness. So a seed gives the numbers
//    Keras gives for the same seed.
//  - One affine warp per image: rotation, then shift, then shear, then zoom, composed about the image
//    centre ((h/2 - 0.5, w/2 - 0.5)) and with the x/y swap Keras applies for channels-last data, so
//    that, as in Keras, `tx` (drawn from height_shift_range and scaled by the height) moves the image
//    along the columns and `ty` along the rows.
//  - The warp samples the input like scipy.ndimage.affine_transform (order 1, bilinear, or order 0)
//    with the same boundary rules. These are NOT OpenCV's border modes, which is why the warp is a
//    plain loop here rather than cv::warpAffine:
//      constant: a sample whose input coordinate falls outside [0, size-1] on either axis is `cval`
//                (no blending with cval at the edge, unlike BORDER_CONSTANT);
//      nearest:  coordinates are clamped to [0, size-1] (same values as BORDER_REPLICATE);
//      reflect:  half-sample symmetric, d c b a | a b c d | d c b a (= BORDER_REFLECT, not
//                BORDER_REFLECT_101, which is scipy's "mirror");
//      wrap:     scipy's "wrap" has period size-1 (the last and first samples coincide), which no
//                OpenCV mode reproduces (BORDER_WRAP has period size, scipy's "grid-wrap").
//    cv::warpAffine would also quantise the sample positions to 1/32 pixel.
//  - Order per image: warp, channel shift, horizontal flip, vertical flip, brightness; then
//    standardize: preprocessing_function (done by the caller), rescale, samplewise centre, samplewise
//    std (divide by std + 1e-6), featurewise centre, featurewise std (divide by std + 1e-6).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace signcore::data {

// The stream of numpy.random.RandomState (MT19937 with NumPy's legacy seeding and draws), so that a
// seed gives Keras's shuffles and transform parameters. Not thread-safe: one per user.
class NumpyRandomState {
 public:
  static constexpr int kStateSize = 624;
  explicit NumpyRandomState(std::uint32_t seed = 0) { seed_with(seed); }
  // np.random.seed(s) for an integer s in [0, 2**32).
  void seed_with(std::uint32_t s);
  std::uint32_t next_uint32();
  // np.random.random(): 53-bit double in [0, 1).
  double random_sample();
  // np.random.uniform(low, high).
  double uniform(double low, double high);
  // A value in [0, max] by masked rejection: np.random.randint(0, max + 1) and the index draw of
  // np.random.choice / np.random.shuffle.
  std::uint64_t bounded(std::uint64_t max);
  // np.random.permutation(n).
  std::vector<std::size_t> permutation(std::size_t n);

  // The state as numpy's get_state()/set_state() hold it: 624 keys and a position.
  std::array<std::uint32_t, kStateSize> key{};
  int pos = kStateSize;

 private:
  void generate();
};

enum class FillMode { Constant, Nearest, Reflect, Wrap };
// "constant", "nearest", "reflect", "wrap"; ValueError otherwise.
FillMode fill_mode_from_string(const std::string& s);

// width_shift_range / height_shift_range as Keras reads them.
struct ShiftRange {
  bool enabled = false;        // the range is truthy (non-zero number or non-empty list)
  bool from_choices = false;   // an int n (choices 0..n-1) or a list: one value drawn, random sign
  double range = 0;            // a float r: uniform in (-r, r)
  std::vector<double> choices;
  bool fraction = false;       // max(range) < 1: the draw is a fraction of the image size
};

struct AugmentConfig {
  double rotation_range = 0;   // degrees
  ShiftRange width_shift, height_shift;
  double shear_range = 0;      // degrees
  double zoom_low = 1, zoom_high = 1;
  double channel_shift_range = 0;
  bool horizontal_flip = false, vertical_flip = false;
  bool has_brightness = false;
  double brightness_low = 0, brightness_high = 0;
  FillMode fill_mode = FillMode::Nearest;
  double cval = 0;
  int interpolation_order = 1;  // 0 (nearest) or 1 (bilinear)

  double rescale = 0;  // 0: none (Keras: `if self.rescale:`)
  bool samplewise_center = false, samplewise_std_normalization = false;
  bool featurewise_center = false, featurewise_std_normalization = false;
  // Featurewise statistics broadcast to the full (H, W, C) image; empty: not fitted (step skipped).
  std::vector<float> mean, std;

  // ValueError for an out-of-range setting.
  void validate() const;
};

// One image's random transform (Keras's transform_parameters dict).
struct TransformParams {
  double theta = 0, tx = 0, ty = 0, shear = 0, zx = 1, zy = 1;
  bool flip_horizontal = false, flip_vertical = false;
  bool has_channel_shift = false;
  double channel_shift_intensity = 0;
  bool has_brightness = false;
  double brightness = 0;
};

// Keras's get_random_transform for an image of h rows and w columns.
TransformParams draw_transform(const AugmentConfig& config, NumpyRandomState& rng, std::size_t h,
                               std::size_t w);

// Keras's apply_transform, in place. img: (h, w, c). `scratch` is reused between calls.
// ValueError when a brightness shift is asked of an image whose channel count is not 1, 3 or 4.
void apply_transform(const AugmentConfig& config, const TransformParams& p, float* img, std::size_t h,
                     std::size_t w, std::size_t c, std::vector<float>& scratch);

// Keras's standardize without the preprocessing_function, in place, on `count` values whose last
// axis has c channels (one image, or a batch treated as one sample as Keras does). The featurewise
// statistics must then have `count` values (ValueError otherwise).
void standardize(const AugmentConfig& config, float* x, std::size_t count, std::size_t c);

// The affine warp alone (scipy.ndimage.affine_transform per channel): out(r, k) samples src at
// (a[0] r + a[1] k + b[0], a[2] r + a[3] k + b[1]). src and dst: (h, w, c), distinct.
void affine_warp(const float* src, float* dst, std::size_t h, std::size_t w, std::size_t c,
                 const std::array<double, 4>& a, const std::array<double, 2>& b, FillMode mode,
                 float cval, int order);

}  // namespace signcore::data
