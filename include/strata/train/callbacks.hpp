#pragma once
/// \file callbacks.hpp
/// The standard callbacks: a progress display (a live line within long epochs with loss,
/// samples/s and ETA, and one line per epoch), early stopping, learning-rate schedules, and a
/// per-epoch metrics log as CSV or JSON lines.

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

#include <unistd.h>

#include "../core/error.hpp"
#include "../optim/schedule.hpp"
#include "callback.hpp"

namespace strata {

namespace detail {
/// "1:02:03" or "2:03" for a duration in seconds.
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(seconds + 0.5);
  std::ostringstream out;
  if (s >= 3600) out << s / 3600 << ":" << std::setw(2) << std::setfill('0') << (s / 60) % 60;
  else out << (s / 60) % 60;
  out << ":" << std::setw(2) << std::setfill('0') << s % 60;
  return out.str();
}
}  // namespace detail

/// Prints training progress on the root rank. On a terminal the current epoch's line is
/// rewritten in place every `refresh_seconds`; in a log file (not a terminal) a progress line is
/// written at most every `log_seconds` so long epochs still show life without flooding the log.
class ProgressPrinter : public callback {
 public:
  explicit ProgressPrinter(std::ostream& out = std::cerr, double refresh_seconds = 0.25,
                           double log_seconds = 30.0)
      : out_(out), refresh_(refresh_seconds), log_every_(log_seconds),
        live_(&out == &std::cerr ? isatty(fileno(stderr)) != 0
                                 : (&out == &std::cout ? isatty(fileno(stdout)) != 0 : false)) {}

  void on_train_begin(const train_info& info) override {
    root_ = info.is_root;
    started_ = std::chrono::steady_clock::now();
    if (root_)
      out_ << "training: " << info.samples_per_epoch << " samples per epoch, batch " << info.batch_size
           << ", epochs " << info.first_epoch + 1 << ".." << info.epochs << "\n" << std::flush;
  }
  // On a terminal the line appears at once; in a log the first line of an epoch waits one interval.
  void on_epoch_begin(Index, training_control&) override { last_print_ = live_ ? -1e300 : 0.0; }

  void on_batch_end(const batch_progress& p) override {
    if (!root_) return;
    const double interval = live_ ? refresh_ : log_every_;
    if (p.elapsed_seconds - last_print_ < interval && p.samples_done < p.samples_total) return;
    last_print_ = p.elapsed_seconds;
    const double rate = p.elapsed_seconds > 0 ? static_cast<double>(p.samples_done) / p.elapsed_seconds : 0.0;
    const double eta = rate > 0 ? static_cast<double>(p.samples_total - p.samples_done) / rate : NAN;
    const int percent = static_cast<int>(100.0 * static_cast<double>(p.samples_done) / static_cast<double>(p.samples_total));
    std::ostringstream line;
    line << "epoch " << p.epoch + 1 << "/" << p.epochs << " " << std::setw(3) << percent << "% loss "
         << std::setprecision(4) << p.mean_loss << "  " << std::fixed << std::setprecision(0) << rate
         << " samples/s  ETA " << detail::format_duration(eta);
    if (live_) out_ << "\r" << line.str() << "\x1b[K" << std::flush;
    else if (p.samples_done < p.samples_total) out_ << line.str() << "\n" << std::flush;
  }

  void on_epoch_end(const epoch_record& r, training_control&) override {
    if (!root_) return;
    // Formatted into a local stream so the user's stream keeps its own flags and precision.
    std::ostringstream line;
    line << "epoch " << r.epoch + 1 << ": train loss " << std::setprecision(5) << r.train_loss;
    for (const char* key : {"mse", "mae", "r2", "pearson"}) {
      const auto it = r.validation.find(key);
      if (it != r.validation.end()) line << "  val " << key << " " << std::setprecision(5) << it->second;
    }
    line << "  lr " << std::setprecision(3) << r.learning_rate << "  " << std::fixed << std::setprecision(0)
         << r.samples_per_second << " samples/s  " << std::setprecision(1) << r.seconds << " s  elapsed "
         << detail::format_duration(std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count())
         << "\n";
    if (live_) out_ << "\r\x1b[K";
    out_ << line.str() << std::flush;
  }

 private:
  std::ostream& out_;
  double refresh_, log_every_;
  bool live_;
  bool root_ = true;
  double last_print_ = -1e300;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
};

/// Stops training when a validation figure has not improved by more than `min_delta` for
/// `patience` epochs. `higher_is_better` for figures such as r2.
class EarlyStopping : public callback {
 public:
  explicit EarlyStopping(std::string watched = "loss", Index patience = 5, double min_delta = 0.0,
                         bool higher_is_better = false)
      : watched_(std::move(watched)), patience_(patience), min_delta_(min_delta), higher_(higher_is_better) {
    if (patience_ < 0) throw config_error(detail::concat("EarlyStopping: patience must not be negative, got ", patience_));
  }

