#pragma once
/// \file stall_watchdog.hpp
/// The stall watchdog of `MpiCommunicator`: a job whose ranks disagree about which collective
/// comes next (one rank skipped an all-reduce, another waits in it) would otherwise wait
/// forever without a word. Every blocking collective is marked on entry and exit (a lock and
/// a clock read: nothing next to a collective's microseconds); one thread per process looks
/// at the mark a few times a second, and when this rank has waited in one collective longer
/// than the stall timeout it asks every other rank where it is, prints which ranks have not
/// arrived at which collective, and aborts the job (the check Horovod calls its stall check).
///
///   rank 0: stall: waited more than 2 s in all-reduce #41 on the world (2 ranks); the job is aborted (...)
///     rank 0: waiting 2.0 s in all-reduce #41 on the world (2 ranks)
///     rank 1: waiting 2.1 s in barrier #41 on the world (2 ranks)
///     not arrived at all-reduce #41 on the world (2 ranks): rank 1
///
/// Collectives are numbered per communicator, in the order each rank starts them (a
/// non-blocking one when it is started, not when it is waited for), so ranks that agree have
/// the same numbers; point-to-point sends and receives are shown but not numbered.
///
/// The timeout is 300 s unless the environment variable `STRATA_STALL_TIMEOUT` (seconds; 0
/// turns the reports off) or `stall_watchdog::set_timeout` says otherwise; long legitimate
/// waits (one rank reading a large file while the others wait at a broadcast) need a longer
/// one. The other ranks are asked over MPI from the watchdog thread, which MPI allows only when
/// it was initialised with `MPI_THREAD_MULTIPLE` (`boost::mpi::threading::multiple`, as
/// Strata's programs do); with less, a stalled rank reports only itself and its thread calls
/// MPI_Abort while the main thread waits inside MPI (outside the letter of lower thread levels,
/// but the only way left to end the job). Queries travel on `MPI_COMM_WORLD` under tags 0x57A1
/// and 0x57A2, which programs must not receive with `MPI_ANY_TAG` on the world communicator.
/// The watchdog stops when MPI_Finalize starts: a rank that hangs while the others finalise is
/// not reported.

#include <mpi.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../core/error.hpp"

namespace strata {

namespace detail {
/// A communicator as stall reports name it, and its count of collectives (shared by its copies).
struct collective_counter {
  std::string description;   ///< "the world (4 ranks)" or "ranks 2, 3 of the world"
  std::vector<int> members;  ///< its ranks' world ranks
  std::uint64_t entered = 0;
};
}  // namespace detail

/// The process's watchdog (one per process, whatever the number of communicators).
class stall_watchdog {
 public:
  /// Seconds a rank may wait in one collective before the job is aborted; 0: never.
  static double timeout() { return instance().timeout_.load(); }
  /// Changes the timeout for the whole process (any time; it applies to waits in progress too).
  static void set_timeout(double seconds) {
    if (!(seconds >= 0)) throw config_error(detail::concat("stall timeout must be >= 0 seconds, got ", seconds));
    instance().timeout_.store(seconds);
  }

  /// Starts the watchdog thread once MPI is initialised (called by every MpiCommunicator).
  static void start() { instance().start_once(); }

  /// Marks this process as waiting in collective `what` on `on` for as long as it lives: the
  /// next collective of `on` (`number` 0), collective `number` of `on` (a non-blocking one
  /// numbered when it started, see `next_number`), or an unnumbered point-to-point operation
  /// (`number` = `unnumbered`).
  class scope {
   public:
    scope(const char* what, const std::shared_ptr<detail::collective_counter>& on, std::uint64_t number = 0)
        : w_(instance()) {
      if (number == 0) number = next_number(*on);
      const std::lock_guard<std::mutex> lock(w_.mutex_);
      w_.waiting_ = true;
      w_.what_ = what;
      w_.on_ = on;
      w_.number_ = number;
      w_.since_ = clock::now();
    }
    ~scope() {
      const std::lock_guard<std::mutex> lock(w_.mutex_);
      w_.waiting_ = false;  // what_, number_ and on_ now name the last collective left
      w_.since_ = clock::now();
    }
    scope(const scope&) = delete;
    scope& operator=(const scope&) = delete;

   private:
    stall_watchdog& w_;
  };

  /// The number of the next collective started on `on` (main thread only, as MPI calls are).
  static std::uint64_t next_number(detail::collective_counter& on) { return ++on.entered; }
  /// `scope`'s number for point-to-point operations, which are shown but not numbered.
  static constexpr std::uint64_t unnumbered = ~std::uint64_t{0};

 private:
  using clock = std::chrono::steady_clock;
  static constexpr int query_tag = 0x57A1, reply_tag = 0x57A2;

