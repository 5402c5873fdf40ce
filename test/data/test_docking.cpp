// Docking surrogates: the synthetic library, the two model types, model files, top-k selection
// and streamed prediction.
#include <catch2/catch.hpp>

#include <strata/chem/morgan.hpp>
#include <strata/data/molecule_files.hpp>
#include <strata/data/synthetic_library.hpp>
#include <strata/inference/screen.hpp>
#include <strata/models/docking.hpp>
#include <strata/train/model_file.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>

using namespace strata;
using Catch::Matchers::Contains;

TEST_CASE("A synthetic molecule is a pure function of the seed and its id") {
  const SyntheticLibrary a, b;
  synthetic_library_options other;
  other.seed = 2;
  const SyntheticLibrary c(other);
  std::vector<float> fa(2048), fb(2048), fc(2048);
  a.features(123456789, molecule_features::fingerprint, fa.data());
  b.features(123456789, molecule_features::fingerprint, fb.data());
  c.features(123456789, molecule_features::fingerprint, fc.data());
  CHECK(fa == fb);
  CHECK(fa != fc);
  CHECK(a.score(987654321012ull) == b.score(987654321012ull));
  CHECK(a.label(5) == std::max(-a.score(5), 0.0));

  // Any id can be drawn alone: a dataset over ids 1000.. gives what the library gives.
  const SyntheticLibraryDataset<float> data(a, molecule_features::descriptors, 1000, 50);
  const Index picks[] = {7, 0, 49};
  matrix_f x, y;
  data.gather(picks, 3, x, y);
  std::vector<float> d(1613);
  a.features(1049, molecule_features::descriptors, d.data());
  CHECK(std::equal(d.begin(), d.end(), x.col(2).data()));
  CHECK(y(0, 0) == static_cast<float>(a.label(1007)));
  const Index bad[] = {50};
  CHECK_THROWS_WITH(data.gather(bad, 1, x, y), Contains("sample 50 out of range [0, 50)"));
}

TEST_CASE("A molecule's descriptors are tanh of its fragments' columns of P, summed in list order") {
  // The definition, computed the slow way, against the generator's chunked layout: widths below,
  // at and above its chunk of 128 rows, with a partial last chunk.
  for (const Index width : {Index{60}, Index{128}, Index{300}}) {
    synthetic_library_options o;
    o.descriptor_width = width;
    o.vocabulary = 40;
    o.seed = 9;
    const SyntheticLibrary library(o);
    const random_stream projection(o.seed, purpose::data, 0x11D);
    // 600 molecules drawn at once: more than one group of the generator's.
    const Index n = 600;
    const SyntheticLibraryDataset<float> data(library, molecule_features::descriptors, 0, n);
    std::vector<Index> rows(static_cast<std::size_t>(n));
    std::iota(rows.begin(), rows.end(), Index{0});
    matrix_f d, y;
    data.gather(rows.data(), n, d, y);
    Index wrong = 0;
    for (Index j = 0; j < n; ++j) {
      Index frag[SyntheticLibrary::max_fragments_limit];
      const Index count = library.fragments(static_cast<std::uint64_t>(j), frag);
      for (Index r = 0; r < width; ++r) {
        float sum = 0.0f;
        for (Index k = 0; k < count; ++k)
          sum += static_cast<float>(0.35 * projection.normal(static_cast<std::uint64_t>(frag[k] * width + r)));
        wrong += d(r, j) != static_cast<float>(std::tanh(static_cast<double>(sum)));
      }
    }
    CHECK(wrong == 0);
  }
}

TEST_CASE("Synthetic fingerprints are Morgan-sparse and scores are docking-like") {
  const SyntheticLibrary library;
  const Index n = 20000;
  std::vector<float> fp(2048), counts(2048);
  double bits = 0;
  std::vector<double> labels;
  for (Index i = 0; i < n; ++i) {
    labels.push_back(library.label(static_cast<std::uint64_t>(i)));
    if (i >= 500) continue;
    library.features(static_cast<std::uint64_t>(i), molecule_features::fingerprint, fp.data());
    library.features(static_cast<std::uint64_t>(i), molecule_features::fingerprint_counts, counts.data());
    bool binary = true, same_support = true;
    for (std::size_t k = 0; k < fp.size(); ++k) {
      binary = binary && (fp[k] == 0.0f || fp[k] == 1.0f);
      same_support = same_support && (counts[k] > 0) == (fp[k] > 0);
    }
    CHECK(binary);
    CHECK(same_support);
    bits += std::accumulate(fp.begin(), fp.end(), 0.0);
  }
  const double density = bits / 500 / 2048;
  INFO("bit density " << density);
  CHECK((density > 0.02 && density < 0.05));
  std::sort(labels.begin(), labels.end());
  const auto q = [&](double p) { return labels[static_cast<std::size_t>(p * (n - 1))]; };
  INFO("reg quantiles 1% " << q(0.01) << ", median " << q(0.5) << ", 99.9% " << q(0.999));
  CHECK(q(0.0) >= 0.0);
  // A right tail: the best molecules are further above the median than the worst are below it.
  CHECK(q(0.999) - q(0.5) > q(0.5) - q(0.001));
}

