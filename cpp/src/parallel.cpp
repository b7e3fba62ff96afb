#include "signcore/parallel.hpp"

#include <omp.h>

#include <algorithm>
#include <thread>

#include "signcore/errors.hpp"

extern "C" {
void openblas_set_num_threads(int);
int openblas_get_num_threads(void);
char* openblas_get_config(void);
char* openblas_get_corename(void);
}

namespace signcore {
namespace {
int default_threads() {
  const unsigned hw = std::thread::hardware_concurrency();
  return std::max(1, static_cast<int>(hw));
}
int& thread_count() {
  static int n = [] {
    const int d = std::min(default_threads(), std::max(1, openblas_get_num_threads()));
    openblas_set_num_threads(d);
    omp_set_num_threads(d);
    return d;
  }();
  return n;
}
}  // namespace

void set_num_threads(int n) {
  if (n < 1) fail<ValueError>("set_num_threads needs a positive thread count. Received: n=", n);
  thread_count() = n;
  openblas_set_num_threads(n);
  omp_set_num_threads(n);
}

int get_num_threads() { return thread_count(); }

SingleThreadedBlas::SingleThreadedBlas() { openblas_set_num_threads(1); }
SingleThreadedBlas::~SingleThreadedBlas() { openblas_set_num_threads(get_num_threads()); }

std::string blas_info() {
  return std::string("OpenBLAS ") + openblas_get_config() + " (core " + openblas_get_corename() +
         ")";
}

}  // namespace signcore
