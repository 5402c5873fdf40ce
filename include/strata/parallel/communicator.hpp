#pragma once
/// \file communicator.hpp
/// What parallel strategies need from a communicator, and `SerialCommunicator`, the one-process
/// communicator that needs no MPI (the default). `MpiCommunicator` (mpi_communicator.hpp) is the
/// same interface over Boost.MPI. All collectives work on raw buffers of arithmetic scalars:
///
///   int rank() const; int size() const;
///   all_reduce_sum(T* data, n)                        in place, every rank gets the sum
///   iall_reduce_sum(T* data, n, keep_alive) -> request  non-blocking, in place; request.wait() /
///                                                     .test(); the request holds `keep_alive`
///                                                     (a shared_ptr owning data) until MPI is done
///   iall_reduce_sum(shared_ptr<vector<T>>) -> request  the same over a vector it keeps
///   reduce_scatter_sum(const T* in, T* out, counts)   rank r gets the sum of block r (counts[r])
///   all_gather(const T* in, T* out, counts)           rank r contributes counts[r] values
///   all_gather_in_place(T* data, counts)              the same, each rank's values already at
///                                                     their place in `data`
///   broadcast(T* data, n, root)
///   all_to_all(const T* in, T* out, n)                n values to and from every rank
///   send(const T* data, n, dest, tag) / recv(T* data, n, source, tag)
///   barrier(); split(color, key) -> communicator of the ranks with the same color
///   abort(code)                                       ends the whole job (never returns)
/// Counts are `std::size_t`; implementations cut large collectives into pieces (MPI counts are
/// `int`, and Open MPI slows down sharply above 32 MiB per call on these machines).

#include <algorithm>
#include <memory>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "../core/error.hpp"

namespace strata {

/// Largest message a communicator sends in one collective call (16 MiB; toolchain notes).
inline constexpr std::size_t max_message_bytes = std::size_t{16} << 20;

/// Sizes of `parts` nearly equal consecutive blocks of `n` elements (the first `n % parts` one larger).
inline std::vector<std::size_t> even_counts(std::size_t n, int parts) {
  std::vector<std::size_t> counts(static_cast<std::size_t>(parts), n / static_cast<std::size_t>(parts));
  for (std::size_t r = 0; r < n % static_cast<std::size_t>(parts); ++r) ++counts[r];
  return counts;
}

/// Fails on every rank of `comm` unless all pass the same `mine`: a hash of what decides how
/// many collectives each rank will issue. The message reads "<who>: rank r <what> than rank 0".
template <class Comm>
void check_agreement(Comm& comm, std::uint64_t mine, const char* who, const char* what) {
  const auto p = static_cast<std::size_t>(comm.size());
  if (p == 1) return;
  std::vector<std::uint64_t> all(p);
  comm.all_gather(&mine, all.data(), std::vector<std::size_t>(p, 1));
  for (std::size_t r = 1; r < p; ++r)
    if (all[r] != all[0])
      throw config_error(detail::concat(who, ": rank ", r, " ", what, " than rank 0; every rank must run the same program "
                                        "with the same options and data"));
}

/// A completed request: what the serial communicator's non-blocking calls return.
struct completed_request {
  void wait() {}
  bool test() { return true; }
};

/// A communicator of one process: every collective is a copy or nothing.
class SerialCommunicator {
 public:
  using request = completed_request;

  int rank() const { return 0; }
  int size() const { return 1; }

  template <class T>
  void all_reduce_sum(T*, std::size_t) {}
  template <class T>
  request iall_reduce_sum(T*, std::size_t, std::shared_ptr<const void>) {
    return {};
  }
  template <class T>
  request iall_reduce_sum(std::shared_ptr<std::vector<T>>) {
    return {};
  }
  template <class T>
  void reduce_scatter_sum(const T* in, T* out, const std::vector<std::size_t>& counts) {
    copy(in, out, counts.at(0));
  }
  template <class T>
  void all_gather(const T* in, T* out, const std::vector<std::size_t>& counts) {
    copy(in, out, counts.at(0));
  }
  template <class T>
  void all_gather_in_place(T*, const std::vector<std::size_t>& counts) {
    if (counts.size() != 1) throw config_error(detail::concat("SerialCommunicator: ", counts.size(), " counts for one rank"));
  }
  template <class T>
  void broadcast(T*, std::size_t, int root) {
    check_rank(root);
  }
  template <class T>
  void all_to_all(const T* in, T* out, std::size_t n) {
    copy(in, out, n);
  }
  template <class T>
  void send(const T*, std::size_t, int, int) {
    throw config_error("SerialCommunicator: there is no other rank to send to");
  }
  template <class T>
  void recv(T*, std::size_t, int, int) {
    throw config_error("SerialCommunicator: there is no other rank to receive from");
  }
  void barrier() {}
  SerialCommunicator split(int, int) const { return {}; }
  [[noreturn]] void abort(int code) { std::exit(code); }

 private:
  template <class T>
  static void copy(const T* in, T* out, std::size_t n) {
    if (in != out && n > 0) std::memmove(out, in, n * sizeof(T));
  }
  static void check_rank(int r) {
    if (r != 0) throw config_error(detail::concat("SerialCommunicator: rank ", r, " does not exist (one rank)"));
  }
};

}  // namespace strata
