#pragma once
/// \file state_file.hpp
/// The one file format for state: named tensors and text metadata in one versioned binary file
/// with every tensor's name and shape and a checksum over the content. Training checkpoints,
/// inference model files, tournament model exchanges and feature scalers are all state files;
/// io/model_state.hpp says how a model's state is laid out in one.
///
/// Layout (little-endian):
///   "STRATACK" | u32 version | u64 payload bytes | payload | u64 FNV-1a-64 of the payload
///   payload  = u32 entry count, then per entry: string key, string value   (metadata)
///              u32 tensor count, then per tensor: string name, u8 bytes per scalar,
///              i64 rows, i64 cols, rows*cols scalars (column-major)
///   string   = u32 length, bytes
/// Reading checks the container (magic, version, size, checksum, every tensor's extent) and the
/// readers of its content check the rest before they change anything; files are written to a
/// temporary name and renamed, so a crash never leaves a half-written file.

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/hash.hpp"
#include "../core/parse.hpp"
#include "../core/tensor.hpp"
#include "atomic_file.hpp"

namespace strata {

namespace detail {
/// `names` as one metadata value, each name followed by a line break (e.g. a scaler's column
/// names). A name holding a line break could not be told apart: data_error, naming `who`.
inline std::string join_lines(const std::vector<std::string>& names, const std::string& who) {
  std::string out;
  for (const std::string& n : names) {
    if (n.find('\n') != std::string::npos)
      throw data_error(who + ": name '" + n + "' holds a line break and cannot be saved");
    (out += n) += '\n';
  }
  return out;
}

/// The names `join_lines` wrote (a trailing piece without its line break is ignored).
inline std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;
    out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}
}  // namespace detail

/// The in-memory form of a state file.
class state_file {
 public:
  static constexpr char magic[8] = {'S', 'T', 'R', 'A', 'T', 'A', 'C', 'K'};
  static constexpr std::uint32_t version = 1;

  /// One named tensor, stored in its own precision.
  struct tensor {
    std::string name;
    std::uint8_t scalar_bytes = 4;
    std::int64_t rows = 0, cols = 0;
    std::vector<char> data;
  };

  std::map<std::string, std::string> meta;
  std::vector<tensor> tensors;

