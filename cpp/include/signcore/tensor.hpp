// Tensors: float32, row-major, channels-last. Aliases over xtensor plus the shape helpers every
// layer needs. Hot loops take raw pointers from `.data()`; xtensor is for storage, shapes and glue.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace signcore {

using Tensor = xt::xarray<float, xt::layout_type::row_major>;
// A shape. Layer shapes omit the batch axis; tensor shapes include it.
using Shape = std::vector<std::size_t>;

// Number of elements of a shape (1 for the empty shape).
std::size_t shape_size(const Shape& shape);

// "(None, 28, 28, 1)" for a layer shape (batch shown as None), "(32, 10)" for a tensor shape.
std::string shape_str(const Shape& shape, bool with_batch_none = true);

// (n,) + shape
Shape with_batch(std::size_t n, const Shape& shape);

// The shape of a tensor as a Shape.
Shape shape_of(const Tensor& t);

// Resize `t` to `shape`, reusing its buffer when the element count is unchanged.
void ensure_shape(Tensor& t, const Shape& shape);

// A read-only view of caller-owned float32 memory (a NumPy array): no copy is made.
struct ArrayView {
  const float* data = nullptr;
  Shape shape;  // batch axis first
  std::size_t rows() const { return shape.empty() ? 0 : shape[0]; }
  std::size_t row_size() const;  // elements per sample
};

}  // namespace signcore
