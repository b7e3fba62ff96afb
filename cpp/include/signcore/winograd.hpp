// Winograd convolution F(2x2, 3x3) for channels-last data: a 3x3, stride-1, undilated 2-D
// convolution computed two output rows by two output columns at a time with 16 multiplications
// per (channel, filter) pair instead of 36 (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016).
//
// For one output tile Y (2 x 2), its input tile d (4 x 4, starting at the tile's first output
// position minus the padding before) and one 3 x 3 filter g:
//   Y = A^T [ sum over channels of (G g G^T) * (B^T d B) ] A           (* element-wise)
// with
//   B^T = | 1  0 -1  0 |     G = | 1    0    0   |     A^T = | 1  1  1  0 |
//         | 0  1  1  0 |         | 1/2  1/2  1/2 |           | 0  1 -1 -1 |
//         | 0 -1  1  0 |         | 1/2 -1/2  1/2 |
//         | 0  1  0 -1 |         | 0    0    1   |
// The sum over channels is, for each of the 16 positions of the 4 x 4 transformed tile, a matrix
// product (tiles x C) (C x F): winograd_conv_rows transforms a block of tiles into cache, runs
// those 16 products with the direct kernel's AVX2 register block, and transforms the results back,
// adding the bias and applying the relu. The input gradient of such a convolution is one too (of
// dz with the kernel flipped and transposed, direct_conv.hpp), and the kernel gradient is the
// adjoint of the forward pass (winograd_kernel_gradient_rows). The products hold 4/9 of the direct convolution's
// multiply-adds; the transforms add a few additions per input and output value.
//
// The result equals the direct convolution up to float rounding (the transforms sum in a
// different order; the 1/2 in G is exact), within a few ulp of the output's magnitude for the
// small kernels and activations of a network.
#pragma once

#include <cstddef>

#include "signcore/im2col.hpp"

namespace signcore {

// Whether winograd_conv_rows can run this convolution on this build: 2-D, a 3 x 3 kernel, stride
// 1, no dilation, C and F multiples of 8, an AVX2 + FMA build.
bool winograd_supported(const ConvGeometry& g, std::size_t filters);

// Floats of the transformed, packed kernel: 16 C F.
std::size_t winograd_packed_size(const ConvGeometry& g, std::size_t filters);

// The kernel W (3, 3, C, F) transformed (G g G^T per channel and filter) and packed into `packed`
// (winograd_packed_size floats) for winograd_conv_rows.
void winograd_pack(const ConvGeometry& g, const float* W, std::size_t filters, float* packed);

// Rows of output tiles per sample: ceil(OH / 2). Tile row i of a sample holds its output lines
// 2i and 2i + 1 (the last one alone when OH is odd).
std::size_t winograd_tile_rows(const ConvGeometry& g);

// Tile rows [row_begin, row_end) of the batch (row r: sample r / winograd_tile_rows(g), tile row
// r % winograd_tile_rows(g) within it): their output lines = conv(x) + b, then max(., 0) when relu.
// x: (N, H, W, C); U: packed by winograd_pack; b: (F,) or null; y: the output lines of those tile
// rows only, consecutive (a slice of the (N, OH, OW, F) output starting at the first row's first
// line, or a buffer of its own). Serial: the caller splits the rows between threads.
void winograd_conv_rows(const ConvGeometry& g, const float* x, const float* U, const float* b,
                        bool relu, std::size_t filters, std::size_t row_begin, std::size_t row_end,
                        float* y);

// The first output line (counted over the batch) of tile row r.
std::size_t winograd_first_line(const ConvGeometry& g, std::size_t r);

// The kernel gradient, in two steps. Per block of tiles, the adjoint of the forward pass: with
// D = A dz A^T (4 x 4, from the tile's 2 x 2 cells of dL/dz, zero past OH or OW),
//   acc[p](c, f) += sum over the tiles of (B^T d B)[p](c) D[p](f)
// (16 products (C x tiles) (tiles x F), run with the direct kernel gradient's register block); then
// once, dW(., ., c, f) += G^T acc(c, f) G (3 x 3 from 4 x 4).
// winograd_kernel_gradient_rows: tile rows [row_begin, row_end) of the batch; x: the whole batch,
// (N, H, W, C); dz: the output lines of those rows only (as winograd_conv_rows writes y); acc:
// 16 C F floats, (16, C, F), accumulated into. Serial: threads take disjoint rows and their own acc.
void winograd_kernel_gradient_rows(const ConvGeometry& g, const float* x, const float* dz,
                                   std::size_t filters, std::size_t row_begin, std::size_t row_end,
                                   float* acc);
// dW (3, 3, C, F) += the kernel gradient that acc (16, C, F) holds.
void winograd_kernel_gradient_finish(const ConvGeometry& g, const float* acc, std::size_t filters,
                                     float* dW);

}  // namespace signcore
