#pragma once
/// \file mpi_communicator.hpp
/// `MpiCommunicator`: the communicator interface (communicator.hpp) over Boost.MPI and Open MPI.
/// Create a `boost::mpi::environment` at the start of `main` (it initialises and finalises MPI);
/// `MpiCommunicator{}` is then the world. Collectives where Boost.MPI has a raw-buffer form use
/// it; in-place, non-blocking and reduce-scatter calls go to the C API through the Boost
/// communicator's `MPI_Comm`. Every collective is cut into pieces of at most `max_message_bytes`.

#include <boost/mpi/collectives.hpp>
#include <boost/mpi/communicator.hpp>
#include <boost/mpi/datatype.hpp>
#include <boost/mpi/environment.hpp>
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>
#include <vector>

#include "../core/error.hpp"
#include "communicator.hpp"
#include "stall_watchdog.hpp"

namespace strata {

namespace detail {
/// A non-blocking operation whose request was dropped before it completed (a rank unwinding
/// after an error): its pieces and the buffer MPI may still write into, kept together until MPI
/// reports them complete, so the buffer is never freed under a running transfer.
struct dropped_transfer {
  std::vector<MPI_Request> pieces;
  std::shared_ptr<void> buffer;
};
/// Dropped transfers of this process; completed ones are released whenever a new non-blocking
/// operation starts, the rest when the process ends.
inline std::vector<dropped_transfer>& dropped_transfers() {
  static std::vector<dropped_transfer> list;
  return list;
}
inline void release_completed_transfers() {
  auto& list = dropped_transfers();
  list.erase(std::remove_if(list.begin(), list.end(),
                            [](dropped_transfer& t) {
                              int done = 0;
                              MPI_Testall(static_cast<int>(t.pieces.size()), t.pieces.data(), &done, MPI_STATUSES_IGNORE);
                              return done != 0;
                            }),
             list.end());
}
}  // namespace detail

/// Outstanding non-blocking operations (one per piece of a cut-up collective) and the buffer
/// they read and write, which the request owns: dropping a request that is still running hands
/// both to `detail::dropped_transfers` instead of freeing the buffer under MPI. Move-only.
class mpi_request {
 public:
  mpi_request() = default;
  /// The pieces of collective `what`, number `number` on communicator `on` (for stall reports),
  /// working on `buffer`.
  mpi_request(std::vector<MPI_Request> pieces, std::shared_ptr<void> buffer, const char* what,
              std::shared_ptr<detail::collective_counter> on, std::uint64_t number)
      : pieces_(std::move(pieces)), buffer_(std::move(buffer)), what_(what), on_(std::move(on)), number_(number) {}
  mpi_request(mpi_request&& other) noexcept { take(other); }
  mpi_request& operator=(mpi_request&& other) noexcept {
    if (this != &other) {
      drop();
      take(other);
    }
    return *this;
  }
  mpi_request(const mpi_request&) = delete;
  mpi_request& operator=(const mpi_request&) = delete;
  ~mpi_request() { drop(); }

  /// Blocks until every piece is complete (watched: a wait past the stall timeout aborts the job).
  void wait() {
    if (pieces_.empty()) return;
    const stall_watchdog::scope watch(what_, on_, number_);
    MPI_Waitall(static_cast<int>(pieces_.size()), pieces_.data(), MPI_STATUSES_IGNORE);
    pieces_.clear();
  }
  /// True when every piece is complete; also lets MPI progress the transfer.
  bool test() {
    if (pieces_.empty()) return true;
    int done = 0;
    MPI_Testall(static_cast<int>(pieces_.size()), pieces_.data(), &done, MPI_STATUSES_IGNORE);
    if (done) pieces_.clear();
    return done != 0;
  }

 private:
  void take(mpi_request& other) {
    pieces_ = std::move(other.pieces_);
    other.pieces_.clear();
    buffer_ = std::move(other.buffer_);
    what_ = other.what_;
    on_ = std::move(other.on_);
    number_ = other.number_;
  }
  void drop() {
    if (!pieces_.empty() && !test()) detail::dropped_transfers().push_back({std::move(pieces_), std::move(buffer_)});
    pieces_.clear();
    buffer_.reset();
  }

  std::vector<MPI_Request> pieces_;
  std::shared_ptr<void> buffer_;
  const char* what_ = nullptr;
  std::shared_ptr<detail::collective_counter> on_;
  std::uint64_t number_ = 0;
};

class MpiCommunicator {
 public:
  using request = mpi_request;

