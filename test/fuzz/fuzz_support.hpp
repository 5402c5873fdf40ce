#pragma once
// What every fuzz target shares: the input bytes served as a file the readers can open by path
// (without touching the disk), and the rule the targets enforce: a reader may fail only by
// throwing strata::error. Anything else that escapes (std::out_of_range from a conversion,
// std::length_error, std::bad_alloc, ...) is a finding, because the user would get a crash or an
// unhelpful message instead of "file:line:column: what".

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <typeinfo>
#include <vector>

#include <strata/core/error.hpp>
#include <strata/core/hash.hpp>
#include <strata/train/checkpoint.hpp>

namespace strata_fuzz {

/// The current input as a file: one memfd per process, rewritten for every input, opened by the
/// readers through /proc/self/fd/N. `path(".csv")` adds a symbolic link with that extension
/// (made once per process in /dev/shm, removed at exit) for readers that choose a format by the
/// file name's extension.
class input_file {
 public:
  static input_file& instance() {
    static input_file file;
    return file;
  }

  /// Replaces the file's content with `data`.
  void assign(const std::uint8_t* data, std::size_t size) {
    if (ftruncate(fd_, 0) != 0) die("ftruncate");
    std::size_t written = 0;
    while (written < size) {
      const ssize_t n = pwrite(fd_, data + written, size - written, static_cast<off_t>(written));
      if (n <= 0) die("pwrite");
      written += static_cast<std::size_t>(n);
    }
  }

  /// A path that opens the current content; with `extension` (".smi", ".csv") a link named so.
  std::string path(const std::string& extension = "") {
    if (extension.empty()) return proc_path_;
    for (const auto& link : links_)
      if (link.size() >= extension.size() && link.compare(link.size() - extension.size(), extension.size(), extension) == 0)
        return link;
    const std::string link = "/dev/shm/strata-fuzz-" + std::to_string(getpid()) + "-" +
                             std::to_string(links_.size()) + extension;
    std::remove(link.c_str());
    if (symlink(proc_path_.c_str(), link.c_str()) != 0) die("symlink");
    links_.push_back(link);
    return link;
  }

  ~input_file() {
    for (const auto& link : links_) std::remove(link.c_str());
  }

 private:
  input_file() : fd_(memfd_create("strata-fuzz-input", 0)) {
    if (fd_ < 0) die("memfd_create");
    proc_path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  [[noreturn]] static void die(const char* what) {
    std::perror(what);
    std::abort();
  }

  int fd_;
  std::string proc_path_;
  std::vector<std::string> links_;
};

/// Runs `read`, which should either succeed or throw strata::error. Returns 0 (libFuzzer's
/// "input done") in both cases; any other exception is reported with its type and message and
/// aborts, which libFuzzer records as a crash with the input saved.
template <class Read>
int expect_strata_errors_only(Read&& read) {
  try {
    read();
  } catch (const strata::error&) {
    // The reader refused the input with a message: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nFINDING: a reader threw %s, not strata::error: %s\n", typeid(e).name(), e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "\nFINDING: a reader threw something that is not a std::exception\n");
    std::abort();
  }
  return 0;
}

/// Aborts with `what` when a read that succeeded returned something inconsistent.
inline void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "\nFINDING: a read succeeded but %s\n", what);
  std::abort();
}

/// Splits off the first input byte, which the structure-aware targets use to choose a mode.
struct mode_and_rest {
  std::uint8_t mode = 0;
  const std::uint8_t* data = nullptr;
  std::size_t size = 0;
};
inline mode_and_rest split_mode(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return {};
  return {data[0], data + 1, size - 1};
}

/// `payload` wrapped as a Strata checkpoint file with a correct header and checksum (the layout
/// documented in strata/io/state_file.hpp), so mutations of the payload reach the parser
/// behind the checksum instead of stopping at "checksum mismatch".
inline std::string wrap_checkpoint_payload(const std::uint8_t* payload, std::size_t size) {
  std::string bytes(strata::checkpoint::magic, sizeof strata::checkpoint::magic);
  const auto put = [&](auto value) { bytes.append(reinterpret_cast<const char*>(&value), sizeof value); };
  put(strata::checkpoint::version);
  put(static_cast<std::uint64_t>(size));
  bytes.append(reinterpret_cast<const char*>(payload), size);
  put(strata::fnv1a64(payload, size));  // the format's checksum
  return bytes;
}

/// Serves a checkpoint-format input: mode byte even: the rest is the file as it stands; odd: the
/// rest is a payload, wrapped by `wrap_checkpoint_payload`. Returns the path to read.
inline std::string checkpoint_input(const std::uint8_t* data, std::size_t size) {
  const mode_and_rest in = split_mode(data, size);
  input_file& file = input_file::instance();
  if (in.mode % 2 == 0) {
    file.assign(in.data, in.size);
  } else {
    const std::string wrapped = wrap_checkpoint_payload(in.data, in.size);
    file.assign(reinterpret_cast<const std::uint8_t*>(wrapped.data()), wrapped.size());
  }
  return file.path();
}

}  // namespace strata_fuzz
