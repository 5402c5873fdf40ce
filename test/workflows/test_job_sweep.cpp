// JobSweep: every job runs once and its result comes back under its name, however many run at
// once; a work directory makes a rerun train nothing twice and refuses another sweep's results;
// a failing job stops the sweep with its own error.
#include <catch2/catch.hpp>

#include <strata/parallel/communicator.hpp>
#include <strata/workflows/job_sweep.hpp>

#include <atomic>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

using namespace strata;
using Catch::Matchers::Contains;

namespace {
std::vector<std::string> job_names(int n) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back("job-" + std::to_string(i));
  return names;
}

/// A job whose result is its index squared, counting how often it trained.
struct counting_job {
  std::atomic<int>& trained;
  template <class Strategy>
  state_file operator()(std::size_t i, Strategy) const {
    if (!std::is_same_v<Strategy, Serial>) throw std::logic_error("a group of one rank trains serially");
    ++trained;
    state_file out;
    out.meta["value"] = std::to_string(i * i);
    out.meta["summary"] = "value " + std::to_string(i * i);
    return out;
  }
};
}  // namespace

TEST_CASE("Every job runs once and comes back under its name, one or several at a time") {
  SerialCommunicator world;
  for (const Index concurrent : {1, 4}) {
    std::atomic<int> trained{0};
    JobSweep<SerialCommunicator> sweep(world, {concurrent, 1, "", 7});
    Index resumed = 0;
    std::vector<std::string> lines;  // progress is called under the sweep's lock: no Catch2 there
    const auto results = sweep.run(job_names(20), counting_job{trained}, [&](const std::string& line) { lines.push_back(line); },
                                   resumed);
    CHECK(trained == 20);
    REQUIRE(lines.size() == 20);
    for (const auto& line : lines) CHECK_THAT(line, Contains("on this rank, value "));
    CHECK(resumed == 0);
    REQUIRE(results.size() == 20);
    CHECK(results.at("job-7").meta.at("value") == "49");
    CHECK(results.at("job-7").meta.at("job/signature") == "7");
  }
}

TEST_CASE("With a work directory a rerun trains nothing twice and refuses another sweep's results") {
  SerialCommunicator world;
  const std::string dir = (std::filesystem::temp_directory_path() / "strata_job_sweep").string();
  std::filesystem::remove_all(dir);
  std::atomic<int> trained{0};
  Index resumed = 0;
  JobSweep<SerialCommunicator>(world, {2, 1, dir, 11}).run(job_names(6), counting_job{trained}, {}, resumed);
  CHECK(trained == 6);
  std::filesystem::remove(dir + "/job-4.job");
  const auto again = JobSweep<SerialCommunicator>(world, {2, 1, dir, 11}).run(job_names(6), counting_job{trained}, {}, resumed);
  CHECK(trained == 7);  // only job-4 trained again
  CHECK(resumed == 5);
  CHECK(again.at("job-5").meta.at("value") == "25");
  CHECK_THROWS_WITH(JobSweep<SerialCommunicator>(world, {1, 1, dir, 12}).run(job_names(6), counting_job{trained}, {}, resumed),
                    Contains("job-0.job") && Contains("different sweep"));
  std::filesystem::copy_file(dir + "/job-1.job", dir + "/job-2.job", std::filesystem::copy_options::overwrite_existing);
  CHECK_THROWS_WITH(JobSweep<SerialCommunicator>(world, {1, 1, dir, 11}).run(job_names(6), counting_job{trained}, {}, resumed),
                    Contains("holds the result of job 'job-1', not of 'job-2'"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("A failing job stops the sweep with its error; groups must divide the ranks") {
  SerialCommunicator world;
  JobSweep<SerialCommunicator> sweep(world, {3, 1, "", 0});
  Index resumed = 0;
  const auto failing = [](std::size_t i, auto) -> state_file {
    if (i == 5) throw data_error("job 5 went wrong");
    return {};
  };
  CHECK_THROWS_WITH(sweep.run(job_names(12), failing, {}, resumed), Contains("job 5 went wrong"));
  CHECK_THROWS_WITH(JobSweep<SerialCommunicator>(world, {1, 2, "", 0}), Contains("1 ranks cannot form groups of 2"));
  CHECK_THROWS_WITH(JobSweep<SerialCommunicator>(world, {0, 1, "", 0}), Contains("must be positive"));
}