  /// The world communicator (MPI must be initialised: create a boost::mpi::environment first).
  MpiCommunicator() : MpiCommunicator(boost::mpi::communicator()) {}
  explicit MpiCommunicator(boost::mpi::communicator comm) : comm_(std::move(comm)), counter_(describe(comm_)) {
    stall_watchdog::start();
  }

  int rank() const { return comm_.rank(); }
  int size() const { return comm_.size(); }
  const boost::mpi::communicator& boost_communicator() const { return comm_; }

  template <class T>
  void all_reduce_sum(T* data, std::size_t n) {
    const stall_watchdog::scope watch("all-reduce", counter_);
    for_pieces<T>(n, [&](std::size_t begin, int count) {
      check(MPI_Allreduce(MPI_IN_PLACE, data + begin, count, type<T>(), MPI_SUM, raw()), "all-reduce");
    });
  }

  /// Starts an in-place sum over ranks of `data[0, n)`; the request holds `keep_alive` (which
  /// owns the data) until the transfer is over, even if the request itself is dropped first.
  template <class T>
  request iall_reduce_sum(T* data, std::size_t n, std::shared_ptr<const void> keep_alive) {
    detail::release_completed_transfers();
    const std::uint64_t number = stall_watchdog::next_number(*counter_);  // numbered as started
    std::vector<MPI_Request> pieces;
    for_pieces<T>(n, [&](std::size_t begin, int count) {
      MPI_Request r;
      check(MPI_Iallreduce(MPI_IN_PLACE, data + begin, count, type<T>(), MPI_SUM, raw(), &r), "non-blocking all-reduce");
      pieces.push_back(r);
    });
    return request(std::move(pieces), std::const_pointer_cast<void>(std::move(keep_alive)), "non-blocking all-reduce",
                   counter_, number);
  }
  /// The same over a whole vector, which the request keeps.
  template <class T>
  request iall_reduce_sum(std::shared_ptr<std::vector<T>> buffer) {
    T* data = buffer->data();
    const std::size_t n = buffer->size();
    return iall_reduce_sum(data, n, std::shared_ptr<const void>(std::move(buffer)));
  }

  /// Rank r receives the sum over ranks of block r of `in` (blocks laid out in rank order).
  /// Done as an all-to-all of the blocks (addressed in place) and a local sum in rank order:
  /// Open MPI's own reduce-scatter is several times slower for gradient-sized blocks here.
  template <class T>
  void reduce_scatter_sum(const T* in, T* out, const std::vector<std::size_t>& counts) {
    const stall_watchdog::scope watch("reduce-scatter", counter_);
    check_counts(counts);
    const auto me = static_cast<std::size_t>(rank()), p = counts.size();
    std::vector<T>& received = scratch<T>(p * counts[me]);
    blockwise<T>(counts, [&](std::size_t piece, std::size_t pieces, const std::vector<std::size_t>& offsets) {
      std::vector<int> send_counts(p), send_at(p), receive_counts(p), receive_at(p);
      const auto [mb, me_end] = piece_range(counts[me], piece, pieces);
      for (std::size_t r = 0; r < p; ++r) {
        const auto [b, e] = piece_range(counts[r], piece, pieces);
        send_counts[r] = static_cast<int>(e - b);
        send_at[r] = displacement(offsets[r] + b);
        receive_counts[r] = static_cast<int>(me_end - mb);
        receive_at[r] = displacement(r * counts[me] + mb);
      }
      check(MPI_Alltoallv(in, send_counts.data(), send_at.data(), type<T>(), received.data(), receive_counts.data(),
                          receive_at.data(), type<T>(), raw()),
            "reduce-scatter (all-to-all)");
    });
    for (std::size_t j = 0; j < counts[me]; ++j) {
      T sum = received[j];
      for (std::size_t r = 1; r < p; ++r) sum = sum + received[r * counts[me] + j];
      out[j] = sum;
    }
  }

  /// Every rank receives all ranks' contributions in rank order; rank r gives `counts[r]` values.
  /// Each piece goes straight from `in` to its place in `out` (displacements, no staging copy).
  template <class T>
  void all_gather(const T* in, T* out, const std::vector<std::size_t>& counts) {
    gather_blocks(in, out, counts);
  }

