// Compiled with Strata::strata's usage requirements: fails to compile unless EIGEN_USE_BLAS,
// STRATA_GEMM_ONEDNN and -fno-math-errno (GCC and Clang then define __NO_MATH_ERRNO__) are as expected.
#if defined(EIGEN_USE_BLAS) != EXPECT_BLAS
#error "EIGEN_USE_BLAS is not as expected"
#endif
#if defined(STRATA_GEMM_ONEDNN) != EXPECT_GEMM_ONEDNN
#error "STRATA_GEMM_ONEDNN is not as expected"
#endif
#if (defined(__GNUC__) || defined(__clang__)) && defined(__NO_MATH_ERRNO__) != EXPECT_NO_MATH_ERRNO
#error "-fno-math-errno is not as expected"
#endif
int main() { return 0; }
