// NumPy .npz interchange: the .npy bytes NumPy itself writes, archives that round-trip to the
// bit, readers that refuse every fault with a clear error, and model import that checks the
// whole archive before it changes the model.
#include <catch2/catch.hpp>

#include <strata/io/model_npz.hpp>
#include <strata/io/model_state.hpp>
#include <strata/strata.hpp>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
using Net = Sequential<Dense<4>, ReLU, BatchNorm, Dense<2>>;

Model<Net> built(std::uint64_t seed) {
  Model<Net> model;
  model.build(3, seed);
  return model;
}

/// Where a test writes its archive (removed again at the end).
struct scratch_file {
  std::string path = "strata_test_npz_" + std::to_string(reinterpret_cast<std::uintptr_t>(this)) + ".npz";
  ~scratch_file() { std::remove(path.c_str()); }
};
}  // namespace

TEST_CASE("An .npy array is what numpy.save writes: padded header, C order") {
  npz_archive archive;
  matrix_f m(2, 3);
  m << 1, 2, 3,
       4, 5, 6;
  archive.add("w", m);
  const std::string bytes = npz_archive::npy_bytes(archive.arrays.at("w"));
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  REQUIRE(bytes.size() == 128 + 6 * 4);  // magic, version and length, then the header: 128 bytes
  CHECK(bytes.compare(0, 8, std::string("\x93NUMPY\x01\x00", 8)) == 0);
  CHECK(static_cast<unsigned char>(bytes[8]) == 128 - 10);
  CHECK(bytes.compare(10, header.size(), header) == 0);
  CHECK(bytes[127] == '\n');
  float second;
  std::memcpy(&second, bytes.data() + 128 + 4, 4);
  CHECK(second == 2.0f);  // row-major: (0, 1) follows (0, 0)

  archive.add("b", matrix_d(matrix_d::Constant(3, 1, 0.5)), true);
  const std::string vector_bytes = npz_archive::npy_bytes(archive.arrays.at("b"));
  CHECK(vector_bytes.find("'descr': '<f8', 'fortran_order': False, 'shape': (3,), }") != std::string::npos);
}

TEST_CASE("Archives round-trip to the bit and the same arrays give the same bytes") {
  npz_archive archive;
  matrix_f m(3, 2);
  m << 1.5f, -2.25f, std::numeric_limits<float>::denorm_min(), 1e30f, -0.0f, 7.0f;
  archive.add("layer/0:Dense.weight", m);
  archive.add("layer/0:Dense.bias", matrix_d(matrix_d::Constant(2, 1, 0.1)), true);
  const std::string bytes = archive.to_bytes();
  CHECK(bytes == archive.to_bytes());
  CHECK(bytes.compare(0, 4, "PK\x03\x04") == 0);  // a zip archive

  const npz_archive back = npz_archive::from_bytes(bytes, "the archive");
  REQUIRE(back.arrays.size() == 2);
  const npy_array& w = back.arrays.at("layer/0:Dense.weight");
  CHECK(w.shape == std::vector<Index>{3, 2});
  CHECK(w.scalar_bytes == 4);
  for (Index r = 0; r < 3; ++r)
    for (Index c = 0; c < 2; ++c) CHECK(static_cast<float>(w.values[static_cast<std::size_t>(r * 2 + c)]) == m(r, c));
  CHECK(std::signbit(w.values[4]));
  const npy_array& b = back.arrays.at("layer/0:Dense.bias");
  CHECK(b.shape == std::vector<Index>{2});
  CHECK(b.values[1] == 0.1);
}

TEST_CASE("Faulty archives and arrays are refused with the reason") {
  npz_archive archive;
  archive.add("w", matrix_f(matrix_f::Constant(4, 4, 1.0f)));
  const std::string bytes = archive.to_bytes();

  SECTION("not a zip") { CHECK_THROWS_WITH(npz_archive::from_bytes("hello", "x.npz"), Contains("x.npz") && Contains("not a readable zip")); }
  SECTION("truncated") {
    CHECK_THROWS_AS(npz_archive::from_bytes(bytes.substr(0, bytes.size() / 2), "x.npz"), io_error);
    CHECK_THROWS_AS(npz_archive::from_bytes(bytes.substr(0, bytes.size() - 1), "x.npz"), io_error);
  }
  SECTION("a changed value fails the CRC") {
    std::string damaged = bytes;
    const auto at = damaged.find(std::string("\x00\x00\x80\x3f", 4));  // a stored 1.0f
    REQUIRE(at != std::string::npos);
    damaged[at + 3] = '\x40';
    CHECK_THROWS_WITH(npz_archive::from_bytes(damaged, "x.npz"), Contains("x.npz") && Contains("CRC"));
  }
  const auto npy = [](const std::string& header, std::size_t values) {
    std::string h = header;
    h.append((64 - (10 + h.size() + 1) % 64) % 64, ' ');
    h += '\n';
    std::string out("\x93NUMPY\x01\x00", 8);
    out += static_cast<char>(h.size());
    out += '\0';
    return out + h + std::string(values, '\0');
  };
  SECTION("the .npy header is checked field by field") {
    CHECK_NOTHROW(npz_archive::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 24), "a"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", 16), "a"),
                      Contains("dtype '<i8'"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), "a"),
                      Contains("dtype '>f4'"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 2), }", 8), "a"),
                      Contains("3 dimensions"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 20), "a"),
                      Contains("truncated"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<f4', 'shape': (2,), }", 8), "a"), Contains("all required"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,), }", 8), "a"),
                      Contains("fortran_order"));
    CHECK_THROWS_WITH(npz_archive::parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", 8), "a"),
                      Contains("too large"));
    CHECK_THROWS_WITH(npz_archive::parse_npy("\x93NUMPX", "a"), Contains("bad magic"));
  }
  SECTION("Fortran order is read as NumPy means it") {
    std::string f = npy("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }", 0);
    for (double v : {1.0, 4.0, 2.0, 5.0, 3.0, 6.0}) f.append(reinterpret_cast<const char*>(&v), 8);  // column by column
    const npy_array a = npz_archive::parse_npy(f, "a");
    CHECK(a.values == std::vector<double>{1, 2, 3, 4, 5, 6});
  }
}

