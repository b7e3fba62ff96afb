#include "signcore/tensor.hpp"

#include <sstream>

namespace signcore {

std::size_t shape_size(const Shape& shape) {
  std::size_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape, bool with_batch_none) {
  std::ostringstream os;
  os << '(';
  if (with_batch_none) os << "None" << (shape.empty() ? "" : ", ");
  for (std::size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  if (!with_batch_none && shape.size() == 1) os << ',';
  os << ')';
  return os.str();
}

Shape with_batch(std::size_t n, const Shape& shape) {
  Shape s;
  s.reserve(shape.size() + 1);
  s.push_back(n);
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

Shape shape_of(const Tensor& t) { return Shape(t.shape().begin(), t.shape().end()); }

void ensure_shape(Tensor& t, const Shape& shape) {
  if (t.dimension() == shape.size() && std::equal(shape.begin(), shape.end(), t.shape().begin()))
    return;
  t.resize(shape);  // xtensor keeps the buffer when the size is unchanged
}

std::size_t ArrayView::row_size() const {
  std::size_t n = 1;
  for (std::size_t i = 1; i < shape.size(); ++i) n *= shape[i];
  return n;
}

}  // namespace signcore
