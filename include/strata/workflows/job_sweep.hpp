#pragma once
/// \file job_sweep.hpp
/// Many independent trainings spread over the ranks of a communicator, as the studies over many
/// models need (an ensemble transfer study's members, a learning curve's (split, size) points):
///   * jobs go round robin to groups of `ranks_per_job` ranks, in the order given (list the
///     largest first and the groups finish together); a group of several ranks trains its job
///     data-parallel (deterministic mode), a group of one rank runs `concurrent_jobs` at once on
///     threads of their own;
///   * every job's math runs on one thread (core/math_threads.hpp), so a job's numbers do not
///     depend on which rank or thread ran it, nor on how many ran beside it;
///   * a job's result is a state file; with a work directory each is written there as it
///     finishes (by its group's first rank), stamped with the sweep's signature (a hash of the
///     data and settings), and a rerun reads it back instead of training: a killed sweep resumes
///     job by job, and a directory of another sweep is refused;
///   * the results are gathered on every rank (by job name). Worker threads only train; every
///     MPI call stays on the calling thread.

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <numeric>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../core/error.hpp"
#include "../core/math_threads.hpp"
#include "../io/state_file.hpp"
#include "../parallel/data_parallel.hpp"
#include "../parallel/serial.hpp"

namespace strata {

/// How a sweep runs its jobs.
struct sweep_options {
  Index concurrent_jobs = 1;  ///< jobs at once on each group of one rank, on threads of their own
  Index ranks_per_job = 1;    ///< ranks that train one job together, data-parallel (deterministic)
  std::string work_directory; ///< finished jobs are kept here and a rerun skips them ("": none)
  std::uint64_t signature = 0;  ///< the data and settings: results of another signature are refused

  void validate() const {
    if (concurrent_jobs < 1 || ranks_per_job < 1)
      throw config_error(detail::concat("sweep: concurrent jobs and ranks per job must be positive, got ", concurrent_jobs, " and ",
                                        ranks_per_job));
  }
};

namespace detail {
/// Every rank's strings, in rank order, on every rank.
template <class Comm>
std::vector<std::string> all_gather_strings(Comm& comm, const std::vector<std::string>& mine) {
  std::string packed;
  for (const auto& s : mine) {
    const std::uint64_t n = s.size();
    packed.append(reinterpret_cast<const char*>(&n), sizeof n);
    packed += s;
  }
  const auto ranks = static_cast<std::size_t>(comm.size());
  std::uint64_t size = packed.size();
  std::vector<std::uint64_t> sizes(ranks);
  comm.all_gather(&size, sizes.data(), std::vector<std::size_t>(ranks, 1));
  std::vector<std::size_t> counts(sizes.begin(), sizes.end());
  std::string all(std::accumulate(counts.begin(), counts.end(), std::size_t{0}), '\0');
  comm.all_gather(packed.data(), all.data(), counts);
  std::vector<std::string> out;
  for (std::size_t at = 0; at < all.size();) {
    std::uint64_t n = 0;
    std::memcpy(&n, all.data() + at, sizeof n);
    at += sizeof n;
    out.push_back(all.substr(at, static_cast<std::size_t>(n)));
    at += static_cast<std::size_t>(n);
  }
  return out;
}
}  // namespace detail

/// Runs jobs over the ranks of a communicator (see the file comment).
template <class Comm>
class JobSweep {
 public:
  /// Progress: called on the first rank of the group that finishes a job, with a line saying
  /// which and how far.
  using progress_function = std::function<void(const std::string&)>;

  /// Cuts `world` into groups of `options.ranks_per_job` (collective). config_error when they
  /// do not divide the ranks.
  JobSweep(Comm& world, sweep_options options) : world_(world), options_(std::move(options)) {
    options_.validate();
    const int per_job = static_cast<int>(options_.ranks_per_job);
    if (world.size() % per_job != 0)
      throw config_error(detail::concat("sweep: ", world.size(), " ranks cannot form groups of ", per_job,
                                        " (the ranks per job must divide the rank count)"));
    group_ = world.split(world.rank() / per_job, world.rank() % per_job);
    if (!options_.work_directory.empty() && world.rank() == 0) std::filesystem::create_directories(options_.work_directory);
    world.barrier();
  }

  const sweep_options& options() const { return options_; }

