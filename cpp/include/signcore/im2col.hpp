// Patch extraction for convolutions over channels-last data: im2col and its adjoint col2im.
// Shared by Conv2D and (later) Conv3D and ConvLSTM2D.
//
// A convolution is a matrix product once the receptive fields are laid out as rows:
//   x: (N, D, H, W, C)  --im2col-->  cols: (N * OD * OH * OW, K),  K = kd * kh * kw * C
//   y = cols W,  W: (K, F)   (the Keras kernel (kd, kh, kw, C, F) is already this matrix)
// Row r of cols is output position r in (n, od, oh, ow) order, i.e. the row of y it produces; its
// columns are the receptive field in (kd, kh, kw, c) order, zeros where it falls in the padding.
// 2-D convolutions use depth 1 (in = kernel = out = 1 along d), so everything below serves both.
//
// Work is counted in output lines: a line is one (n, od, oh) triple, i.e. OW consecutive rows of
// cols (and of y). Callers process a batch in chunks of whole lines, so a chunk of cols stays small
// (it is the only O(K) sized buffer) while each GEMM on it stays large.
//
// im2col and col2im run in parallel with parallel_for (parallel.hpp) and never call BLAS. Their
// _part variants do one share of the same work serially on the calling thread, for callers that
// fuse patch extraction with other work in one parallel region: running parts 0..parts-1 (in any
// order, on any threads) equals one call of the parallel version.
#pragma once

#include <cstddef>
#include <string>

namespace signcore {

enum class ConvPadding { Valid, Same };

// "valid" / "same" (case-insensitive) -> ConvPadding; ValueError naming the value otherwise.
ConvPadding parse_conv_padding(const std::string& padding);
std::string conv_padding_name(ConvPadding padding);

// One spatial axis of a convolution, with Keras's (TensorFlow's) output size and padding rules.
struct ConvAxis {
  std::size_t in = 1, kernel = 1, stride = 1, dilation = 1;
  std::size_t pad_before = 0;  // zeros before the input (top / left / front)
  std::size_t out = 1;         // output size; 0 when the input is too small (callers raise)

  // Extent of the dilated kernel: (kernel - 1) * dilation + 1.
  std::size_t span() const { return (kernel - 1) * dilation + 1; }

  // valid: out = floor((in - span) / stride) + 1, or 0 when in < span; no padding.
  // same:  out = ceil(in / stride); total padding max(0, (out - 1) * stride + span - in), split
  //        with the extra pixel after (bottom / right), as Keras and TensorFlow do.
  static ConvAxis make(std::size_t in, std::size_t kernel, std::size_t stride, std::size_t dilation,
                       ConvPadding padding);
};

// The per-sample geometry of one convolution.
struct ConvGeometry {
  ConvAxis d, h, w;          // depth (all 1 for 2-D), height, width
  std::size_t channels = 0;  // C

  std::size_t rows() const { return d.out * h.out * w.out; }  // output positions per sample
  std::size_t lines() const { return d.out * h.out; }         // output lines per sample
  std::size_t patch() const { return d.kernel * h.kernel * w.kernel * channels; }  // K
  std::size_t in_size() const { return d.in * h.in * w.in * channels; }           // per sample
  // A 1x1(x1) kernel with stride 1 and no padding: x itself is the column matrix (K = C).
  bool is_pointwise() const;
};

// 2-D geometry (depth 1) for x: (N, H, W, C) and a (kh, kw) kernel.
ConvGeometry conv_geometry_2d(std::size_t H, std::size_t W, std::size_t C, std::size_t kh,
                              std::size_t kw, std::size_t sh, std::size_t sw, std::size_t dh,
                              std::size_t dw, ConvPadding padding);

// Writes the rows of output lines [line_begin, line_end) (counted over the whole batch: line
// l is sample l / lines(), line l % lines() within it) into cols, which receives
// (line_end - line_begin) * w.out rows of patch() floats. x: the whole batch, (N, D, H, W, C).
void im2col(const ConvGeometry& g, const float* x, std::size_t line_begin, std::size_t line_end,
            float* cols);
void im2col_part(const ConvGeometry& g, const float* x, std::size_t line_begin,
                 std::size_t line_end, float* cols, std::size_t part, std::size_t parts);

// The adjoint of im2col: scatters the rows of output lines [line_begin, line_end), given in dcols
// ((line_end - line_begin) * w.out rows of patch() floats), back onto the input positions they were
// read from, summing overlaps. dx: the whole batch, (N, D, H, W, C).
//   accumulate = true:  dx += col2im(dcols); dx must have been initialised (e.g. zeroed).
//   accumulate = false: the lines must cover whole samples (line_begin and line_end multiples of
//                       lines()); dx of those samples is overwritten (positions no window reads
//                       get 0), with no separate zeroing pass.
// Parallel over input lines (each written by one thread, as a gather), so any chunk of lines runs
// on all threads, even within one sample.
void col2im(const ConvGeometry& g, const float* dcols, std::size_t line_begin, std::size_t line_end,
            float* dx, bool accumulate);
void col2im_part(const ConvGeometry& g, const float* dcols, std::size_t line_begin,
                 std::size_t line_end, float* dx, bool accumulate, std::size_t part,
                 std::size_t parts);

}  // namespace signcore