TEST_CASE("A model's tensors leave as NumPy arrays shaped as PyTorch holds them and come back to the bit") {
  auto source = built(1);
  const npz_archive arrays = model_arrays(source);
  REQUIRE(arrays.arrays.size() == source.parameters().size() + source.buffers().size());
  CHECK(arrays.arrays.at("model/0:Dense.weight").shape == std::vector<Index>{4, 3});  // out x in, as nn.Linear
  CHECK(arrays.arrays.at("model/0:Dense.bias").shape == std::vector<Index>{4});
  CHECK(arrays.arrays.at("model/2:BatchNorm.weight").shape == std::vector<Index>{4});
  CHECK(arrays.arrays.at("model/2:BatchNorm.running_var").shape == std::vector<Index>{4});
  CHECK(arrays.arrays.at("model/3:Dense.weight").shape == std::vector<Index>{2, 4});

  scratch_file file;
  save_npz(source, file.path);
  auto target = built(2);
  REQUIRE(weights_checksum(target) != weights_checksum(source));
  const npz_import_report report = load_npz(target, file.path);
  CHECK(report.loaded.size() == arrays.arrays.size());
  CHECK(report.missing.empty());
  CHECK(report.unexpected.empty());
  CHECK(weights_checksum(target) == weights_checksum(source));
  for (std::size_t k = 0; k < source.buffers().size(); ++k) CHECK(*target.buffers()[k].value == *source.buffers()[k].value);

  SECTION("a one-feature input keeps a dense weight two-dimensional") {
    Model<Dense<2>> narrow;
    narrow.build(1, 3);
    const npz_archive a = model_arrays(narrow);
    CHECK(a.arrays.at("model.weight").shape == std::vector<Index>{2, 1});
    CHECK(a.arrays.at("model.bias").shape == std::vector<Index>{2});
  }
  SECTION("float64 models export float64 arrays") {
    Model<Net, EigenBackend<double>> wide;
    wide.build(3, 1);
    CHECK(model_arrays(wide).arrays.at("model/0:Dense.weight").scalar_bytes == 8);
  }
}

TEST_CASE("Import checks the whole archive first and leaves the model untouched on any fault") {
  auto source = built(1);
  npz_archive good = model_arrays(source);
  auto target = built(2);
  const std::uint64_t before = weights_checksum(target);

  SECTION("another architecture: missing and unexpected names are listed") {
    Model<Sequential<Dense<4>, ReLU, Dense<2>>> other;
    other.build(3, 5);
    const npz_archive foreign = model_arrays(other);
    CHECK_THROWS_WITH(import_arrays(target, foreign, "other.npz"),
                      Contains("other.npz") && Contains("it lacks") && Contains("model/2:BatchNorm.weight") &&
                          Contains("this model has no tensor 'model/2:Dense.bias'") && Contains("partial import"));
    CHECK(weights_checksum(target) == before);

    SECTION("a partial import loads what matches and reports the rest") {
      const npz_import_report r = import_arrays(target, foreign, "other.npz", npz_match::partial);
      CHECK(r.loaded == std::vector<std::string>{"model/0:Dense.weight", "model/0:Dense.bias"});
      CHECK(r.unexpected == std::vector<std::string>{"model/2:Dense.bias", "model/2:Dense.weight"});
      CHECK(r.missing.size() == 6);  // BatchNorm's 2 parameters and 2 buffers, the last Dense's 2
      CHECK(*target.parameters()[0].value == *other.parameters()[0].value);
    }
  }
  SECTION("a shape that differs is named, even in a partial import") {
    good.arrays["model/3:Dense.weight"].shape = {4, 2};
    CHECK_THROWS_WITH(import_arrays(target, good, "a.npz", npz_match::partial),
                      Contains("'model/3:Dense.weight' is (4, 2) in the archive but (2, 4) in this model"));
    CHECK(weights_checksum(target) == before);
  }
  SECTION("NaN weights") {
    good.arrays["model/3:Dense.bias"].values[1] = std::nan("");
    CHECK_THROWS_WITH(import_arrays(target, good, "a.npz"), Contains("'model/3:Dense.bias'") && Contains("non-finite"));
    CHECK(weights_checksum(target) == before);
  }
  SECTION("nothing in common") {
    npz_archive unrelated;
    unrelated.add("x", matrix_f(matrix_f::Zero(1, 1)));
    CHECK_THROWS_WITH(import_arrays(target, unrelated, "a.npz", npz_match::partial), Contains("no tensor of this model"));
  }
  SECTION("a missing file names the path") {
    CHECK_THROWS_WITH(load_npz(target, "no/such/file.npz"), Contains("no/such/file.npz"));
  }
}
