#include "signcore/im2col.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "signcore/errors.hpp"
#include "signcore/parallel.hpp"

namespace signcore {

ConvPadding parse_conv_padding(const std::string& padding) {
  std::string p = padding;
  for (auto& ch : p) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (p == "valid") return ConvPadding::Valid;
  if (p == "same") return ConvPadding::Same;
  fail<ValueError>("The `padding` argument must be one of \"valid\", \"same\". Received: padding=",
                   padding);
}

std::string conv_padding_name(ConvPadding padding) {
  return padding == ConvPadding::Same ? "same" : "valid";
}

ConvAxis ConvAxis::make(std::size_t in, std::size_t kernel, std::size_t stride,
                        std::size_t dilation, ConvPadding padding) {
  ConvAxis a;
  a.in = in;
  a.kernel = kernel;
  a.stride = stride;
  a.dilation = dilation;
  const std::size_t span = a.span();
  if (padding == ConvPadding::Valid) {
    a.out = in >= span ? (in - span) / stride + 1 : 0;
    a.pad_before = 0;
  } else {
    a.out = (in + stride - 1) / stride;
    const std::size_t needed = a.out == 0 ? 0 : (a.out - 1) * stride + span;
    const std::size_t total = needed > in ? needed - in : 0;
    a.pad_before = total / 2;  // the odd pixel goes after
  }
  return a;
}

bool ConvGeometry::is_pointwise() const {
  for (const ConvAxis* a : {&d, &h, &w})
    if (a->kernel != 1 || a->stride != 1 || a->pad_before != 0 || a->out != a->in) return false;
  return true;
}

ConvGeometry conv_geometry_2d(std::size_t H, std::size_t W, std::size_t C, std::size_t kh,
                              std::size_t kw, std::size_t sh, std::size_t sw, std::size_t dh,
                              std::size_t dw, ConvPadding padding) {
  ConvGeometry g;
  g.d = ConvAxis::make(1, 1, 1, 1, ConvPadding::Valid);
  g.h = ConvAxis::make(H, kh, sh, dh, padding);
  g.w = ConvAxis::make(W, kw, sw, dw, padding);
  g.channels = C;
  return g;
}

namespace {

using Index = std::ptrdiff_t;

// The kernel columns kj whose input column iw0 + kj * dil lies inside [0, W): [lo, hi).
inline void valid_taps(Index iw0, Index dil, Index k, Index W, Index& lo, Index& hi) {
  lo = iw0 >= 0 ? 0 : std::min<Index>(k, (-iw0 + dil - 1) / dil);
  hi = iw0 < W ? std::min<Index>(k, (W - 1 - iw0) / dil + 1) : 0;
  if (hi < lo) hi = lo;
}

// Short runs (C or kw * C floats, often 3 to 100) are the whole work of both functions; plain
// loops over restrict pointers, which the compiler vectorises (or turns into memcpy / memset).
inline void copy_run(float* __restrict d, const float* __restrict s, Index n) {
  for (Index i = 0; i < n; ++i) d[i] = s[i];
}
inline void zero_run(float* __restrict d, Index n) {
  for (Index i = 0; i < n; ++i) d[i] = 0.f;
}
inline void add_run(float* __restrict d, const float* __restrict s, Index n) {
  for (Index i = 0; i < n; ++i) d[i] += s[i];
}

// Work per parallel chunk: at least this many floats moved, so tiny convolutions stay serial.
constexpr std::size_t kGrainFloats = 1 << 14;

}  // namespace

// One output line (n, od, oh): OW rows of K floats. For each row and each (kd, kh) tap, the kw
// taps read C floats each from one input line; with dilation 1 they are one contiguous run of
// (valid taps) * C floats, copied at once, with zeros for the taps in the padding.
// Serial: lines [b, e) (chunk-relative) of the chunk starting at line_begin.
static void im2col_lines(const ConvGeometry& g, const float* x, std::size_t line_begin,
                         std::size_t b, std::size_t e, float* cols) {
  const Index C = static_cast<Index>(g.channels), K = static_cast<Index>(g.patch());
  const Index D = g.d.in, H = g.h.in, W = g.w.in;
  const Index OH = g.h.out, OW = g.w.out;
  const Index KD = g.d.kernel, KH = g.h.kernel, KW = g.w.kernel;
  const Index sd = g.d.stride, sh = g.h.stride, sw = g.w.stride;
  const Index dd = g.d.dilation, dh = g.h.dilation, dw = g.w.dilation;
  const Index pd = g.d.pad_before, ph = g.h.pad_before, pw = g.w.pad_before;
  const std::size_t lines = g.lines(), in_size = g.in_size();
  const std::size_t line_floats = static_cast<std::size_t>(OW * K);
  for (std::size_t l = line_begin + b; l < line_begin + e; ++l) {
    const std::size_t n = l / lines, lw = l % lines;
    const Index od = static_cast<Index>(lw) / OH, oh = static_cast<Index>(lw) % OH;
    const float* xn = x + n * in_size;
    float* out = cols + (l - line_begin) * line_floats;
    for (Index ow = 0; ow < OW; ++ow) {
      float* row = out + ow * K;
      const Index iw0 = ow * sw - pw;
      Index lo, hi;
      valid_taps(iw0, dw, KW, W, lo, hi);
      for (Index kd = 0; kd < KD; ++kd) {
        const Index id = od * sd - pd + kd * dd;
        for (Index ki = 0; ki < KH; ++ki) {
          const Index ih = oh * sh - ph + ki * dh;
          float* seg = row + (kd * KH + ki) * KW * C;
          if (id < 0 || id >= D || ih < 0 || ih >= H) {
            zero_run(seg, KW * C);
            continue;
          }
          const float* xl = xn + ((id * H + ih) * W) * C;
          zero_run(seg, lo * C);
          if (dw == 1) {
            copy_run(seg + lo * C, xl + (iw0 + lo) * C, (hi - lo) * C);
          } else {
            for (Index kj = lo; kj < hi; ++kj) copy_run(seg + kj * C, xl + (iw0 + kj * dw) * C, C);
          }
          zero_run(seg + hi * C, (KW - hi) * C);
        }
      }
    }
  }
}

void im2col(const ConvGeometry& g, const float* x, std::size_t line_begin, std::size_t line_end,
            float* cols) {
  if (line_end <= line_begin) return;
  const std::size_t line_floats = g.w.out * g.patch();
  const std::size_t grain = std::max<std::size_t>(1, kGrainFloats / std::max<std::size_t>(1, line_floats));
  parallel_for(line_end - line_begin, grain, [&](std::size_t b, std::size_t e) {
    im2col_lines(g, x, line_begin, b, e, cols);
  });
}

void im2col_part(const ConvGeometry& g, const float* x, std::size_t line_begin,
                 std::size_t line_end, float* cols, std::size_t part, std::size_t parts) {
  if (line_end <= line_begin || parts == 0 || part >= parts) return;
  const std::size_t n = line_end - line_begin;
  im2col_lines(g, x, line_begin, n * part / parts, n * (part + 1) / parts, cols);
}

// A gather over input lines (n, id, ih): each is written by exactly one thread, which adds the
// matching segments of every output line in [line_begin, line_end) that read it. The input line
// (W * C floats) stays in L1 while the rows of dcols stream past.
namespace {

struct Col2im {
  const ConvGeometry& g;
  const float* dcols;
  std::size_t line_begin, line_end;
  float* dx;
  bool accumulate;
  std::size_t n0 = 0, in_lines = 0;  // first sample touched; input lines per sample