  void on_epoch_end(const epoch_record& r, training_control& control) override {
    const auto it = r.validation.find(watched_);
    if (it == r.validation.end())
      throw config_error("EarlyStopping: watches validation '" + watched_ + "' but training has no validation set or no such figure");
    const double value = higher_ ? -it->second : it->second;
    if (value < best_ - min_delta_) {
      best_ = value;
      best_epoch_ = r.epoch;
      waited_ = 0;
    } else if (++waited_ > patience_) {
      control.stop = true;
    }
  }

  /// The epoch with the best figure so far.
  Index best_epoch() const { return best_epoch_; }

 private:
  std::string watched_;
  Index patience_;
  double min_delta_;
  bool higher_;
  double best_ = std::numeric_limits<double>::infinity();
  Index best_epoch_ = -1;
  Index waited_ = 0;
};

/// Sets the learning rate at the start of every epoch from a schedule (StepLR,
/// CosineAnnealingLR, LinearWarmup, ...: anything with `lr(base_lr, epoch)`).
template <class Schedule>
class LearningRateSchedule : public callback {
 public:
  LearningRateSchedule(Schedule schedule, double base_lr) : schedule_(std::move(schedule)), base_(base_lr) {}
  void on_epoch_begin(Index epoch, training_control& control) override {
    control.learning_rate = schedule_.lr(base_, static_cast<std::uint64_t>(epoch));
  }

 private:
  Schedule schedule_;
  double base_;
};

/// Scales the learning rate down when a validation figure stops improving.
class PlateauSchedule : public callback {
 public:
  explicit PlateauSchedule(ReduceLROnPlateau plateau, std::string watched = "loss")
      : plateau_(std::move(plateau)), watched_(std::move(watched)) {}
  void on_epoch_begin(Index, training_control& control) override {
    if (!base_) base_ = control.learning_rate;
    control.learning_rate = plateau_.lr(*base_);
  }
  void on_epoch_end(const epoch_record& r, training_control& control) override {
    const auto it = r.validation.find(watched_);
    if (it == r.validation.end())
      throw config_error("PlateauSchedule: watches validation '" + watched_ + "' but there is no such figure");
    plateau_.observe(it->second);
    control.learning_rate = plateau_.lr(*base_);
  }

 private:
  ReduceLROnPlateau plateau_;
  std::string watched_;
  std::optional<double> base_;
};

/// Writes one record per epoch to a file on the root rank: CSV (header from the first record)
/// or JSON lines, chosen by the file's extension (.csv, or .jsonl/.json).
class MetricsLog : public callback {
 public:
  explicit MetricsLog(std::string path) : path_(std::move(path)) {
    const auto dot = path_.rfind('.');
    const std::string ext = dot == std::string::npos ? "" : path_.substr(dot);
    if (ext == ".csv") json_ = false;
    else if (ext == ".jsonl" || ext == ".json") json_ = true;
    else throw config_error("MetricsLog: '" + path_ + "' must end in .csv, .jsonl or .json");
  }

  void on_train_begin(const train_info& info) override {
    root_ = info.is_root;
    if (!root_) return;
    file_.open(path_, info.first_epoch > 0 ? std::ios::app : std::ios::trunc);
    if (!file_) throw io_error("MetricsLog: cannot open '" + path_ + "' for writing");
    header_written_ = info.first_epoch > 0;
  }

  void on_epoch_end(const epoch_record& r, training_control&) override {
    if (!root_) return;
    file_ << std::setprecision(9);
    if (json_) {
      file_ << "{\"epoch\":" << r.epoch + 1 << ",\"train_loss\":" << number(r.train_loss) << ",\"lr\":" << number(r.learning_rate)
            << ",\"seconds\":" << number(r.seconds) << ",\"samples_per_second\":" << number(r.samples_per_second);
      for (const auto& [key, value] : r.validation) file_ << ",\"val_" << key << "\":" << number(value);
      file_ << "}\n";
    } else {
      if (!header_written_) {
        file_ << "epoch,train_loss,lr,seconds,samples_per_second";
        for (const auto& kv : r.validation) file_ << ",val_" << kv.first;
        file_ << "\n";
        header_written_ = true;
      }
      file_ << r.epoch + 1 << "," << r.train_loss << "," << r.learning_rate << "," << r.seconds << "," << r.samples_per_second;
      for (const auto& kv : r.validation) file_ << "," << kv.second;
      file_ << "\n";
    }
    file_.flush();
    if (!file_) throw io_error("MetricsLog: writing '" + path_ + "' failed");
  }

 private:
  /// JSON has no NaN: write null.
  static std::string number(double v) {
    if (!std::isfinite(v)) return "null";
    std::ostringstream s;
    s << std::setprecision(9) << v;
    return s.str();
  }

  std::string path_;
  bool json_ = false;
  bool root_ = true;
  bool header_written_ = false;
  std::ofstream file_;
};

}  // namespace strata
