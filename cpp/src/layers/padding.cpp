#include "signcore/layers/padding.hpp"

#include <algorithm>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

namespace {

using Pads = std::array<std::array<long long, 2>, 2>;

std::string pads_str(const Pads& p) {
  return "((" + std::to_string(p[0][0]) + ", " + std::to_string(p[0][1]) + "), (" +
         std::to_string(p[1][0]) + ", " + std::to_string(p[1][1]) + "))";
}

std::array<std::array<std::size_t, 2>, 2> checked_pads(const Pads& p) {
  for (const auto& axis : p)
    for (long long v : axis)
      if (v < 0)
        fail<ValueError>("ZeroPadding2D: `padding` entries must be >= 0. Received: padding=",
                         pads_str(p));
  return {{{static_cast<std::size_t>(p[0][0]), static_cast<std::size_t>(p[0][1])},
           {static_cast<std::size_t>(p[1][0]), static_cast<std::size_t>(p[1][1])}}};
}

constexpr std::size_t kGrain = 1 << 14;  // floats per parallel chunk

}  // namespace

ZeroPadding2D::ZeroPadding2D(Pads padding, const std::string& data_format, std::string name)
    : Layer(std::string()), padding_(checked_pads(padding)) {
  if (!data_format.empty() && data_format != "channels_last")
    fail<ValueError>("signcore's ZeroPadding2D supports data_format=\"channels_last\" only. "
                     "Received: data_format=", data_format);
  name_ = name.empty() ? unique_name("zero_padding2d") : std::move(name);
}

LayerPtr ZeroPadding2D::from_config(const json& c) {
  try {
    Pads p{{{1, 1}, {1, 1}}};
    if (c.contains("padding") && !c["padding"].is_null()) {
      const json& v = c["padding"];
      if (v.is_number_integer()) {
        const long long k = v.get<long long>();
        p = {{{k, k}, {k, k}}};
      } else if (v.is_array() && v.size() == 2) {
        for (int a = 0; a < 2; ++a) {
          if (v[a].is_number_integer()) {
            p[a] = {v[a].get<long long>(), v[a].get<long long>()};
          } else if (v[a].is_array() && v[a].size() == 2) {
            p[a] = {v[a][0].get<long long>(), v[a][1].get<long long>()};
          } else {
            fail<ValueError>("ZeroPadding2D config: bad `padding`. Received: padding=", v.dump());
          }
        }
      } else {
        fail<ValueError>("ZeroPadding2D config: bad `padding`. Received: padding=", v.dump());
      }
    }
    const std::string fmt = c.contains("data_format") && c["data_format"].is_string()
                                ? c["data_format"].get<std::string>() : std::string("channels_last");
    return std::make_shared<ZeroPadding2D>(p, fmt, c.value("name", std::string()));
  } catch (const json::exception& e) {
    fail<ValueError>("Invalid ZeroPadding2D config (", e.what(), "). Received: ", c.dump());
  }
}

json ZeroPadding2D::get_config() const {
  json c = Layer::get_config();
  c["padding"] = {{padding_[0][0], padding_[0][1]}, {padding_[1][0], padding_[1][1]}};
  c["data_format"] = "channels_last";
  return c;
}

// (H, W, C) -> (top + H + bottom, left + W + right, C)
Shape ZeroPadding2D::build(const std::vector<Shape>& input_shapes, Parameters& params) {
  expect_inputs(input_shapes, 1);
  const Shape& in = input_shapes[0];
  if (in.size() != 3)
    fail<ValueError>("Layer '", name_, "' (ZeroPadding2D) expects images of shape (None, height, "
                     "width, channels). Received: input_shape=", shape_str(in));
  input_shape_ = in;
  return {in[0] + padding_[0][0] + padding_[0][1], in[1] + padding_[1][0] + padding_[1][1], in[2]};
}

// x: (N, H, W, C) -> y: (N, OH, OW, C); one output row (OW * C floats) at a time, in parallel.
void ZeroPadding2D::forward(const std::vector<const Tensor*>& inputs, Tensor& y, const Context& ctx) {
  const Tensor& x = *inputs[0];
  const Shape xs = shape_of(x);
  if (xs.size() != 4 || !std::equal(input_shape_.begin(), input_shape_.end(), xs.begin() + 1))
    fail<ValueError>("Layer '", name_, "' (ZeroPadding2D) expects inputs of shape ",
                     shape_str(input_shape_), ". Received: shape=", shape_str(xs, false));
  const std::size_t N = xs[0], H = xs[1], W = xs[2], C = xs[3];
  const std::size_t top = padding_[0][0], left = padding_[1][0];
  const std::size_t OH = output_shape_[0], OW = output_shape_[1];
  ensure_shape(y, {N, OH, OW, C});
  const float* xp = x.data();
  float* yp = y.data();
  const std::size_t row = OW * C;
  parallel_for(N * OH, std::max<std::size_t>(1, kGrain / std::max<std::size_t>(1, row)),
               [&](std::size_t b, std::size_t e) {
                 for (std::size_t r = b; r < e; ++r) {
                   const std::size_t n = r / OH, oh = r % OH;
                   float* yr = yp + r * row;
                   if (oh < top || oh >= top + H) {
                     std::fill(yr, yr + row, 0.f);
                     continue;
                   }
                   const float* xr = xp + (n * H + (oh - top)) * W * C;
                   std::fill(yr, yr + left * C, 0.f);
                   std::copy(xr, xr + W * C, yr + left * C);
                   std::fill(yr + (left + W) * C, yr + row, 0.f);
                 }
               });
}

// dx = dy cropped to the input's window.
void ZeroPadding2D::backward(const Tensor& dy, const std::vector<Tensor*>& dinputs) {
  Tensor* dx = dinputs.empty() ? nullptr : dinputs[0];
  if (!dx) return;
  const std::size_t H = input_shape_[0], W = input_shape_[1], C = input_shape_[2];
  const std::size_t OH = output_shape_[0], OW = output_shape_[1];
  const std::size_t per_sample = OH * OW * C;
  if (per_sample == 0 || dy.size() % per_sample != 0 || dy.dimension() != 4)
    fail<ValueError>("Layer '", name_, "' (ZeroPadding2D): the output gradient has shape ",
                     shape_str(shape_of(dy), false), ", expected (N, ", OH, ", ", OW, ", ", C, ")");
  const std::size_t N = dy.shape()[0];
  ensure_shape(*dx, {N, H, W, C});
  const std::size_t top = padding_[0][0], left = padding_[1][0];
  const float* g = dy.data();
  float* d = dx->data();
  parallel_for(N * H, std::max<std::size_t>(1, kGrain / std::max<std::size_t>(1, W * C)),
               [&](std::size_t b, std::size_t e) {
                 for (std::size_t r = b; r < e; ++r) {
                   const std::size_t n = r / H, h = r % H;
                   const float* src = g + ((n * OH + h + top) * OW + left) * C;
                   std::copy(src, src + W * C, d + r * W * C);
                 }
               });
}

SIGNCORE_REGISTER_LAYER(ZeroPadding2D);

}  // namespace signcore
