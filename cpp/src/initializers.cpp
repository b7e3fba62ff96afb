// Keras initialisers by name. Every draw comes from the caller's Rng so a seeded run is reproducible.
#include "signcore/initializers.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <mutex>
#include <random>
#include <utility>
#include <vector>

#include "signcore/errors.hpp"

namespace signcore {

namespace {

enum class Init { GlorotUniform, GlorotNormal, HeUniform, HeNormal, LecunUniform, LecunNormal,
                  Orthogonal, Zeros, Ones, RandomNormal, RandomUniform };

// Keras accepts both the function name ("glorot_uniform") and the class name ("GlorotUniform").
bool lookup(const std::string& name, Init& out) {
  static const std::pair<const char*, Init> table[] = {
      {"glorot_uniform", Init::GlorotUniform}, {"GlorotUniform", Init::GlorotUniform},
      {"glorot_normal", Init::GlorotNormal},   {"GlorotNormal", Init::GlorotNormal},
      {"he_uniform", Init::HeUniform},         {"HeUniform", Init::HeUniform},
      {"he_normal", Init::HeNormal},           {"HeNormal", Init::HeNormal},
      {"lecun_uniform", Init::LecunUniform},   {"LecunUniform", Init::LecunUniform},
      {"lecun_normal", Init::LecunNormal},     {"LecunNormal", Init::LecunNormal},
      {"orthogonal", Init::Orthogonal},        {"Orthogonal", Init::Orthogonal},
      {"zeros", Init::Zeros},                  {"Zeros", Init::Zeros},
      {"ones", Init::Ones},                    {"Ones", Init::Ones},
      {"random_normal", Init::RandomNormal},   {"RandomNormal", Init::RandomNormal},
      {"random_uniform", Init::RandomUniform}, {"RandomUniform", Init::RandomUniform},
  };
  for (const auto& [key, kind] : table)
    if (name == key) {
      out = kind;
      return true;
    }
  return false;
}

// Keras compute_fans: rank 0 -> (1, 1); rank 1 -> (n, n); rank 2 -> (in, out);
// rank > 2 -> receptive field times the last two axes.
void compute_fans(const Shape& shape, double& fan_in, double& fan_out) {
  if (shape.empty()) {
    fan_in = fan_out = 1;
  } else if (shape.size() == 1) {
    fan_in = fan_out = static_cast<double>(shape[0]);
  } else {
    double receptive = 1;
    for (std::size_t i = 0; i + 2 < shape.size(); ++i) receptive *= static_cast<double>(shape[i]);
    fan_in = receptive * static_cast<double>(shape[shape.size() - 2]);
    fan_out = receptive * static_cast<double>(shape.back());
  }
}

void fill_uniform(float* out, std::size_t n, double limit, Rng& rng) {
  std::uniform_real_distribution<double> dist(-limit, limit);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(dist(rng));
}

// Keras's truncated normal: draws beyond two standard deviations are redrawn.
void fill_truncated_normal(float* out, std::size_t n, double stddev, Rng& rng) {
  std::normal_distribution<double> dist(0.0, 1.0);
  for (std::size_t i = 0; i < n; ++i) {
    double z;
    do z = dist(rng);
    while (std::abs(z) > 2.0);
    out[i] = static_cast<float>(z * stddev);
  }
}

// Variance scaling with mode fan_in (he, lecun) or fan_avg (glorot).
void variance_scaling(const Shape& shape, float* out, Rng& rng, double scale, bool fan_avg,
                      bool normal) {
  double fan_in, fan_out;
  compute_fans(shape, fan_in, fan_out);
  const double n = std::max(1.0, fan_avg ? (fan_in + fan_out) / 2.0 : fan_in);
  const std::size_t count = shape_size(shape);
  if (normal) {
    // 0.8796... is the stddev of a unit normal truncated to [-2, 2].
    fill_truncated_normal(out, count, std::sqrt(scale / n) / 0.87962566103423978, rng);
  } else {
    fill_uniform(out, count, std::sqrt(3.0 * scale / n), rng);
  }
}

// Orthogonal (gain 1): reduced QR of a normal (max(R, C), min(R, C)) matrix by modified Gram-Schmidt
// (run twice for orthogonality to working precision), q * sign(diag(r)), transposed when R < C,
// where R = prod(shape[:-1]) and C = shape[-1].
void orthogonal(const Shape& shape, float* out, Rng& rng) {
  if (shape.size() < 2)
    fail<ValueError>("The orthogonal initializer needs a tensor of rank >= 2. Received: shape=",
                     shape_str(shape, false));
  std::size_t rows = 1;
  for (std::size_t i = 0; i + 1 < shape.size(); ++i) rows *= shape[i];
  const std::size_t cols = shape.back();
  const std::size_t m = std::max(rows, cols), k = std::min(rows, cols);
  if (m * k == 0) return;

  // a: (m, k), stored column-major so each column is contiguous.
  std::vector<double> a(m * k);
  std::normal_distribution<double> dist(0.0, 1.0);
  for (std::size_t i = 0; i < m; ++i)
    for (std::size_t j = 0; j < k; ++j) a[j * m + i] = dist(rng);

  for (std::size_t j = 0; j < k; ++j) {
    double* qj = a.data() + j * m;
    for (int pass = 0; pass < 2; ++pass) {
      for (std::size_t p = 0; p < j; ++p) {
        const double* qp = a.data() + p * m;
        double dot = 0;
        for (std::size_t i = 0; i < m; ++i) dot += qp[i] * qj[i];
        for (std::size_t i = 0; i < m; ++i) qj[i] -= dot * qp[i];
      }
    }
    double norm = 0;
    for (std::size_t i = 0; i < m; ++i) norm += qj[i] * qj[i];
    norm = std::sqrt(norm);
    // r_jj = norm > 0, so sign(diag(r)) = +1 and q needs no sign flip. A zero column (probability 0)
    // is left as zeros rather than dividing by zero.
    if (norm > 0)
      for (std::size_t i = 0; i < m; ++i) qj[i] /= norm;
  }

  // q: (m, k). Output (rows, cols) is q when rows >= cols, else q^T.
  for (std::size_t r = 0; r < rows; ++r)
    for (std::size_t c = 0; c < cols; ++c) {
      const double v = rows >= cols ? a[c * m + r] : a[r * m + c];
      out[r * cols + c] = static_cast<float>(v);
    }
}

std::mutex& registry_mutex() {
  static std::mutex m;
  return m;
}

std::map<std::string, InitializerFn>& registry() {
  static std::map<std::string, InitializerFn> r;
  return r;
}

// The registered initialiser `name` into *fn (if fn is not null); false if there is none.
bool find_registered(const std::string& name, InitializerFn* fn) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  const auto it = registry().find(name);
  if (it == registry().end()) return false;
  if (fn) *fn = it->second;
  return true;
}

}  // namespace

