#pragma once
/// \file hash.hpp
/// FNV-1a-64: the checksum of checkpoint files and the hash that tells whether two runs ended
/// with the same weights, bit for bit. One definition, so a file's checksum, a run's reported
/// weights hash and the tests' comparisons are the same function.

#include <cstddef>
#include <cstdint>

namespace strata {

/// FNV-1a-64's starting value; hashes of several pieces chain through `fnv1a64(..., h)`.
inline constexpr std::uint64_t fnv1a64_offset = 0xcbf29ce484222325ull;

/// FNV-1a-64 of `size` bytes at `data`, continuing from `h`.
inline std::uint64_t fnv1a64(const void* data, std::size_t size, std::uint64_t h = fnv1a64_offset) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  for (std::size_t i = 0; i < size; ++i) h = (h ^ bytes[i]) * 0x100000001b3ull;
  return h;
}

}  // namespace strata
