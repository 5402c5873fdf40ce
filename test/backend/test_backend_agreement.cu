// The CUDA flavour of the backend agreement test: the same source, compiled by nvcc, so that
// ThrustBackend runs on the GPU with cuBLAS. (A separate file because a build system decides a
// source's language by its name; the host test compiles the .cpp with g++.)
#include "test_backend_agreement.cpp"
