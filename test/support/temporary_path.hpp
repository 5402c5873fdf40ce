#pragma once
// A file name in the system's temporary folder, unique to this object, removed with it.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace strata::testing {

struct temporary_path {
  explicit temporary_path(const std::string& prefix)
      : path((std::filesystem::temp_directory_path() /
              (prefix + std::to_string(reinterpret_cast<std::uintptr_t>(this)))).string()) {}
  ~temporary_path() { std::remove(path.c_str()); }
  temporary_path(const temporary_path&) = delete;
  temporary_path& operator=(const temporary_path&) = delete;
  const std::string path;
};

}  // namespace strata::testing