TEST_CASE("The docking models have the published shapes") {
  Model<DescriptorMLP> descriptor(make_descriptor_mlp());
  descriptor.build(1613, 1);
  CHECK(descriptor.parameter_count() == 1613 * 250 + 250 + 250 * 125 + 125 + 125 * 60 + 60 + 60 * 30 + 30 + 31);
  Model<FingerprintMLP> fingerprint(make_fingerprint_mlp());
  fingerprint.build(2048, 1);
  CHECK(fingerprint.parameter_count() == 2048 * 1024 + 1024 + 1024 * 256 + 256 + 256 * 64 + 64 + 64 * 16 + 16 + 17);
  CHECK(fingerprint.parameters()[0].name.find("SparseInputDense") != std::string::npos);
}

TEST_CASE("A model file restores the same predictions and refuses the wrong model") {
  const SyntheticLibrary library;
  const SyntheticLibraryDataset<float> data(library, molecule_features::descriptors, 0, 64);
  Model<DescriptorMLP> model(make_descriptor_mlp(0.25));
  model.build(1613, 4);
  model.for_each_setting([](const std::string&, double& rate) { rate = 0.3; });
  const std::string path = "strata_test_descriptor.model";
  save_model(model, path, {{"kind", "descriptor-mlp"}});
  Model<DescriptorMLP> restored(make_descriptor_mlp());
  restored.build(1613, 99);
  const auto meta = load_model(restored, path, "descriptor-mlp");
  CHECK(meta.at("input_width") == "1613");
  std::vector<float> a, b, c;
  const auto into = [](std::vector<float>& v) {
    return [&v](Index, const matrix_f& p, const matrix_f&) { v.insert(v.end(), p.data(), p.data() + p.size()); };
  };
  predict_stream(model, data, 20, into(a));
  predict_stream(restored, data, 20, into(b));
  predict_stream(restored, data, 64, into(c));
  CHECK(a.size() == 64);
  CHECK(a == b);  // the same weights, bit for bit
  // Another batch size gives the same predictions up to the GEMM's summation order.
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(c[i] == Approx(a[i]).epsilon(1e-5).margin(1e-5));
  restored.for_each_setting([](const std::string&, double& rate) { CHECK(rate == 0.3); });

  CHECK_THROWS_WITH(load_model(restored, path, "fingerprint-mlp"), Contains("holds a descriptor-mlp model, not a fingerprint-mlp model"));
  Model<DescriptorMLP> narrow(make_descriptor_mlp());
  narrow.build(100, 1);
  CHECK_THROWS_WITH(load_model(narrow, path, "descriptor-mlp"), Contains("trained on 1613 input features, this model reads 100"));
  CHECK_THROWS_WITH(load_model(restored, "no/such/file.model", "descriptor-mlp"), Contains("cannot open"));
  // A bad setting is found before anything changes: the model keeps its weights and rates.
  state_file edited = state_file::read(path);
  for (auto& [key, value] : edited.meta)
    if (key.rfind("setting/", 0) == 0) value = "1.5";
  edited.write(path);
  Model<DescriptorMLP> untouched(make_descriptor_mlp());
  untouched.build(1613, 99);
  const matrix_f first_weights = *untouched.parameters()[0].value;
  CHECK_THROWS_WITH(load_model(untouched, path, "descriptor-mlp"), Contains("= 1.5, outside [0, 1)"));
  CHECK(*untouched.parameters()[0].value == first_weights);
  untouched.for_each_setting([](const std::string&, double& rate) { CHECK(rate != 1.5); });
  std::remove(path.c_str());

  const SyntheticLibraryDataset<float> fingerprints(library, molecule_features::fingerprint, 0, 10);
  CHECK_THROWS_WITH(predict_stream(model, fingerprints, 8, [](Index, const matrix_f&, const matrix_f&) {}),
                    Contains("the model reads 1613 features per molecule, the library has 2048"));
}