  /// As all_gather, with every rank's `counts[r]` values already at their place in `data`
  /// (MPI_IN_PLACE).
  template <class T>
  void all_gather_in_place(T* data, const std::vector<std::size_t>& counts) {
    gather_blocks(static_cast<const T*>(nullptr), data, counts);
  }

  template <class T>
  void broadcast(T* data, std::size_t n, int root) {
    const stall_watchdog::scope watch("broadcast", counter_);
    for_pieces<T>(n, [&](std::size_t begin, int count) { boost::mpi::broadcast(comm_, data + begin, count, root); });
  }

  /// `in` holds n values for every rank (rank order); `out` receives n values from every rank.
  /// Pieces are addressed in place through displacements (no staging copies).
  template <class T>
  void all_to_all(const T* in, T* out, std::size_t n) {
    const stall_watchdog::scope watch("all-to-all", counter_);
    const std::vector<std::size_t> counts(static_cast<std::size_t>(size()), n);
    blockwise<T>(counts, [&](std::size_t piece, std::size_t pieces, const std::vector<std::size_t>& offsets) {
      const auto [b, e] = piece_range(n, piece, pieces);
      std::vector<int> piece_counts(counts.size(), static_cast<int>(e - b)), displacements(counts.size());
      for (std::size_t r = 0; r < counts.size(); ++r) displacements[r] = displacement(offsets[r] + b);
      check(MPI_Alltoallv(in, piece_counts.data(), displacements.data(), type<T>(), out, piece_counts.data(),
                          displacements.data(), type<T>(), raw()),
            "all-to-all");
    });
  }

  template <class T>
  void send(const T* data, std::size_t n, int dest, int tag) {
    const stall_watchdog::scope watch("send", counter_, stall_watchdog::unnumbered);
    for_pieces<T>(n, [&](std::size_t begin, int count) { comm_.send(dest, tag, data + begin, count); });
  }
  template <class T>
  void recv(T* data, std::size_t n, int source, int tag) {
    const stall_watchdog::scope watch("receive", counter_, stall_watchdog::unnumbered);
    for_pieces<T>(n, [&](std::size_t begin, int count) { comm_.recv(source, tag, data + begin, count); });
  }

  void barrier() {
    const stall_watchdog::scope watch("barrier", counter_);
    comm_.barrier();
  }
  MpiCommunicator split(int color, int key) const {
    const stall_watchdog::scope watch("split", counter_);
    return MpiCommunicator(comm_.split(color, key));
  }
  /// Ends every process of the job (MPI_Abort) with exit code `code`.
  [[noreturn]] void abort(int code) {
    MPI_Abort(raw(), code);
    std::abort();
  }

 private:
  MPI_Comm raw() const { return static_cast<MPI_Comm>(comm_); }

  /// How stall reports name `comm`: "the world (4 ranks)" or "ranks 2, 3 of the world".
  static std::shared_ptr<detail::collective_counter> describe(const boost::mpi::communicator& comm) {
    auto counter = std::make_shared<detail::collective_counter>();
    MPI_Group group, world;
    MPI_Comm_group(static_cast<MPI_Comm>(comm), &group);
    MPI_Comm_group(MPI_COMM_WORLD, &world);
    std::vector<int> ranks(static_cast<std::size_t>(comm.size()));
    for (std::size_t r = 0; r < ranks.size(); ++r) ranks[r] = static_cast<int>(r);
    counter->members.resize(ranks.size());
    MPI_Group_translate_ranks(group, comm.size(), ranks.data(), world, counter->members.data());
    MPI_Group_free(&group);
    MPI_Group_free(&world);
    int world_size = 0;
    MPI_Comm_size(MPI_COMM_WORLD, &world_size);
    if (comm.size() == world_size && counter->members == ranks) {
      counter->description = detail::concat("the world (", world_size, world_size == 1 ? " rank)" : " ranks)");
      return counter;
    }
    counter->description = "rank";
    if (ranks.size() > 1) counter->description += 's';
    for (std::size_t r = 0; r < ranks.size(); ++r) {
      if (r == 8) {
        counter->description += detail::concat(", ... (", ranks.size(), " in all)");
        break;
      }
      counter->description += detail::concat(r ? ", " : " ", counter->members[r]);
    }
    counter->description += " of the world";
    return counter;
  }

