// The Catch2 runner of the CUDA test binaries. On a machine without a usable CUDA device it
// prints a notice and exits successfully, so a CUDA build can run its whole test suite anywhere.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <strata/backend/cuda_device.hpp>

#include <cstdio>

int main(int argc, char* argv[]) {
  if (!strata::cuda_device_available()) {
    std::puts("no CUDA device: skipping");
    return 0;
  }
  return Catch::Session().run(argc, argv);
}