TEST_CASE("TopK keeps the k best predictions, ties by id, in bounded memory") {
  const random_stream rng(3, purpose::user);
  std::vector<scored_molecule> all;
  TopK top(25);
  for (std::uint64_t i = 0; i < 5000; ++i) {
    const scored_molecule m{i, std::floor(100 * rng.uniform(i)) / 10, 0.0};  // many ties
    all.push_back(m);
    top.offer(m);
  }
  std::sort(all.begin(), all.end(), [](const scored_molecule& a, const scored_molecule& b) {
    return a.predicted != b.predicted ? a.predicted > b.predicted : a.id < b.id;
  });
  const auto kept = top.sorted();
  REQUIRE(kept.size() == 25);
  for (std::size_t k = 0; k < kept.size(); ++k) {
    CHECK(kept[k].id == all[k].id);
    CHECK(kept[k].predicted == all[k].predicted);
  }
  TopK with_nan(2);  // NaN predictions sort last and cannot break the heap
  with_nan.offer({1, NAN, 0.0});
  with_nan.offer({2, 0.5, 0.0});
  with_nan.offer({3, NAN, 0.0});
  with_nan.offer({4, -1.0, 0.0});
  const auto two = with_nan.sorted();
  REQUIRE(two.size() == 2);
  CHECK(two[0].id == 2);
  CHECK(two[1].id == 4);
  TopK none(0);
  none.offer({1, 2.0, 0.0});
  CHECK(none.sorted().empty());
}

TEST_CASE("Without RDKit, SMILES input says how to get it") {
  // This test binary does not link Strata::rdkit, so it sees the build without RDKit.
  static_assert(!rdkit_available);
  CHECK_THROWS_WITH(MorganFeaturizer{}, Contains("SMILES input needs RDKit") && Contains("librdkit-dev"));
}

TEST_CASE("Precomputed feature tables: every column but id and score is a feature; bad rows are reported") {
  const std::string path = "strata_test_features.csv";
  std::ofstream(path) << "id,d1,d2,score\nA,0.5,1,-8\nB,x,2,-7\nC,1.5,,-6\nD,2,3,NA\nE,2.5,4,-9.5\n";
  molecule_read_options options;
  options.score_column = "score";
  options.docking_score = true;
  const molecule_table t = read_feature_table(path, options);
  CHECK(t.rows == 5);
  CHECK(t.ids == std::vector<std::string>{"A", "E"});
  REQUIRE(t.features.rows() == 2);
  CHECK(t.features(0, 1) == 2.5f);
  CHECK(t.labels(0, 1) == 9.5f);
  REQUIRE(t.rejected.size() == 3);
  CHECK_THAT(t.rejected[0].reason, Contains(":3:") && Contains("'x' is not a number"));
  CHECK_THAT(t.rejected[1].reason, Contains("missing value in feature column 'd2'"));
  CHECK_THAT(t.rejected[2].reason, Contains("missing score in column 'score'"));
  options.strict = true;
  CHECK_THROWS_WITH(read_feature_table(path, options), Contains(":3:") && Contains("strict mode"));
  std::remove(path.c_str());
}

TEST_CASE("The library's tanh gives std::tanh's bits, computing almost all of them itself") {
  std::vector<float> x;
  const random_stream rng(3, purpose::user);
  for (std::uint64_t i = 0; i < 2000000; ++i) x.push_back(static_cast<float>(24 * rng.uniform(i) - 12));
  // Runs of neighbouring floats: from the smallest (subnormal) up, around where 2a = k ln2 / 16
  // switches the table entry (k = 1, 2, 16, 17), in the middle and where tanh rounds to 1.
  for (const float start : {std::numeric_limits<float>::denorm_min(), 1.1754e-38f, 1e-30f, 1e-4f, 0.021660f, 0.043321f,
                            0.34657f, 0.36823f, 0.5f, 8.9f, 9.5f, 10.0f}) {
    float v = start;
    for (int k = 0; k < 20000; ++k, v = std::nextafter(v, 20.0f)) {
      x.push_back(v);
      x.push_back(-v);
    }
  }
  for (const float special : {0.0f, -0.0f, std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max(),
                              -std::numeric_limits<float>::max(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()})
    x.push_back(special);
  std::vector<float> fast(x.size());
  const Index by_std = detail::tanh_to_float(x.data(), fast.data(), static_cast<Index>(x.size()));
  Index differ = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const float expected = static_cast<float>(std::tanh(static_cast<double>(x[i])));
    if (std::memcmp(&expected, &fast[i], sizeof expected) != 0) {
      if (differ++ < 5) FAIL_CHECK("tanh(" << x[i] << "): " << fast[i] << " instead of " << expected);
    }
  }
  CHECK(differ == 0);
  CHECK(by_std < static_cast<Index>(x.size() / 1000));  // the fast path did the work (the NaN always falls back)
  CHECK(by_std >= 1);

  SECTION("in place, as the library computes its descriptors") {
    std::vector<float> in_place = x;
    CHECK(detail::tanh_to_float(in_place.data(), in_place.data(), static_cast<Index>(x.size())) == by_std);
    CHECK(std::memcmp(in_place.data(), fast.data(), sizeof(float) * x.size()) == 0);
  }
}

