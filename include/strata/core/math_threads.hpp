#pragma once
/// \file math_threads.hpp
/// How many threads the math of the calling thread uses: Eigen's products, Strata's OpenMP loops
/// (a per-thread setting; oneDNN's GEMM, STRATA_GEMM_ONEDNN, follows it too) and, where Eigen's
/// GEMM goes to OpenBLAS (EIGEN_USE_BLAS), OpenBLAS's own pool. Products split across threads can
/// round differently from one thread's, so work that must give the same bits wherever it runs (the
/// members of a transfer study, run side by side on threads of their own) fixes this to one.

#include <algorithm>

#include <Eigen/Core>
#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef EIGEN_USE_BLAS
extern "C" void openblas_set_num_threads(int);  // OpenBLAS's own (cblas.h would bring all of CBLAS)
extern "C" int openblas_get_num_threads(void);
#endif

namespace strata {

/// Sets the math threads of the calling thread (Eigen and OpenBLAS: of the whole process).
inline void set_math_threads(int threads) {
  threads = std::max(1, threads);
  Eigen::setNbThreads(threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
#ifdef EIGEN_USE_BLAS
  openblas_set_num_threads(threads);
#endif
}

/// Sets the math threads for its lifetime, then puts back what they were.
class scoped_math_threads {
 public:
  explicit scoped_math_threads(int threads)
      : eigen_(Eigen::nbThreads())
#ifdef _OPENMP
        , openmp_(omp_get_max_threads())
#endif
#ifdef EIGEN_USE_BLAS
        , blas_(openblas_get_num_threads())
#endif
  {
    set_math_threads(threads);
  }
  ~scoped_math_threads() {
    Eigen::setNbThreads(eigen_);
#ifdef _OPENMP
    omp_set_num_threads(openmp_);
#endif
#ifdef EIGEN_USE_BLAS
    openblas_set_num_threads(blas_);
#endif
  }
  scoped_math_threads(const scoped_math_threads&) = delete;
  scoped_math_threads& operator=(const scoped_math_threads&) = delete;

 private:
  int eigen_;
#ifdef _OPENMP
  int openmp_;
#endif
#ifdef EIGEN_USE_BLAS
  int blas_;
#endif
};

}  // namespace strata
