#pragma once
/// \file
/// \brief The kernels' avx2 path: batch tiles on AVX2 registers (8 floats or 4 doubles) with
/// FMA, and the weight gradient's float dot products reduced four at a time. For CPUs without
/// AVX-512 (most desktop CPUs, AMD before Zen 4), where a portable build would otherwise run the
/// SSE2 generic path: on the Zen 4 of BENCHMARKS.md it is twice as fast as that, and within about
/// 5% of the avx512 path.
///
/// Compiled in a target region ("avx2,fma") with GCC or clang on x86-64, whatever the
/// translation unit's flags, and run only when tsnn::simdPath() says so (which checks the CPU);
/// elsewhere only when the flags enable AVX2 and FMA. The whole loop nest (kernel_loops.inl) is
/// in the region, so that the tiles inline. AVX2 has no cheap masked stores, so tiles narrower
/// than a register take plain loops (register_tiles.inl).

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/config.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/simd.hpp"

#if TSNN_SIMD_HAS_AVX2
#include <immintrin.h>

#if TSNN_SIMD_DISPATCH
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#endif

namespace tsnn::detail::simd {
inline namespace TSNN_SIMD_BASELINE {
namespace avx2 {

/// Tag of this path (see arch/generic.hpp).
struct Arch {};

inline constexpr int kVectorBytes = 32;

/// Register traits (see register_tiles.inl); only float and double have them.
template <class Scalar>
struct Vec {
  static constexpr bool kDefined = false;
  static constexpr bool kMasked = false;
  static constexpr int kLanes = 1;
};
template <>
struct Vec<float> {
  using Reg = __m256;
  static constexpr bool kDefined = true;
  static constexpr bool kMasked = false;
  static constexpr bool kSums4 = true;
  static constexpr int kLanes = 8;
  static Reg set1(float v) { return _mm256_set1_ps(v); }
  static Reg load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm256_storeu_ps(p, v); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_ps(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_ps(a, b); }
  /// Eight bfloat16 values widened to floats: each is the top half of its float.
  static Reg loadBf16(const BFloat16* p) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  /// Eight floats rounded to nearest even into bfloat16, bit for bit as Eigen's conversion
  /// (add 0x7FFF plus the kept part's lowest bit, keep the top half; a NaN becomes the quiet
  /// NaN of its sign).
  static void storeBf16(BFloat16* p, Reg v) {
    const __m256i u = _mm256_castps_si256(v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(
        _mm256_add_epi32(u, _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF))), 16);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7FFFFFFF)),
                                           _mm256_set1_epi32(0x7F800000));
    const __m256i quiet =
        _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x8000)),
                        _mm256_set1_epi32(0x7FC0));
    const __m256i r = _mm256_blendv_epi8(rounded, quiet, nan);
    // Each 128-bit lane packs its four values twice; lanes 0 and 2 of 64 bits hold all eight.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }
  /// Horizontal sum by the tree of sums4() (pairs, then pairs of pairs within each 128-bit
  /// half, then the halves), so that a dot product's bits never depend on whether it was
  /// reduced alone or in a group of four (the fused backward kernel groups other entries).
  static float sum(Reg v) {
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(v, v), v);
    return _mm_cvtss_f32(_mm_add_ss(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1)));
  }
  /// The four horizontal sums of v0..v3, in order: three horizontal adds leave each 128-bit lane
  /// holding that lane's sums of v0..v3, and one add folds the two lanes.
  static __m128 sums4(Reg v0, Reg v1, Reg v2, Reg v3) {
    const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
    return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  }
};
template <>
struct Vec<double> {
  using Reg = __m256d;
  static constexpr bool kDefined = true;
  static constexpr bool kMasked = false;
  static constexpr bool kSums4 = false;
  static constexpr int kLanes = 4;
  static Reg set1(double v) { return _mm256_set1_pd(v); }
  static Reg load(const double* p) { return _mm256_loadu_pd(p); }
  static void store(double* p, Reg v) { _mm256_storeu_pd(p, v); }
  static Reg mul(Reg a, Reg b) { return _mm256_mul_pd(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm256_fmadd_pd(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm256_add_pd(a, b); }
  static double sum(Reg v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
    return _mm_cvtsd_f64(s);
  }
};

#include "tsnn/sparse/arch/register_tiles.inl"
// The loops come after the tiles they call (a separate block, so clang-format keeps the order).
#include "tsnn/sparse/arch/kernel_loops.inl"

}  // namespace avx2
}  // namespace TSNN_SIMD_BASELINE
}  // namespace tsnn::detail::simd

#if TSNN_SIMD_DISPATCH
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#endif  // TSNN_SIMD_HAS_AVX2