  /// Adds a column-major host matrix under `name`: a `host_matrix` or a view of contiguous
  /// host memory such as a parameter in its model's buffers (copied once, into the file).
  template <class M>
  void add(const std::string& name, const M& m) {
    using T = typename M::Scalar;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "state_file holds float or double tensors");
    tensor t{name, static_cast<std::uint8_t>(sizeof(T)), m.rows(), m.cols(), {}};
    t.data.resize(static_cast<std::size_t>(m.size()) * sizeof(T));
    if (m.size() > 0) std::memcpy(t.data.data(), m.data(), t.data.size());
    tensors.push_back(std::move(t));
  }

  /// The tensor called `name`, or nullptr.
  const tensor* find(const std::string& name) const {
    for (const auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }

  /// Copies tensor `t` into `m` (converting precision if the file's differs): a host matrix, or
  /// a view of host memory already of the tensor's shape.
  template <class M>
  static void extract(const tensor& t, M& m) {
    using T = typename M::Scalar;
    m.resize(t.rows, t.cols);
    if (t.scalar_bytes == sizeof(T)) {
      if (m.size() > 0) std::memcpy(m.data(), t.data.data(), t.data.size());
    } else if (t.scalar_bytes == 4) {
      const auto* p = reinterpret_cast<const float*>(t.data.data());
      for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(p[i]);
    } else {
      const auto* p = reinterpret_cast<const double*>(t.data.data());
      for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(p[i]);
    }
  }

  /// The file's bytes: header, payload, checksum (also what tournaments send between trainers).
  std::string to_bytes() const {
    std::string payload;
    put_u32(payload, static_cast<std::uint32_t>(meta.size()));
    for (const auto& [key, value] : meta) {
      put_string(payload, key);
      put_string(payload, value);
    }
    put_u32(payload, static_cast<std::uint32_t>(tensors.size()));
    for (const auto& t : tensors) {
      put_string(payload, t.name);
      payload.push_back(static_cast<char>(t.scalar_bytes));
      put_raw(payload, t.rows);
      put_raw(payload, t.cols);
      payload.append(t.data.data(), t.data.size());
    }
    std::string bytes(magic, sizeof magic);
    put_u32(bytes, version);
    put_raw(bytes, static_cast<std::uint64_t>(payload.size()));
    bytes += payload;
    put_raw(bytes, fnv1a(payload));
    return bytes;
  }

  /// Writes the file atomically (temporary file, then rename).
  void write(const std::string& path) const {
    detail::write_bytes_atomically(path, to_bytes());
  }

  /// Reads and verifies a file; throws io_error saying what is wrong with it.
  static state_file read(const std::string& path) {
    return from_bytes(detail::read_whole_file(path, "a checkpoint or model file"), "file '" + path + "'");
  }

  /// Parses and verifies bytes made by `to_bytes`; `source` names them in errors.
  static state_file from_bytes(const std::string& bytes, const std::string& source) {
    const auto fail = [&](const std::string& what) { return io_error(source + ": " + what); };
    const std::size_t header = sizeof magic + sizeof(std::uint32_t) + sizeof(std::uint64_t);
    if (bytes.size() < sizeof magic || std::memcmp(bytes.data(), magic, sizeof magic) != 0)
      throw fail("not a Strata checkpoint or model file (bad magic bytes)");
    if (bytes.size() < header) throw fail("truncated header");
    std::uint32_t file_version;
    std::memcpy(&file_version, bytes.data() + sizeof magic, sizeof file_version);
    if (file_version != version)
      throw fail(detail::concat("format version ", file_version, " is not supported (this build reads version ", version, ")"));
    std::uint64_t size;
    std::memcpy(&size, bytes.data() + sizeof magic + sizeof file_version, sizeof size);
    // Compared without adding to `size`: a corrupt size near 2^64 would wrap the sum around.
    const std::size_t after_header = bytes.size() - header;
    if (after_header < sizeof(std::uint64_t) || size != after_header - sizeof(std::uint64_t))
      throw fail(detail::concat("truncated or padded: ", bytes.size(), " bytes, the header promises ", size,
                                " bytes of content plus ", header + sizeof(std::uint64_t), " of header and checksum"));
    const std::string payload = bytes.substr(header, size);
    std::uint64_t stored;
    std::memcpy(&stored, bytes.data() + header + size, sizeof stored);
    if (stored != fnv1a(payload)) throw fail("checksum mismatch: the file is corrupt");

    state_file c;
    std::size_t at = 0;
    const auto need = [&](std::size_t n) {
      if (n > payload.size() - at) throw fail("malformed content");  // (at + n could wrap around)
    };
    const auto u32 = [&]() { std::uint32_t v; need(4); std::memcpy(&v, payload.data() + at, 4); at += 4; return v; };
    const auto i64 = [&]() { std::int64_t v; need(8); std::memcpy(&v, payload.data() + at, 8); at += 8; return v; };
    const auto str = [&]() { const std::uint32_t n = u32(); need(n); std::string s = payload.substr(at, n); at += n; return s; };
    for (std::uint32_t k = 0, n = u32(); k < n; ++k) {
      std::string key = str();
      c.meta[key] = str();
    }
    for (std::uint32_t k = 0, n = u32(); k < n; ++k) {
      tensor t;
      t.name = str();
      need(1);
      t.scalar_bytes = static_cast<std::uint8_t>(payload[at++]);
      t.rows = i64();
      t.cols = i64();
      if ((t.scalar_bytes != 4 && t.scalar_bytes != 8) || t.rows < 0 || t.cols < 0) throw fail("malformed tensor '" + t.name + "'");
      // The shape is checked against the bytes that are left before anything is multiplied or
      // allocated: a corrupt shape (2^40 rows, or rows * cols beyond 2^63) is an error, never an
      // overflow or an allocation.
      const std::uint64_t left = payload.size() - at, rows = static_cast<std::uint64_t>(t.rows),
                          cols = static_cast<std::uint64_t>(t.cols);
      if (rows > 0 && cols > left / t.scalar_bytes / rows)
        throw fail(detail::concat("tensor '", t.name, "' claims ", t.rows, "x", t.cols, " values of ",
                                  static_cast<int>(t.scalar_bytes), " bytes, more than the ", left,
                                  " bytes left in the file"));
      const auto n_bytes = static_cast<std::size_t>(rows * cols * t.scalar_bytes);
      need(n_bytes);
      t.data.assign(payload.data() + at, payload.data() + at + n_bytes);
      at += n_bytes;
      c.tensors.push_back(std::move(t));
    }
    if (at != payload.size()) throw fail("malformed content (trailing bytes)");
    return c;
  }

 private:
  static void put_u32(std::string& s, std::uint32_t v) { put_raw(s, v); }
  template <class V>
  static void put_raw(std::string& s, V v) { s.append(reinterpret_cast<const char*>(&v), sizeof v); }
  static void put_string(std::string& s, const std::string& v) {
    put_u32(s, static_cast<std::uint32_t>(v.size()));
    s += v;
  }
  static std::uint64_t fnv1a(const std::string& s) { return fnv1a64(s.data(), s.size()); }
};


}  // namespace strata
