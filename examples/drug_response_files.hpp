#pragma once
// Where drug_response finds its files, shared by training and prediction.
#include <strata/core/error.hpp>

#include <filesystem>
#include <initializer_list>
#include <string>

namespace examples {

/// The CANDLE files of one data set: cell table, drug table, response (or tuple) file.
struct drug_response_files {
  std::string data_dir, cell_file, drug_file, response_file;

  /// True when no file was named (train then generates synthetic data).
  bool none() const { return data_dir.empty() && cell_file.empty() && drug_file.empty() && response_file.empty(); }

  /// Finds in `data_dir` each file not named one by one; io_error naming what is missing.
  void locate() {
    namespace fs = std::filesystem;
    if (data_dir.empty()) return;
    if (!fs::is_directory(data_dir)) throw strata::io_error("--data-dir " + data_dir + ": not a directory");
    const auto pick = [&](std::string& file, std::initializer_list<const char*> names, const char* what) {
      if (!file.empty()) return;
      for (const char* n : names)
        if (fs::exists(fs::path(data_dir) / n)) {
          file = (fs::path(data_dir) / n).string();
          return;
        }
      std::string list;
      for (const char* n : names) (list += " ") += n;
      throw strata::io_error("--data-dir " + data_dir + ": no " + what + " file (looked for" + list + ")");
    };
    pick(cell_file, {"cell_expression.tsv", "cell_expression.txt"}, "cell expression");
    pick(drug_file, {"drug_descriptors.tsv", "drug_descriptors.txt"}, "drug descriptor");
    pick(response_file, {"ComboDrugGrowth_Nov2017.csv", "response.csv", "response.tsv"}, "response");
  }

  /// Whether the response file is in NCI-ALMANAC's ComboDrugGrowth layout (else plain tuples).
  bool combo_format() const {
    return std::filesystem::path(response_file).filename().string().rfind("ComboDrugGrowth", 0) == 0;
  }
};

}  // namespace examples