  /// Runs jobs `names` (unique; file names in the work directory): `train(i, strategy)` trains
  /// job i with `strategy` (Serial, or DataParallel over the group) and returns its result.
  /// Returns every job's result by name, on every rank. `resumed` counts the jobs this rank read
  /// back from the work directory. A result's metadata "summary", if any, ends its progress line.
  template <class Train>
  std::map<std::string, state_file> run(const std::vector<std::string>& names, Train&& train, const progress_function& progress,
                                        Index& resumed) {
    const auto groups = static_cast<std::size_t>(world_.size() / group_.size());
    const auto my_group = static_cast<std::size_t>(world_.rank() / group_.size());
    const bool group_root = group_.rank() == 0, serial = group_.size() == 1;
    std::vector<std::size_t> owned;
    for (std::size_t i = my_group; i < names.size(); i += groups) owned.push_back(i);
    std::vector<std::string> mine(owned.size());
    const auto started = std::chrono::steady_clock::now();
    std::mutex lock;  // guards the counters, the progress line and the first error
    std::size_t next = 0;
    Index done = 0;
    std::exception_ptr failure;
    const auto work = [&] {
      for (;;) {
        std::size_t k = 0;
        {
          const std::lock_guard<std::mutex> hold(lock);
          if (failure || next == owned.size()) return;
          k = next++;
        }
        try {
          bool reused = false;
          state_file out = result(owned[k], names[owned[k]], train, reused);
          if (group_root) mine[k] = out.to_bytes();
          const std::lock_guard<std::mutex> hold(lock);
          ++done;
          resumed += reused ? 1 : 0;
          if (progress && group_root) {
            const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
            const auto summary = out.meta.find("summary");
            progress(detail::concat(names[owned[k]], reused ? " (kept from the work directory)" : "", ": ", done, "/", owned.size(),
                                    " on this rank", summary == out.meta.end() ? std::string() : ", " + summary->second, ", ",
                                    static_cast<Index>(s), " s"));
          }
        } catch (...) {
          const std::lock_guard<std::mutex> hold(lock);
          if (!failure) failure = std::current_exception();
        }
      }
    };
    {
      const scoped_math_threads one_thread(1);
      std::vector<std::thread> workers;
      for (Index w = 1; serial && w < options_.concurrent_jobs; ++w)
        workers.emplace_back([&] {
          set_math_threads(1);  // OpenMP's setting is per thread: a new thread starts from the default
          work();
        });
      work();
      for (auto& t : workers) t.join();
    }
    if (failure) std::rethrow_exception(failure);
    if (!group_root) mine.clear();  // each job once: from its group's first rank
    std::map<std::string, state_file> all;
    for (const std::string& bytes : detail::all_gather_strings(world_, mine)) {
      state_file f = state_file::from_bytes(bytes, "a gathered job result");
      std::string name = f.meta.at("job/name");
      all.emplace(std::move(name), std::move(f));
    }
    return all;
  }

 private:
  /// Job i's result: read back from the work directory when it is there (`reused`), else trained
  /// by this rank's group and, with a work directory, written there by the group's first rank.
  template <class Train>
  state_file result(std::size_t i, const std::string& name, Train& train, bool& reused) {
    const std::string path = options_.work_directory.empty() ? std::string() : options_.work_directory + "/" + name + ".job";
    if (!path.empty() && std::filesystem::exists(path)) {
      state_file out = state_file::read(path);
      const auto it = out.meta.find("job/signature");
      if (it == out.meta.end() || it->second != std::to_string(options_.signature))
        throw io_error("'" + path + "' is a result of a different sweep (other data or settings); use another work directory");
      const auto job = out.meta.find("job/name");
      if (job == out.meta.end() || job->second != name)
        throw io_error("'" + path + "' holds the result of job '" + (job == out.meta.end() ? std::string("?") : job->second) +
                       "', not of '" + name + "' (a renamed or copied file?)");
      reused = true;
      return out;
    }
    state_file out;
    if (group_.size() == 1) {
      out = train(i, Serial{});
    } else {
      data_parallel_options deterministic;
      deterministic.deterministic = true;
      out = train(i, DataParallel<Comm>(group_, deterministic));
    }
    out.meta["job/name"] = name;
    out.meta["job/signature"] = std::to_string(options_.signature);
    if (!path.empty() && group_.rank() == 0) out.write(path);
    return out;
  }

  Comm& world_;
  sweep_options options_;
  Comm group_;
};

}  // namespace strata
