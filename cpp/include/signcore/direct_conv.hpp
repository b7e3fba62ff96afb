// Direct convolution forward for channels-last data, without im2col.
//
// y(n, od, oh, ow, f) = b(f) + sum over (kd, kh, kw, c) of x(n, id, ih, iw, c) W(kd, kh, kw, c, f)
// with (id, ih, iw) = (od, oh, ow) * stride + (kd, kh, kw) * dilation - pad_before; positions in the
// padding contribute zero. The kernel keeps a block of P output pixels x 8V filters in AVX2
// registers and runs over the receptive field once, broadcasting one input value per pixel and
// channel against 8V filters of the kernel row (one FMA per register). Nothing like the
// (kh kw)-times larger column matrix of im2col is written, which is what makes im2col + SGEMM slow
// when the filters are few (the GEMM is narrow and packing the columns costs as much as using them).
//
// Used for the forward pass of Conv2D / Conv3D when direct_conv_supported() (an AVX2 + FMA build and
// F a multiple of 8); the backward pass keeps im2col + SGEMM.
#pragma once

#include <cstddef>

#include "signcore/im2col.hpp"

namespace signcore {

// Whether direct_conv_lines can run this convolution on this build.
bool direct_conv_supported(const ConvGeometry& g, std::size_t filters);

// The kernel W (kd, kh, kw, C, F) rearranged for direct_conv_lines into `packed` (K F floats,
// K = g.patch()): one contiguous (K, B) panel per block of B filters.
void direct_conv_pack(const ConvGeometry& g, const float* W, std::size_t filters, float* packed);

// Output lines [line_begin, line_end) of the whole batch (as in im2col.hpp: line l is sample
// l / lines(), line l % lines() within it): y rows = conv(x) + b, then max(., 0) when relu.
// x: (N, D, H, W, C); W: the kernel packed by direct_conv_pack; b: (F,) or null;
// y: (N, OD, OH, OW, F). Serial: the caller splits the lines between threads.
void direct_conv_lines(const ConvGeometry& g, const float* x, const float* W, const float* b,
                       bool relu, std::size_t filters, std::size_t line_begin,
                       std::size_t line_end, float* y);

}  // namespace signcore
