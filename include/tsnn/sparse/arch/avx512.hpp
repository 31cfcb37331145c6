#pragma once
/// \file
/// \brief The kernels' avx512 path: batch tiles on AVX-512 registers (16 floats or 8 doubles),
/// narrow tiles as one masked register, and the weight gradient's float dot products reduced
/// four at a time with shuffles. About 15% faster than the generic path compiled for AVX-512 on
/// the 1000 x 1000, density 0.04, batch 128 benchmark, and 2.2x faster than the generic path of a
/// portable (SSE2) build (BENCHMARKS.md).
///
/// Compiled in a target region ("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq": x86-64-v4) with
/// GCC or clang on x86-64, whatever the translation unit's flags, and run only when
/// tsnn::simdPath() says so (which checks the CPU); elsewhere only when the flags enable all of
/// those. The whole loop nest (kernel_loops.inl) is in the region, so that the tiles inline.

#include <cmath>
#include <cstddef>
#include <type_traits>

#include "tsnn/core/activations.hpp"
#include "tsnn/core/config.hpp"
#include "tsnn/sparse/coo_matrix.hpp"
#include "tsnn/sparse/csr_matrix.hpp"
#include "tsnn/sparse/simd.hpp"

#if TSNN_SIMD_HAS_AVX512
#include <immintrin.h>