  template <class T>
  static MPI_Datatype type() {
    static_assert(std::is_arithmetic_v<T>, "MpiCommunicator: collectives take arithmetic scalars");
    return boost::mpi::get_mpi_datatype<T>(T());
  }

  static void check(int status, const char* what) {
    if (status != MPI_SUCCESS) throw error(detail::concat("MPI ", what, " failed with error code ", status));
  }

  void check_counts(const std::vector<std::size_t>& counts) const {
    if (counts.size() != static_cast<std::size_t>(size()))
      throw config_error(detail::concat("MpiCommunicator: ", counts.size(), " counts for ", size(), " ranks"));
  }

  /// An element offset as MPI's int displacement; larger buffers need another layout.
  static int displacement(std::size_t offset) {
    if (offset > static_cast<std::size_t>(INT_MAX))
      throw config_error(detail::concat("MpiCommunicator: offset ", offset, " exceeds MPI's int displacements"));
    return static_cast<int>(offset);
  }

  /// Calls f(begin, count) for consecutive pieces of at most max_message_bytes.
  template <class T, class F>
  static void for_pieces(std::size_t n, F&& f) {
    const std::size_t step = std::max<std::size_t>(1, max_message_bytes / sizeof(T));
    for (std::size_t begin = 0; begin < n; begin += step) f(begin, static_cast<int>(std::min(step, n - begin)));
  }

  /// Piece `piece` of `pieces` of a block of n elements: [begin, end).
  static std::pair<std::size_t, std::size_t> piece_range(std::size_t n, std::size_t piece, std::size_t pieces) {
    return {n * piece / pieces, n * (piece + 1) / pieces};
  }

  /// Runs a per-rank-block collective in pieces small enough that each call moves at most
  /// max_message_bytes in total: f(piece, pieces, block offsets).
  template <class T, class F>
  static void blockwise(const std::vector<std::size_t>& counts, F&& f) {
    std::vector<std::size_t> offsets(counts.size(), 0);
    std::size_t total = 0;
    for (std::size_t r = 0; r < counts.size(); ++r) {
      offsets[r] = total;
      total += counts[r];
    }
    const std::size_t pieces = std::max<std::size_t>(1, (total * sizeof(T) + max_message_bytes - 1) / max_message_bytes);
    for (std::size_t p = 0; p < pieces; ++p) f(p, pieces, offsets);
  }

  /// MPI_Allgatherv in pieces of at most max_message_bytes; a null `in` gathers in place.
  template <class T>
  void gather_blocks(const T* in, T* out, const std::vector<std::size_t>& counts) {
    const stall_watchdog::scope watch("all-gather", counter_);
    check_counts(counts);
    blockwise<T>(counts, [&](std::size_t piece, std::size_t pieces, const std::vector<std::size_t>& offsets) {
      std::vector<int> piece_counts(counts.size()), displacements(counts.size());
      for (std::size_t r = 0; r < counts.size(); ++r) {
        const auto [b, e] = piece_range(counts[r], piece, pieces);
        piece_counts[r] = static_cast<int>(e - b);
        displacements[r] = displacement(offsets[r] + b);
      }
      const auto [b, e] = piece_range(counts[static_cast<std::size_t>(rank())], piece, pieces);
      check(in == nullptr ? MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, out, piece_counts.data(),
                                           displacements.data(), type<T>(), raw())
                          : MPI_Allgatherv(in + b, static_cast<int>(e - b), type<T>(), out, piece_counts.data(),
                                           displacements.data(), type<T>(), raw()),
            "all-gather");
    });
  }

  /// A reused buffer of at least n T's (large collectives would otherwise fault in fresh pages).
  template <class T>
  std::vector<T>& scratch(std::size_t n) {
    static_assert(std::is_arithmetic_v<T>, "MpiCommunicator: scratch holds scalars");
    auto& buffer = std::get<std::vector<T>>(scratch_);
    if (buffer.size() < n) buffer.resize(n);
    return buffer;
  }

  boost::mpi::communicator comm_;
  std::shared_ptr<detail::collective_counter> counter_;  // shared by copies, as the MPI communicator is
  std::tuple<std::vector<float>, std::vector<double>, std::vector<int>, std::vector<long>, std::vector<unsigned long>,
             std::vector<long long>, std::vector<unsigned long long>, std::vector<unsigned>, std::vector<char>>
      scratch_;
};

}  // namespace strata