  Col2im(const ConvGeometry& geom, const float* d, std::size_t lb, std::size_t le, float* out,
         bool acc)
      : g(geom), dcols(d), line_begin(lb), line_end(le), dx(out), accumulate(acc) {
    const std::size_t lines = g.lines();
    if (!accumulate && (line_begin % lines != 0 || line_end % lines != 0))
      fail<ValueError>("col2im: overwriting dx needs whole samples. Received: lines [", line_begin,
                       ", ", line_end, ") with ", lines, " lines per sample");
    n0 = line_begin / lines;
    in_lines = g.d.in * g.h.in;
  }
  // Input lines to visit: every line of the samples the chunk touches.
  std::size_t size() const {
    if (line_end <= line_begin) return 0;
    return ((line_end - 1) / g.lines() + 1 - n0) * in_lines;
  }

  void run(std::size_t b, std::size_t e) const {
    const Index C = static_cast<Index>(g.channels), K = static_cast<Index>(g.patch());
    const Index H = g.h.in, W = g.w.in;
    const Index OD = g.d.out, OH = g.h.out, OW = g.w.out;
    const Index KD = g.d.kernel, KH = g.h.kernel, KW = g.w.kernel;
    const Index sd = g.d.stride, sh = g.h.stride, sw = g.w.stride;
    const Index dd = g.d.dilation, dh = g.h.dilation, dw = g.w.dilation;
    const Index pd = g.d.pad_before, ph = g.h.pad_before, pw = g.w.pad_before;
    const std::size_t lines = g.lines();
    const std::size_t line_floats = static_cast<std::size_t>(OW * K);
    const std::size_t in_line_floats = static_cast<std::size_t>(W * C);
    for (std::size_t il = b; il < e; ++il) {
      const std::size_t n = n0 + il / in_lines, lw = il % in_lines;
      const Index id = static_cast<Index>(lw) / H, ih = static_cast<Index>(lw) % H;
      float* dxl = dx + (n * in_lines + lw) * in_line_floats;
      if (!accumulate) zero_run(dxl, W * C);
      for (Index kd = 0; kd < KD; ++kd) {
        const Index td = id + pd - kd * dd;
        if (td < 0 || td % sd != 0 || td / sd >= OD) continue;
        const Index od = td / sd;
        for (Index ki = 0; ki < KH; ++ki) {
          const Index th = ih + ph - ki * dh;
          if (th < 0 || th % sh != 0 || th / sh >= OH) continue;
          const std::size_t line = n * lines + static_cast<std::size_t>(od * OH + th / sh);
          if (line < line_begin || line >= line_end) continue;
          const float* src = dcols + (line - line_begin) * line_floats + (kd * KH + ki) * KW * C;
          for (Index ow = 0; ow < OW; ++ow) {
            const Index iw0 = ow * sw - pw;
            Index lo, hi;
            valid_taps(iw0, dw, KW, W, lo, hi);
            const float* seg = src + ow * K;
            if (dw == 1) {
              add_run(dxl + (iw0 + lo) * C, seg + lo * C, (hi - lo) * C);
            } else {
              for (Index kj = lo; kj < hi; ++kj) add_run(dxl + (iw0 + kj * dw) * C, seg + kj * C, C);
            }
          }
        }
      }
    }
  }
};

}  // namespace

void col2im(const ConvGeometry& g, const float* dcols, std::size_t line_begin, std::size_t line_end,
            float* dx, bool accumulate) {
  const Col2im job(g, dcols, line_begin, line_end, dx, accumulate);
  const std::size_t n = job.size();
  const std::size_t per_line = g.w.in * g.channels * g.h.kernel * g.d.kernel;
  const std::size_t grain = std::max<std::size_t>(1, kGrainFloats / std::max<std::size_t>(1, per_line));
  parallel_for(n, grain, [&](std::size_t b, std::size_t e) { job.run(b, e); });
}

void col2im_part(const ConvGeometry& g, const float* dcols, std::size_t line_begin,
                 std::size_t line_end, float* dx, bool accumulate, std::size_t part,
                 std::size_t parts) {
  const Col2im job(g, dcols, line_begin, line_end, dx, accumulate);
  if (parts == 0 || part >= parts) return;
  const std::size_t n = job.size();
  job.run(n * part / parts, n * (part + 1) / parts);
}

}  // namespace signcore