#if TSNN_SIMD_DISPATCH
#if defined(__clang__)
#pragma clang attribute push( \
    __attribute__((target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,avx512f,avx512vl,avx512bw,avx512dq")
#endif
#endif
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 warns about the _mm512_undefined_ps() inside its own shuffle intrinsics.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace tsnn::detail::simd {
inline namespace TSNN_SIMD_BASELINE {
namespace avx512 {

/// Tag of this path (see arch/generic.hpp).
struct Arch {};

inline constexpr int kVectorBytes = 64;

/// The four horizontal sums of v0..v3 (16 floats each), in order. Two 128-bit-lane folds bring
/// each vector's 16 partial sums down to 4 (one lane per vector), then two in-lane folds finish
/// them: 6 shuffles and 4 adds for four sums, against about 4 + 4 per sum one at a time.
inline __m128 horizontalSums4(__m512 v0, __m512 v1, __m512 v2, __m512 v3) {
  // a: 128-bit lanes [v0 lo+hi 256 halves..., v1 ...]: 8 partials of v0 then 8 of v1.
  const __m512 a =
      _mm512_add_ps(_mm512_shuffle_f32x4(v0, v1, 0x44), _mm512_shuffle_f32x4(v0, v1, 0xEE));
  const __m512 b =
      _mm512_add_ps(_mm512_shuffle_f32x4(v2, v3, 0x44), _mm512_shuffle_f32x4(v2, v3, 0xEE));
  // c: lane i holds 4 partials of v_i.
  const __m512 c =
      _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x88), _mm512_shuffle_f32x4(a, b, 0xDD));
  const __m512 s1 = _mm512_add_ps(c, _mm512_permute_ps(c, 0x4E));
  const __m512 s2 = _mm512_add_ps(s1, _mm512_permute_ps(s1, 0xB1));
  // Every element of lane i now holds the sum of v_i; gather element 0 of each lane.
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(
      _mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), s2));
}

/// Register traits (see register_tiles.inl); only float and double have them.
template <class Scalar>
struct Vec {
  static constexpr bool kDefined = false;
  static constexpr bool kMasked = false;
  static constexpr int kLanes = 1;
};
template <>
struct Vec<float> {
  using Reg = __m512;
  using Mask = __mmask16;
  static constexpr bool kDefined = true;
  static constexpr bool kMasked = true;
  static constexpr bool kSums4 = true;
  static constexpr int kLanes = 16;
  static Reg set1(float v) { return _mm512_set1_ps(v); }
  static Reg load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Reg v) { _mm512_storeu_ps(p, v); }
  template <int N>
  static Mask mask() {
    return static_cast<Mask>((1u << N) - 1u);
  }
  static Reg loadMasked(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void storeMasked(float* p, Mask m, Reg v) { _mm512_mask_storeu_ps(p, m, v); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_ps(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_ps(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_ps(a, b); }
  /// Sixteen bfloat16 values widened to floats (each is the top half of its float); the masked
  /// form reads only the first lanes.
  static Reg widenBf16(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static Reg loadBf16(const BFloat16* p) {
    return widenBf16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static Reg loadBf16Masked(Mask m, const BFloat16* p) {
    return widenBf16(_mm256_maskz_loadu_epi16(m, p));
  }
  /// Sixteen floats rounded to nearest even into bfloat16, bit for bit as Eigen's conversion
  /// (add 0x7FFF plus the kept part's lowest bit, keep the top half; a NaN becomes the quiet
  /// NaN of its sign), then narrowed to 16 bits.
  static __m256i narrowBf16(Reg v) {
    const __m512i u = _mm512_castps_si512(v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_srli_epi32(
        _mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF))), 16);
    const __mmask16 nan = _mm512_cmpgt_epi32_mask(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7FFFFFFF)), _mm512_set1_epi32(0x7F800000));
    const __m512i quiet =
        _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x8000)),
                        _mm512_set1_epi32(0x7FC0));
    return _mm512_cvtepi32_epi16(_mm512_mask_blend_epi32(nan, rounded, quiet));
  }
  static void storeBf16(BFloat16* p, Reg v) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), narrowBf16(v));
  }
  static void storeBf16Masked(BFloat16* p, Mask m, Reg v) {
    _mm256_mask_storeu_epi16(p, m, narrowBf16(v));
  }
  /// Horizontal sum by folding 256-bit halves, 128-bit lanes, then within a lane (GCC 12's
  /// _mm512_reduce_add_ps trips -Wmaybe-uninitialized in user code).
  static float sum(Reg v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4E));
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4E));
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xB1));
    return _mm512_cvtss_f32(v);
  }
  static __m128 sums4(Reg v0, Reg v1, Reg v2, Reg v3) { return horizontalSums4(v0, v1, v2, v3); }
};
template <>
struct Vec<double> {
  using Reg = __m512d;
  using Mask = __mmask8;
  static constexpr bool kDefined = true;
  static constexpr bool kMasked = true;
  static constexpr bool kSums4 = false;
  static constexpr int kLanes = 8;
  static Reg set1(double v) { return _mm512_set1_pd(v); }
  static Reg load(const double* p) { return _mm512_loadu_pd(p); }
  static void store(double* p, Reg v) { _mm512_storeu_pd(p, v); }
  template <int N>
  static Mask mask() {
    return static_cast<Mask>((1u << N) - 1u);
  }
  static Reg loadMasked(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void storeMasked(double* p, Mask m, Reg v) { _mm512_mask_storeu_pd(p, m, v); }
  static Reg mul(Reg a, Reg b) { return _mm512_mul_pd(a, b); }
  static Reg fma(Reg a, Reg b, Reg c) { return _mm512_fmadd_pd(a, b, c); }
  static Reg add(Reg a, Reg b) { return _mm512_add_pd(a, b); }
  static double sum(Reg v) {
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0x4E));
    v = _mm512_add_pd(v, _mm512_shuffle_f64x2(v, v, 0xB1));
    v = _mm512_add_pd(v, _mm512_permute_pd(v, 0x55));
    return _mm512_cvtsd_f64(v);
  }
};

#include "tsnn/sparse/arch/register_tiles.inl"
// The loops come after the tiles they call (a separate block, so clang-format keeps the order).
#include "tsnn/sparse/arch/kernel_loops.inl"

}  // namespace avx512
}  // namespace TSNN_SIMD_BASELINE
}  // namespace tsnn::detail::simd

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#if TSNN_SIMD_DISPATCH
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

#endif  // TSNN_SIMD_HAS_AVX512
