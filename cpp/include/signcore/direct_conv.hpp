// Direct convolution for channels-last data, without im2col: the forward pass, the input gradient
// and the kernel gradient.
//
// y(n, od, oh, ow, f) = b(f) + sum over (kd, kh, kw, c) of x(n, id, ih, iw, c) W(kd, kh, kw, c, f)
// with (id, ih, iw) = (od, oh, ow) * stride + (kd, kh, kw) * dilation - pad_before; positions in the
// padding contribute zero. The kernel keeps a block of P output pixels x 8V filters in AVX2
// registers and runs over the receptive field once, broadcasting one input value per pixel and
// channel against 8V filters of the kernel row (one FMA per register). Nothing like the
// (kh kw)-times larger column matrix of im2col is written, which is what makes im2col + SGEMM slow
// when the filters are few (the GEMM is narrow and packing the columns costs as much as using them).
// For few channels (an RGB or grey input), undilated along the width, the kw taps of a pixel read
// one stretch of kw C consecutive floats, run as one loop (9 values for an RGB image, not 3 x 3).
//
// Used for the forward pass of Conv2D / Conv3D when direct_conv_supported() (an AVX2 + FMA build and
// F a multiple of 8), and in the backward pass where conv2d.cpp's rules pick it.
//
// The input gradient of a stride-1 convolution is a convolution too:
//   dx(n, i, c) = sum over taps k and filters f of dz(n, i + pad - k * dilation, f) W(k, c, f)
// which is a stride-1 convolution of dz (F channels) with the kernel flipped in space and
// transposed to (taps, F, C), padded by (span - 1) - pad_before, whose output has x's size. That
// replaces dcols = dz W^T (a GEMM whose inner dimension is only F, writing kh * kw values per input
// value) and col2im (reading them back), and runs at the forward kernel's rate.
//
// The kernel gradient dW(k, c, f) = sum over pixels of x(pixel's input through tap k, c) dz(pixel, f)
// keeps R channels x 8V filters of one tap in registers while it runs over the pixels of a tile of
// lines (one load of dz per 8 filters and one broadcast per channel per pixel), replacing im2col and
// dW += cols^T dz.
#pragma once

#include <cstddef>
#include <cstdint>

#include "signcore/im2col.hpp"

namespace signcore {

// Whether direct_conv_lines can run this convolution on this build.
bool direct_conv_supported(const ConvGeometry& g, std::size_t filters);

// The kernel W (kd, kh, kw, C, F) rearranged for direct_conv_lines into `packed` (K F floats,
// K = g.patch()): one contiguous (K, B) panel per block of B filters.
void direct_conv_pack(const ConvGeometry& g, const float* W, std::size_t filters, float* packed);

// Output lines [line_begin, line_end) of the whole batch (as in im2col.hpp: line l is sample
// l / lines(), line l % lines() within it): y rows = conv(x) + b, then max(., 0) when relu.
// x: (N, D, H, W, C); W: the kernel packed by direct_conv_pack; b: (F,) or null; y: the rows of
// those lines only ((line_end - line_begin) OW rows of F: a slice of the (N, OD, OH, OW, F) output,
// or a buffer of its own). Serial: the caller splits the lines between threads.
void direct_conv_lines(const ConvGeometry& g, const float* x, const float* W, const float* b,
                       bool relu, std::size_t filters, std::size_t line_begin,
                       std::size_t line_end, float* y);

// The kernel gradient over output lines [line_begin, line_end) of the batch:
//   dW(k, c, f) += sum over those lines' pixels p of x(input position p reads through tap k, c) dz(p, f)
// x: (N, D, H, W, C), the whole batch; dz: the rows of those lines only ((line_end - line_begin)
// OW rows of F); dW: (K, F), accumulated into. Same support as direct_conv_lines (F a multiple of
// 8), any stride, dilation and padding. Serial: threads take disjoint lines and their own dW.
void direct_conv_kernel_gradient(const ConvGeometry& g, const float* x, const float* dz,
                                 std::size_t filters, std::size_t line_begin, std::size_t line_end,
                                 float* dW);

// Epilogues for Convolution::forward_pooled_training, on output lines still in cache (F a multiple
// of 8, as for direct_conv_lines). Window extremes: over the window [0, rows) x [w0, w1) of
// `lines` (rows of OW F floats, output line h0 first), per channel f the cell whose v maximises
// sign[f] v, first in window order, a NaN taking over (MaxPooling's rule); values[f] = its v,
// at[f] = its offset within the sample, ((h0 + h) OW + w) F + f.
void direct_conv_window_extremes(const float* lines, std::size_t rows, std::size_t h0, std::size_t OW,
                                 std::size_t w0, std::size_t w1, std::size_t F, const float* sign,
                                 float* values, std::int32_t* at);
// Line sums: sums[f] = sum over the `pixels` rows of y of (v - shift[f]), sums[F + f] = the sum
// of the squares (accumulated in float along the line, stored in double).
void direct_conv_line_sums(const float* y, std::size_t pixels, std::size_t F, const float* shift,
                           double* sums);

// The geometry of that input-gradient convolution for the stride-1 convolution g with F filters:
// input dz (OD, OH, OW, F), output (D, H, W), same kernel and dilation.
ConvGeometry transposed_geometry(const ConvGeometry& g, std::size_t filters);

// W (taps, C, F) flipped in space and transposed into `flipped` (taps, F, C): the kernel of that
// input-gradient convolution, unpacked.
void flip_transposed_kernel(const ConvGeometry& g, const float* W, std::size_t filters, float* flipped);

// W (taps, C, F) flipped and transposed to (taps, F, C), then packed by direct_conv_pack for
// transposed_geometry(g, F) with C filters. `packed`: K F floats.
void direct_conv_pack_transposed(const ConvGeometry& g, const float* W, std::size_t filters,
                                 float* packed);

}  // namespace signcore
