#pragma once
/// \file
/// \brief A one-line progress bar for terminals, and nothing for pipes and files.

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>

namespace tsnn {

/// \brief Draws "[#####.....] 45%  27000/60000  1.2e5 samples/s  ETA 0.3s" on one line, redrawn
/// with a carriage return at most every 100 ms. Disabled when the stream is not a terminal, so
/// logs and CI output stay free of control characters.
class ProgressBar {
 public:
  explicit ProgressBar(std::FILE* stream = stderr, bool enabled = true)
      : m_stream(stream), m_enabled(enabled && isatty(fileno(stream))) {}

  bool enabled() const { return m_enabled; }

  /// \brief Starts a new bar with a label such as "epoch 3/10". The rate and ETA are measured
  /// from the first update() after it.
  void start(const std::string& label) {
    m_label = label;
    m_start = m_last = std::chrono::steady_clock::now();
    m_drawn = false;
    m_first = -1;
  }

  void update(long long done, long long total) {
    if (!m_enabled || total <= 0) return;
    const auto now = std::chrono::steady_clock::now();
    if (m_first < 0) {  // the rate is measured from the first report on
      m_first = done;
      m_start = now;
    }
    if (done < total && m_drawn && now - m_last < std::chrono::milliseconds(100)) return;
    m_last = now;
    m_drawn = true;
    const double frac = static_cast<double>(done) / static_cast<double>(total);
    const int width = 30;
    const int filled = static_cast<int>(frac * width);
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    const double secs = std::chrono::duration<double>(now - m_start).count();
    if (secs < 0.05 || done <= m_first) {
      std::fprintf(m_stream, "\r%s [%s] %3d%% %lld/%lld ", m_label.c_str(), bar.c_str(),
                   static_cast<int>(frac * 100), done, total);
    } else {
      const double rate = static_cast<double>(done - m_first) / secs;
      const double eta = static_cast<double>(total - done) / rate;
      std::fprintf(m_stream, "\r%s [%s] %3d%% %lld/%lld %.0f samples/s ETA %.1fs ", m_label.c_str(),
                   bar.c_str(), static_cast<int>(frac * 100), done, total, rate, eta);
    }
    std::fflush(m_stream);
  }

  /// \brief Erases the bar so that the next line starts clean.
  void finish() {
    if (!m_enabled || !m_drawn) return;
    std::fprintf(m_stream, "\r\033[K");
    std::fflush(m_stream);
    m_drawn = false;
  }

 private:
  std::FILE* m_stream;
  bool m_enabled;
  bool m_drawn = false;
  long long m_first = -1;
  std::string m_label;
  std::chrono::steady_clock::time_point m_start, m_last;
};

}  // namespace tsnn