void register_initializer(const std::string& name, InitializerFn fn) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry()[name] = std::move(fn);
}

void check_initializer(const std::string& name) {
  Init kind = Init::Zeros;
  if (!lookup(name, kind) && !find_registered(name, nullptr))
    fail<ValueError>("Unknown initializer. Expected one of glorot_uniform, glorot_normal, he_uniform, "
                     "he_normal, lecun_uniform, lecun_normal, orthogonal, zeros, ones, random_normal, "
                     "random_uniform. Received: initializer='", name, "'");
}

void initialize(const std::string& name, const Shape& shape, float* out, Rng& rng) {
  Init kind = Init::Zeros;
  if (!lookup(name, kind)) {
    InitializerFn fn;
    if (find_registered(name, &fn)) {
      fn(shape, out, rng);
      return;
    }
    check_initializer(name);  // throws
  }
  const std::size_t n = shape_size(shape);
  switch (kind) {
    case Init::GlorotUniform: variance_scaling(shape, out, rng, 1.0, true, false); break;
    case Init::GlorotNormal: variance_scaling(shape, out, rng, 1.0, true, true); break;
    case Init::HeUniform: variance_scaling(shape, out, rng, 2.0, false, false); break;
    case Init::HeNormal: variance_scaling(shape, out, rng, 2.0, false, true); break;
    case Init::LecunUniform: variance_scaling(shape, out, rng, 1.0, false, false); break;
    case Init::LecunNormal: variance_scaling(shape, out, rng, 1.0, false, true); break;
    case Init::Orthogonal: orthogonal(shape, out, rng); break;
    case Init::Zeros: std::fill(out, out + n, 0.f); break;
    case Init::Ones: std::fill(out, out + n, 1.f); break;
    case Init::RandomNormal: {
      std::normal_distribution<double> dist(0.0, 0.05);
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(dist(rng));
      break;
    }
    case Init::RandomUniform: fill_uniform(out, n, 0.05, rng); break;
  }
}

}  // namespace signcore
