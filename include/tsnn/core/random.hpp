#pragma once
/// \file
/// \brief The library's random number generators. They are defined here rather than taken from
/// <random> engines so that a seed gives the same network on every platform and standard library.

#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

#include "tsnn/core/config.hpp"

namespace tsnn {

namespace detail {
__extension__ typedef unsigned __int128 Uint128;
}  // namespace detail

/// \brief SplitMix64 finaliser: a bijective 64-bit mixer. Used to expand seeds and, keyed by a
/// counter, as a stateless generator (hash(seed, i) for element i), which is what lets dropout
/// masks be drawn in parallel and still be identical for any thread count.
inline std::uint64_t mix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// \brief xoshiro256** (Blackman and Vigna): small state, fast, passes BigCrush. Satisfies
/// UniformRandomBitGenerator, so it also drives <random> distributions.
class Rng {
 public:
  using result_type = std::uint64_t;

  explicit Rng(std::uint64_t seed = 0x5EEDull) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    std::uint64_t x = seed;
    for (auto& s : m_s) {
      x = mix64(x);
      s = x;
    }
  }

  /// \brief The full generator state, for checkpoints: setState(state()) resumes the stream.
  std::array<std::uint64_t, 4> state() const { return {m_s[0], m_s[1], m_s[2], m_s[3]}; }
  /// \throws std::invalid_argument for the all-zero state, from which xoshiro never leaves.
  void setState(const std::array<std::uint64_t, 4>& s) {
    if ((s[0] | s[1] | s[2] | s[3]) == 0)
      throw std::invalid_argument("tsnn: Rng::setState(): the all-zero state is invalid");
    for (int i = 0; i < 4; ++i) m_s[i] = s[static_cast<std::size_t>(i)];
  }

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }

  result_type operator()() {
    const std::uint64_t result = rotl(m_s[1] * 5, 7) * 9;
    const std::uint64_t t = m_s[1] << 17;
    m_s[2] ^= m_s[0];
    m_s[3] ^= m_s[1];
    m_s[1] ^= m_s[2];
    m_s[0] ^= m_s[3];
    m_s[2] ^= t;
    m_s[3] = rotl(m_s[3], 45);
    return result;
  }

  /// \brief Uniform double in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>((*this)() >> 11) * 0x1.0p-53; }

  /// \brief Uniform double in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// \brief Uniform integer in [0, n), n > 0, without modulo bias (Lemire's multiply-shift with
  /// rejection).
  std::uint64_t below(std::uint64_t n) {
    TSNN_ASSERT(n > 0);
    std::uint64_t x = (*this)();
    detail::Uint128 m = static_cast<detail::Uint128>(x) * n;
    std::uint64_t low = static_cast<std::uint64_t>(m);
    if (low < n) {
      const std::uint64_t threshold = (0 - n) % n;
      while (low < threshold) {
        x = (*this)();
        m = static_cast<detail::Uint128>(x) * n;
        low = static_cast<std::uint64_t>(m);
      }
    }
    return static_cast<std::uint64_t>(m >> 64);
  }

  /// \brief Standard normal variate (Box-Muller; the second variate is discarded so that the
  /// state advances by a fixed amount per call).
  double normal() {
    double u1 = uniform();
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  /// \brief A generator for a sub-stream (e.g. one per worker): seeded from this one's output.
  Rng split() { return Rng((*this)() ^ 0xA5A5A5A5DEADBEEFull); }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t m_s[4];
};

}  // namespace tsnn
