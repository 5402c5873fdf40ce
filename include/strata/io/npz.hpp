#pragma once
/// \file npz.hpp
/// NumPy's `.npz` archives: a zip of `.npy` arrays, what `numpy.savez` writes and `numpy.load`
/// reads. The zip container (and its CRC-32 checks) is libzip's; this header adds the `.npy`
/// format (version 1.0 written; 1.0, 2.0 and 3.0 read): a magic string, a Python-literal header
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` padded to 64 bytes, then the
/// values. Arrays are float32 or float64, little-endian, of one or two dimensions; written in C
/// order (rows contiguous, as NumPy and PyTorch lay them out), read in C or Fortran order.
///
/// Needs libzip: link `Strata::npz` (find_package(Strata COMPONENTS npz); Debian: libzip-dev).
/// Everything read is checked (the zip's own consistency and CRCs, every header field, sizes
/// against the bytes present, finite values are left to the caller) and a fault is an io_error
/// naming the archive and the array.

#include <zip.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "../core/tensor.hpp"
#include "atomic_file.hpp"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "strata/io/npz.hpp reads and writes little-endian arrays in place: a big-endian build needs byte swapping"
#endif

namespace strata {

/// One array of an archive: its shape (one or two dimensions) and its values as doubles in C
/// order, with the precision it was stored in.
struct npy_array {
  std::vector<Index> shape;    ///< {n} or {rows, cols}
  int scalar_bytes = 4;        ///< 4: float32 ('<f4'), 8: float64 ('<f8')
  std::vector<double> values;  ///< row-major (C order), shape[0] * shape[1] of them

  Index rows() const { return shape.empty() ? 0 : shape[0]; }
  Index cols() const { return shape.size() == 2 ? shape[1] : 1; }
};

/// An `.npz` archive in memory: arrays by name (the member `<name>.npy`).
class npz_archive {
 public:
  std::map<std::string, npy_array> arrays;

  /// Adds host matrix `m` as array `name`, two-dimensional or (`vector`) one-dimensional, in the
  /// matrix's own precision.
  template <class Derived>
  void add(const std::string& name, const Eigen::DenseBase<Derived>& m, bool vector = false) {
    using T = typename Derived::Scalar;
    static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "npz arrays hold float32 or float64");
    if (vector && m.cols() != 1) throw config_error("npz: '" + name + "' is written as a vector but has several columns");
    npy_array a;
    a.shape = vector ? std::vector<Index>{m.rows()} : std::vector<Index>{m.rows(), m.cols()};
    a.scalar_bytes = sizeof(T);
    a.values.reserve(static_cast<std::size_t>(m.size()));
    for (Index r = 0; r < m.rows(); ++r)
      for (Index c = 0; c < m.cols(); ++c) a.values.push_back(static_cast<double>(m(r, c)));
    arrays[name] = std::move(a);
  }

  /// The archive as bytes: uncompressed members in name order, each dated 1980-01-01, so the
  /// same arrays always give the same bytes.
  std::string to_bytes() const {
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* target = zip_source_buffer_create(nullptr, 0, 0, &error);
    if (target == nullptr) throw io_error(std::string("npz: cannot create a zip buffer: ") + zip_error_strerror(&error));
    zip_source_keep(target);  // the archive's bytes outlive zip_close
    const std::unique_ptr<zip_source_t, decltype(&zip_source_free)> keep(target, &zip_source_free);
    zip_t* archive = zip_open_from_source(target, ZIP_TRUNCATE, &error);
    if (archive == nullptr) throw io_error(std::string("npz: cannot start a zip archive: ") + zip_error_strerror(&error));
    std::vector<std::string> members;  // libzip reads each member's bytes at zip_close
    members.reserve(arrays.size());
    const auto fail = [&](const std::string& what) {
      const std::string why = zip_strerror(archive);
      zip_discard(archive);
      return io_error("npz: " + what + ": " + why);
    };
    for (const auto& [name, array] : arrays) {
      members.push_back(npy_bytes(array));
      zip_source_t* member = zip_source_buffer(archive, members.back().data(), members.back().size(), 0);
      if (member == nullptr) throw fail("cannot add '" + name + "'");
      const zip_int64_t index = zip_file_add(archive, (name + ".npy").c_str(), member, ZIP_FL_ENC_UTF_8);
      if (index < 0) {
        zip_source_free(member);
        throw fail("cannot add '" + name + "'");
      }
      const auto at = static_cast<zip_uint64_t>(index);
      if (zip_set_file_compression(archive, at, ZIP_CM_STORE, 0) != 0 || zip_file_set_mtime(archive, at, 315532800, 0) != 0)
        throw fail("cannot set up '" + name + "'");
    }
    if (zip_close(archive) != 0) throw fail("cannot write the archive");
    std::string bytes;
    if (zip_source_open(target) != 0) throw io_error("npz: cannot read the archive back from memory");
    char chunk[65536];
    for (zip_int64_t n; (n = zip_source_read(target, chunk, sizeof chunk)) > 0;) bytes.append(chunk, static_cast<std::size_t>(n));
    zip_source_close(target);
    return bytes;
  }

  /// Writes the archive to `path` whole or not at all (io/atomic_file.hpp).
  void write(const std::string& path) const {
    detail::write_bytes_atomically(path, to_bytes());
  }

  /// Reads and checks the archive at `path`.
  static npz_archive read(const std::string& path) {
    return from_bytes(detail::read_whole_file(path, "a NumPy .npz archive"), "npz archive '" + path + "'");
  }

  /// Parses `bytes` (an .npz archive); `source` names it in errors.
  static npz_archive from_bytes(const std::string& bytes, const std::string& source) {
    const auto fail = [&](const std::string& what) { return io_error(source + ": " + what); };
    zip_error_t error;
    zip_error_init(&error);
    zip_source_t* input = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
    if (input == nullptr) throw fail(std::string("cannot read it: ") + zip_error_strerror(&error));
    zip_t* opened = zip_open_from_source(input, ZIP_RDONLY | ZIP_CHECKCONS, &error);
    if (opened == nullptr) {
      zip_source_free(input);
      const std::string why = zip_error_strerror(&error);
      zip_error_fini(&error);
      throw fail("not a readable zip archive (" + why + ")");
    }
    const std::unique_ptr<zip_t, decltype(&zip_discard)> archive(opened, &zip_discard);
    npz_archive result;
    const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
    for (zip_int64_t i = 0; i < count; ++i) {
      const auto index = static_cast<zip_uint64_t>(i);
      const char* raw_name = zip_get_name(archive.get(), index, 0);
      const std::string member = raw_name != nullptr ? raw_name : "";
      if (member.size() < 5 || member.compare(member.size() - 4, 4, ".npy") != 0)
        throw fail("member '" + member + "' is not a .npy array");
      const std::string name = member.substr(0, member.size() - 4);
      if (result.arrays.count(name) > 0) throw fail("holds array '" + name + "' twice");
      result.arrays[name] = parse_npy_with(read_member(archive.get(), index, bytes.size(), fail),
                                           [&](const std::string& what) { return fail("array '" + name + "': " + what); });
    }
    return result;
  }

  /// Parses the bytes of one `.npy` array; `source` names it in errors.
  static npy_array parse_npy(const std::string& bytes, const std::string& source) {
    return parse_npy_with(bytes, [&](const std::string& what) { return io_error(source + ": " + what); });
  }

  /// The `.npy` bytes of one array (format version 1.0).
  static std::string npy_bytes(const npy_array& a) {
    const std::string shape = a.shape.size() == 1
                                  ? "(" + std::to_string(a.shape[0]) + ",)"
                                  : "(" + std::to_string(a.shape[0]) + ", " + std::to_string(a.shape[1]) + ")";
    std::string header = std::string("{'descr': '<f") + (a.scalar_bytes == 8 ? "8" : "4") + "', 'fortran_order': False, 'shape': " +
                         shape + ", }";
    const std::size_t unpadded = 10 + header.size() + 1;  // magic, version, length, header, '\n'
    header.append((64 - unpadded % 64) % 64, ' ');
    header += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(header.size() & 0xFF);
    out += static_cast<char>((header.size() >> 8) & 0xFF);
    out += header;
    for (double v : a.values) {
      if (a.scalar_bytes == 8) {
        append_le(out, v);
      } else {
        append_le(out, static_cast<float>(v));
      }
    }
    return out;
  }

 private:
  /// The bytes of a float or double as stored: little-endian, this build's own order.
  template <class T>
  static void append_le(std::string& out, T v) {
    static_assert(sizeof(T) == 4 || sizeof(T) == 8);
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));
    out.append(bytes, sizeof(T));
  }

  /// A member's bytes: exactly its stated size, which may not exceed 64 times the archive's (no
  /// allocation a small hostile archive could make huge); libzip checks the CRC at the end.
  template <class Fail>
  static std::string read_member(zip_t* archive, zip_uint64_t index, std::size_t archive_size, Fail& fail) {
    zip_stat_t stat;
    zip_stat_init(&stat);
    if (zip_stat_index(archive, index, 0, &stat) != 0 || (stat.valid & ZIP_STAT_SIZE) == 0)
      throw fail(std::string("cannot read a member's size: ") + zip_strerror(archive));
    const zip_uint64_t cap = static_cast<zip_uint64_t>(archive_size) * 64 + 4096;
    if (stat.size > cap) throw fail("a member claims " + std::to_string(stat.size) + " bytes, far more than the archive could hold");
    const std::unique_ptr<zip_file_t, decltype(&zip_fclose)> file(zip_fopen_index(archive, index, 0), &zip_fclose);
    if (!file) throw fail(std::string("cannot open a member: ") + zip_strerror(archive));
    std::string bytes;
    char chunk[65536];
    for (;;) {
      const zip_int64_t n = zip_fread(file.get(), chunk, sizeof chunk);
      if (n < 0) throw fail(std::string("a member is corrupt: ") + zip_file_strerror(file.get()));
      if (n == 0) break;
      bytes.append(chunk, static_cast<std::size_t>(n));
      if (bytes.size() > stat.size) throw fail("a member is longer than its stated size");
    }
    if (bytes.size() != stat.size) throw fail("a member is shorter than its stated size");
    return bytes;
  }

  /// Parses one `.npy` array: the magic and version, the header dictionary (exactly the keys
  /// descr, fortran_order and shape), and values of the stated size.
  template <class Fail>
  static npy_array parse_npy_with(const std::string& b, Fail&& fail) {
    if (b.size() < 10 || b.compare(0, 6, "\x93NUMPY") != 0) throw fail("not a .npy array (bad magic)");
    const int major = static_cast<unsigned char>(b[6]);
    std::size_t length = 0, start = 0;
    if (major == 1) {
      length = static_cast<unsigned char>(b[8]) | static_cast<std::size_t>(static_cast<unsigned char>(b[9])) << 8;
      start = 10;
    } else if (major == 2 || major == 3) {
      if (b.size() < 12) throw fail("truncated header");
      for (int k = 3; k >= 0; --k) length = length << 8 | static_cast<unsigned char>(b[8 + static_cast<std::size_t>(k)]);
      start = 12;
    } else {
      throw fail("format version " + std::to_string(major) + " (this build reads 1, 2 and 3)");
    }
    if (length > b.size() - start) throw fail("truncated header");
    const std::string header = b.substr(start, length);
    npy_array a;
    std::string descr;
    bool fortran = false, has_descr = false, has_order = false, has_shape = false;
    std::size_t at = 0;
    const auto skip = [&] {
      while (at < header.size() && (header[at] == ' ' || header[at] == '\n' || header[at] == '\t')) ++at;
    };
    const auto expect = [&](char c) {
      skip();
      if (at >= header.size() || header[at] != c) throw fail(std::string("malformed header (expected '") + c + "')");
      ++at;
    };
    const auto string_literal = [&] {
      skip();
      if (at >= header.size() || (header[at] != '\'' && header[at] != '"')) throw fail("malformed header (expected a string)");
      const char quote = header[at++];
      const std::size_t end = header.find(quote, at);
      if (end == std::string::npos) throw fail("malformed header (unterminated string)");
      std::string s = header.substr(at, end - at);
      at = end + 1;
      return s;
    };
    expect('{');
    for (;;) {
      skip();
      if (at < header.size() && header[at] == '}') break;
      const std::string key = string_literal();
      expect(':');
      skip();
      if (key == "descr" && !has_descr) {
        descr = string_literal();
        has_descr = true;
      } else if (key == "fortran_order" && !has_order) {
        if (header.compare(at, 4, "True") == 0) {
          fortran = true;
          at += 4;
        } else if (header.compare(at, 5, "False") == 0) {
          at += 5;
        } else {
          throw fail("malformed header (fortran_order is neither True nor False)");
        }
        has_order = true;
      } else if (key == "shape" && !has_shape) {
        expect('(');
        for (;;) {
          skip();
          if (at < header.size() && header[at] == ')') break;
          std::size_t digits = 0;
          Index value = 0;
          while (at < header.size() && header[at] >= '0' && header[at] <= '9') {
            if (value > (std::numeric_limits<Index>::max() - 9) / 10) throw fail("malformed header (a dimension is too large)");
            value = value * 10 + (header[at++] - '0');
            ++digits;
          }
          if (digits == 0) throw fail("malformed header (a dimension is not a number)");
          a.shape.push_back(value);
          skip();
          if (at < header.size() && header[at] == ',') ++at;
        }
        ++at;
        has_shape = true;
      } else {
        throw fail("malformed header (unexpected or repeated key '" + key + "')");
      }
      skip();
      if (at < header.size() && header[at] == ',') ++at;
    }
    if (!has_descr || !has_order || !has_shape) throw fail("malformed header (descr, fortran_order and shape are all required)");
    if (descr == "<f4" || descr == "=f4") {
      a.scalar_bytes = 4;
    } else if (descr == "<f8" || descr == "=f8") {
      a.scalar_bytes = 8;
    } else {
      throw fail("has dtype '" + descr + "'; Strata reads little-endian float32 ('<f4') and float64 ('<f8')");
    }
    if (a.shape.empty() || a.shape.size() > 2)
      throw fail("has " + std::to_string(a.shape.size()) + " dimensions; Strata reads arrays of one or two");
    const std::size_t data_start = start + length;
    const std::size_t available = (b.size() - data_start) / static_cast<std::size_t>(a.scalar_bytes);
    const Index rows = a.rows(), cols = a.cols();
    if (cols != 0 && static_cast<std::size_t>(rows) > available / static_cast<std::size_t>(std::max<Index>(cols, 1)))
      throw fail("is truncated: its shape needs more values than it holds");
    const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
    if (b.size() - data_start != n * static_cast<std::size_t>(a.scalar_bytes))
      throw fail("holds " + std::to_string(b.size() - data_start) + " bytes of values, its shape says " +
                 std::to_string(n * static_cast<std::size_t>(a.scalar_bytes)));
    a.values.resize(n);
    const char* data = b.data() + data_start;
    for (std::size_t k = 0; k < n; ++k) {
      // Fortran order stores column by column: element k of the file is (k % rows, k / rows).
      const std::size_t to = fortran && rows > 0 ? (k % static_cast<std::size_t>(rows)) * static_cast<std::size_t>(cols) + k / static_cast<std::size_t>(rows) : k;
      if (a.scalar_bytes == 8) {
        double v;
        std::memcpy(&v, data + 8 * k, 8);
        a.values[to] = v;
      } else {
        float v;
        std::memcpy(&v, data + 4 * k, 4);
        a.values[to] = v;
      }
    }
    return a;
  }
};

}  // namespace strata