TEST_CASE("The library's molecules keep their bits, however they are gathered") {
  // The synthetic library is defined by its bits: models trained on it and screens of it are
  // compared across versions. These hashes were taken before the generator was last optimised.
  const SyntheticLibrary library;
  const Index n = 3000;
  std::vector<Index> rows(static_cast<std::size_t>(n));
  std::iota(rows.begin(), rows.end(), Index{0});
  const auto hash_of = [&](molecule_features f) {
    const SyntheticLibraryDataset<float> data(library, f, 1000000, n);
    matrix_f x, y;
    data.gather(rows.data(), n, x, y);
    std::uint64_t h = fnv1a64(x.data(), sizeof(float) * static_cast<std::size_t>(x.size()));
    return fnv1a64(y.data(), sizeof(float) * static_cast<std::size_t>(y.size()), h);
  };
  CHECK(hash_of(molecule_features::descriptors) == 0x816605a7ce34c402ull);
  CHECK(hash_of(molecule_features::fingerprint) == 0x5bc6d961f04234b2ull);
  CHECK(hash_of(molecule_features::fingerprint_counts) == 0xc64d34b8db0df237ull);

  // A gather in any order, with repeats, gives each molecule as drawn alone.
  const SyntheticLibraryDataset<float> data(library, molecule_features::descriptors, 77, 5000);
  std::vector<Index> picks;
  for (Index k = 0; k < 700; ++k) picks.push_back((k * 7919) % 5000);
  picks.push_back(picks.front());
  matrix_f x, y;
  data.gather(picks.data(), static_cast<Index>(picks.size()), x, y);
  std::vector<float> alone(1613);
  Index differ = 0;
  for (std::size_t j = 0; j < picks.size(); ++j) {
    library.features(77 + static_cast<std::uint64_t>(picks[j]), molecule_features::descriptors, alone.data());
    differ += std::memcmp(alone.data(), x.col(static_cast<Index>(j)).data(), sizeof(float) * alone.size()) != 0;
  }
  CHECK(differ == 0);
  CHECK(y(0, 3) == static_cast<float>(library.label(77 + static_cast<std::uint64_t>(picks[3]))));

  // A screen may skip the labels: the same features, and targets that say they are unknown.
  using library_data = SyntheticLibraryDataset<float>;
  const library_data unlabelled(library, molecule_features::descriptors, 77, 5000, library_data::labels::skipped);
  CHECK_FALSE(unlabelled.has_labels());
  matrix_f x2, y2;
  unlabelled.gather(picks.data(), static_cast<Index>(picks.size()), x2, y2);
  CHECK(x2 == x);
  CHECK(y2.cols() == static_cast<Index>(picks.size()));
  CHECK(y2.array().isNaN().all());
}

TEST_CASE("A stream of evaluation batches reuses the sparse layer's packed weights, never stale ones") {
  const SyntheticLibrary library;
  const SyntheticLibraryDataset<float> data(library, molecule_features::fingerprint_counts, 0, 300);
  Model<FingerprintMLP> model(make_fingerprint_mlp());
  model.build(2048, 5);
  const auto streamed = [&] {
    std::vector<float> p;
    predict_stream(model, data, 128, [&p](Index, const matrix_f& y, const matrix_f&) { p.insert(p.end(), y.data(), y.data() + y.size()); });
    return p;
  };
  const auto batch_by_batch = [&] {  // every pass on its own: the weights packed again each time
    std::vector<float> p;
    pass_info eval;
    eval.phase = mode::eval;
    for (Index first = 0; first < data.size(); first += 128) {
      const Index n = std::min<Index>(128, data.size() - first);
      std::vector<Index> rows(static_cast<std::size_t>(n));
      std::iota(rows.begin(), rows.end(), first);
      matrix_f x, y;
      data.gather(rows.data(), n, x, y);
      eval.first_sample = static_cast<std::uint64_t>(first);
      const matrix_f out = model.forward(x, eval);
      p.insert(p.end(), out.data(), out.data() + out.size());
    }
    return p;
  };
  const std::vector<float> before = streamed();
  CHECK(before == batch_by_batch());
  // New weights between streams: the next stream packs them again.
  *model.parameters()[0].value *= 0.5f;
  const std::vector<float> after = streamed();
  CHECK(after == batch_by_batch());
  CHECK(after != before);
}