  static stall_watchdog& instance() {
    // Never destroyed: the thread may still look at it while static objects are torn down.
    static stall_watchdog* const w = new stall_watchdog();
    return *w;
  }

  stall_watchdog() {
    if (const char* env = std::getenv("STRATA_STALL_TIMEOUT")) {
      char* end = nullptr;
      const double v = std::strtod(env, &end);
      if (end != env && *end == '\0' && v >= 0) timeout_.store(v);
      else std::fprintf(stderr, "strata: ignoring STRATA_STALL_TIMEOUT='%s' (want seconds >= 0)\n", env);
    }
  }

  /// What this rank is doing, as the seconds it has waited in a collective (0 when in none)
  /// and a line: "waiting 2.0 s in all-reduce #41 on ..." or "running, in no collective ...".
  struct state {
    double waited = 0;
    std::string line, collective;
    std::vector<int> members;
  };
  state now() {
    const std::lock_guard<std::mutex> lock(mutex_);
    state s;
    const double seconds = std::chrono::duration<double>(clock::now() - since_).count();
    if (on_) s.collective = number_ == unnumbered ? detail::concat(what_, " on ", on_->description)
                                                  : detail::concat(what_, " #", number_, " on ", on_->description);
    if (waiting_) {
      s.waited = seconds;
      s.members = on_->members;
      s.line = detail::concat("waiting ", fixed1(seconds), " s in ", s.collective);
    } else {
      s.line = on_ ? detail::concat("running, in no collective (left ", s.collective, " ", fixed1(seconds), " s ago)")
                   : std::string("running, in no collective yet");
    }
    return s;
  }
  static std::string fixed1(double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", s);
    return text;
  }

  void start_once() {
    std::call_once(started_, [this] {
      int initialised = 0, finalised = 0;
      MPI_Initialized(&initialised);
      MPI_Finalized(&finalised);
      if (!initialised || finalised) return;
      int level = MPI_THREAD_SINGLE;
      MPI_Query_thread(&level);
      can_ask_ = level == MPI_THREAD_MULTIPLE;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
      MPI_Comm_size(MPI_COMM_WORLD, &ranks_);
      // MPI_Finalize deletes MPI_COMM_SELF's attributes first: the watchdog stops there, before
      // MPI is gone (a thread still probing after MPI_Finalize would crash the process).
      int key = MPI_KEYVAL_INVALID;
      MPI_Comm_create_keyval(MPI_COMM_NULL_COPY_FN, &stop_at_finalize, &key, nullptr);
      MPI_Comm_set_attr(MPI_COMM_SELF, key, this);
      thread_ = new std::thread([this] { run(); });  // joined at MPI_Finalize, never destroyed
    });
  }

  static int stop_at_finalize(MPI_Comm, int, void* watchdog, void*) {
    auto* w = static_cast<stall_watchdog*>(watchdog);
    {
      const std::lock_guard<std::mutex> lock(w->mutex_);
      w->stop_ = true;
    }
    w->wake_.notify_all();
    if (w->thread_ && w->thread_->joinable()) w->thread_->join();
    return MPI_SUCCESS;
  }

  /// Sleeps up to `seconds`; false when the watchdog is to stop.
  bool sleep(double seconds) {
    std::unique_lock<std::mutex> lock(mutex_);
    return !wake_.wait_for(lock, std::chrono::duration<double>(seconds), [this] { return stop_; });
  }

  /// Looks a few times a second; answers other ranks' questions; reports this rank's stall.
  void run() {
    for (;;) {
      const double limit = timeout_.load();
      if (!sleep(limit > 0 ? std::clamp(limit / 8, 0.02, 0.25) : 0.25)) return;
      if (can_ask_) answer_questions();
      if (limit > 0 && now().waited > limit) report_and_abort(limit);  // returns if the wait just ended
    }
  }

  /// Replies to every question waiting: "<seconds waited> <state line>".
  void answer_questions() {
    for (;;) {
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, query_tag, MPI_COMM_WORLD, &pending, &status);
      if (!pending) return;
      char ignored = 0;
      MPI_Recv(&ignored, 1, MPI_CHAR, status.MPI_SOURCE, query_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      const state s = now();
      auto reply = std::make_unique<std::string>(detail::concat(s.waited, ' ', s.line));
      MPI_Request request;
      MPI_Isend(reply->data(), static_cast<int>(reply->size()), MPI_CHAR, status.MPI_SOURCE, reply_tag, MPI_COMM_WORLD,
                &request);
      replies_.emplace_back(request, std::move(reply));  // kept until sent (the job ends soon)
    }
  }

  /// Asks every rank where it is, then prints the report (or leaves it to a lower stalled rank)
  /// and aborts the job; returns at once if this rank's wait has just ended.
  void report_and_abort(double limit) {
    const state own = now();
    if (own.waited <= limit) return;
    const double grace = std::min(limit, 5.0);
    std::vector<double> waited(static_cast<std::size_t>(ranks_), -1.0);
    std::vector<std::string> lines(static_cast<std::size_t>(ranks_));
    waited[static_cast<std::size_t>(rank_)] = own.waited;
    lines[static_cast<std::size_t>(rank_)] = own.line;
    if (can_ask_) ask_everyone(waited, lines, grace);
    // Every stalled rank gets here; one that sees a lower rank stalled too (or about to be: its
    // watchdog looks every quarter second) leaves the report to it and answers its questions
    // until it has had time to report, so the job prints one report, not one per rank.
    for (int r = 0; r < rank_; ++r) {
      const double lower = waited[static_cast<std::size_t>(r)];
      if (lower > limit - 1.0) {
        const auto until = clock::now() + std::chrono::duration<double>(std::max(0.0, limit - lower) + grace + 2.0);
        while (clock::now() < until && sleep(0.05)) answer_questions();
        abort_job();
      }
    }
    std::string report = detail::concat("rank ", rank_, ": stall: waited more than ", limit, " s in ", own.collective,
                                        "; the job is aborted (STRATA_STALL_TIMEOUT sets the limit)\n");
    std::string missing;
    for (int r = 0; r < ranks_; ++r) {
      const std::string& line = lines[static_cast<std::size_t>(r)];
      report += detail::concat("  rank ", r, ": ", line.empty() ? "no answer (hung outside MPI, or dead)" : line, "\n");
      const bool member = std::find(own.members.begin(), own.members.end(), r) != own.members.end();
      const bool arrived = waited[static_cast<std::size_t>(r)] > 0 && line.find(" s in " + own.collective) != std::string::npos;
      if (member && !arrived) missing += detail::concat(missing.empty() ? "" : ", ", r);
    }
    if (can_ask_ && missing.empty())
      report += detail::concat("  every rank of ", own.collective, " has arrived: the collective itself does not complete "
                               "(ranks disagree on its root, counts or types?)\n");
    else if (can_ask_)
      report += detail::concat("  not arrived at ", own.collective, ": rank", missing.find(',') != std::string::npos ? "s " : " ",
                               missing, "\n");
    else
      report += "  (other ranks not asked: MPI was initialised without MPI_THREAD_MULTIPLE)\n";
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
    abort_job();
  }

  [[noreturn]] static void abort_job() {
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::abort();
  }

  /// Fills `waited[r]` and `lines[r]` with rank r's answer, waiting at most `grace` seconds.
  void ask_everyone(std::vector<double>& waited, std::vector<std::string>& lines, double grace) {
    static const char question = '?';
    for (int r = 0; r < ranks_; ++r) {
      if (r == rank_) continue;
      MPI_Request request;
      MPI_Isend(&question, 1, MPI_CHAR, r, query_tag, MPI_COMM_WORLD, &request);
      MPI_Request_free(&request);
    }
    int answers = 0;
    const auto deadline = clock::now() + std::chrono::duration<double>(grace);
    while (answers < ranks_ - 1 && clock::now() < deadline) {
      answer_questions();  // another stalled rank may be asking this one at the same time
      int pending = 0;
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, reply_tag, MPI_COMM_WORLD, &pending, &status);
      if (!pending) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        continue;
      }
      int length = 0;
      MPI_Get_count(&status, MPI_CHAR, &length);
      std::string reply(static_cast<std::size_t>(std::max(length, 0)), '\0');
      MPI_Recv(reply.data(), length, MPI_CHAR, status.MPI_SOURCE, reply_tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      const auto r = static_cast<std::size_t>(status.MPI_SOURCE);
      if (lines[r].empty()) ++answers;
      const std::size_t space = reply.find(' ');
      waited[r] = std::strtod(reply.c_str(), nullptr);
      lines[r] = space == std::string::npos ? reply : reply.substr(space + 1);
    }
  }

  std::atomic<double> timeout_{300.0};
  std::once_flag started_;
  bool can_ask_ = false;
  int rank_ = 0, ranks_ = 1;
  std::thread* thread_ = nullptr;
  std::vector<std::pair<MPI_Request, std::unique_ptr<std::string>>> replies_;  // watchdog thread only

  std::mutex mutex_;  // guards everything below
  std::condition_variable wake_;
  bool stop_ = false;
  bool waiting_ = false;  // in a collective now
  const char* what_ = nullptr;  // that collective (or the last one left)
  std::shared_ptr<detail::collective_counter> on_;
  std::uint64_t number_ = 0;
  clock::time_point since_ = clock::now();  // when it entered it (or left the last one)
};

}  // namespace strata
