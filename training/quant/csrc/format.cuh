// Fake-quant ExMy format math: per-format constants, element rounding, scales, random bits.
//
// x_q = Q(x * S) * min(1 / S, inv_max) in float32 with one scale S per group.
// training/quant/reference.py defines the semantics; these functions repeat its operations in
// the same order. Build without --use_fast_math and with --fmad=false: subnormals must survive
// and no multiply may be fused into an add.
#pragma once

#include <c10/util/Exception.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace fq {
namespace detail {

// Per-format constants, computed once on the host and passed by value.
struct QParams {
  int mbits;
  int emin;
  int max_exp;
  int rounding;  // 0 nearest_even, 1 half_away, 2 stochastic
  bool subnormals;
  bool saturate;
  bool pow2;
  float maxv;
  float ovf;
  float inv_max;  // largest de-scale factor whose product with maxv is finite (descale_limit)
  // nearest-even fast path (bit patterns of non-negative float32 values)
  int sh;             // 23 - mbits
  uint32_t inc0;      // rounding increment without the lsb term
  uint32_t lsbm;      // 1, or 0 for M = 0 (ties go up: integer significand 2 is "even")
  uint32_t keep;      // ~((1 << sh) - 1)
  uint32_t sub_lim;   // bits of 2**emin: smaller magnitudes are in the target's subnormal range
  uint32_t maxv_bits;
  uint32_t over_bits; // what a magnitude above maxv becomes (maxv, Inf or NaN)
  float magic;        // (|y| + magic) - magic rounds |y| < 2**emin to the subnormal quantum (RNE)
  // fast path (quant_fast): nearest even with subnormals and saturation, and the rounding
  // constants 2**(e + 23 - M) representable for every binade e in [emin, max_exp + 1]
  bool fast;
  float c_lo;         // 2**emin
  float c_hi;         // 2**(max_exp + 1)
  float c_k;          // 2**(23 - M)
};

inline float host_pow2(int k) {  // exact 2**k, k in [-126, 127]
  uint32_t b = static_cast<uint32_t>(k + 127) << 23;
  float f;
  std::memcpy(&f, &b, sizeof(f));
  return f;
}

inline uint32_t host_bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof(b));
  return b;
}

// The largest float32 f for which the float32 product maxv * f is finite: the exact product (of
// two 24-bit significands, exact in double) must stay below 2**128 - 2**103, the midpoint
// between FLT_MAX and 2**128, at and above which round-to-nearest-even gives Inf.
inline float descale_limit(float maxv) {
  const double edge = 0x1p128 - 0x1p103;
  float f = static_cast<float>(std::min(edge / maxv, static_cast<double>(FLT_MAX)));
  while (static_cast<double>(f) * maxv >= edge) f = std::nextafter(f, 0.f);
  while (static_cast<double>(std::nextafter(f, INFINITY)) * maxv < edge)
    f = std::nextafter(f, INFINITY);
  return f;
}

inline QParams make_params(const std::vector<int64_t>& code, double maxv, bool pow2) {
  TORCH_CHECK(code.size() == 7, "fmt_code must have 7 entries");
  QParams p;
  p.mbits = static_cast<int>(code[0]);
  p.emin = static_cast<int>(code[1]);
  p.max_exp = static_cast<int>(code[2]);
  p.rounding = static_cast<int>(code[3]);
  p.subnormals = code[4] != 0;
  p.saturate = code[5] != 0;
  p.pow2 = pow2;
  p.maxv = static_cast<float>(maxv);
  p.ovf = code[6] != 0 ? __builtin_nanf("") : __builtin_inff();
  TORCH_CHECK(p.mbits >= 0 && p.mbits <= 22, "mbits out of range");
  TORCH_CHECK(p.emin >= -126 && p.emin <= 1, "emin out of range");
  TORCH_CHECK(p.rounding >= 0 && p.rounding <= 2, "rounding out of range");
  TORCH_CHECK(static_cast<double>(p.maxv) == maxv, "maxv must be exact in float32");
  p.inv_max = descale_limit(p.maxv);
  p.sh = 23 - p.mbits;
  p.inc0 = p.mbits == 0 ? (1u << 22) : (1u << (p.sh - 1)) - 1u;
  p.lsbm = p.mbits == 0 ? 0u : 1u;
  p.keep = ~((1u << p.sh) - 1u);
  p.sub_lim = static_cast<uint32_t>(p.emin + 127) << 23;
  p.maxv_bits = host_bits(p.maxv);
  p.over_bits = host_bits(p.saturate ? p.maxv : p.ovf);
  // Subnormals: the float32 sum lies in [magic, 2 * magic), whose ulp is the quantum
  // 2**(emin - M), so one IEEE addition rounds to nearest even on the target grid; the
  // subtraction is exact (Sterbenz). Flushing: an ulp of 2**(emin + 2) rounds every
  // |y| < 2**emin to zero.
  p.magic = host_pow2(p.subnormals ? p.emin + 23 - p.mbits : p.emin + 25);
  TORCH_CHECK(p.max_exp >= p.emin && p.max_exp <= 127, "max_exponent out of range");
  p.fast = p.rounding == 0 && p.subnormals && p.saturate && p.max_exp + 24 - p.mbits <= 127;
  p.c_lo = host_pow2(p.emin);
  p.c_hi = host_pow2(std::min(p.max_exp + 1, 127));
  p.c_k = host_pow2(23 - p.mbits);
  return p;
}

// ---------------------------------------------------------------------------------------------
// Philox4x32-10 (same function as training/quant/philox.py)

__device__ __forceinline__ uint4 philox(uint4 c, uint2 k) {
#pragma unroll
  for (int r = 0; r < 10; ++r) {
    if (r > 0) {
      k.x += 0x9E3779B9u;
      k.y += 0xBB67AE85u;
    }
    const uint32_t hi0 = __umulhi(0xD2511F53u, c.x), lo0 = 0xD2511F53u * c.x;
    const uint32_t hi1 = __umulhi(0xCD9E8D57u, c.z), lo1 = 0xCD9E8D57u * c.z;
    c = make_uint4(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
  }
  return c;
}

struct Rng {
  uint2 key;
  uint32_t off_lo, off_hi;
};

__device__ __forceinline__ Rng make_rng(const int64_t* state, int stream) {
  Rng g;
  const uint64_t seed = static_cast<uint64_t>(state[0]);
  const uint64_t off = static_cast<uint64_t>(state[1]) * 16u + static_cast<uint64_t>(stream);
  g.key = make_uint2(static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  g.off_lo = static_cast<uint32_t>(off);
  g.off_hi = static_cast<uint32_t>(off >> 32);
  return g;
}

__device__ __forceinline__ uint4 philox_at(const Rng& g, uint64_t ctr) {
  return philox(make_uint4(static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32), g.off_lo,
                           g.off_hi),
                g.key);
}

__device__ __forceinline__ uint32_t word(uint4 w, int i) {
  return i == 0 ? w.x : (i == 1 ? w.y : (i == 2 ? w.z : w.w));
}

// 32 random bits for elements i0 .. i0+N-1 (i0 % 4 == 0 when N % 4 == 0).
template <int N>
__device__ __forceinline__ void rand_pack(const Rng& g, int64_t i0, uint32_t (&r)[N]) {
  if constexpr (N % 4 == 0) {
#pragma unroll
    for (int q = 0; q < N / 4; ++q) {
      const uint4 w = philox_at(g, static_cast<uint64_t>(i0 / 4 + q));
      r[4 * q] = w.x;
      r[4 * q + 1] = w.y;
      r[4 * q + 2] = w.z;
      r[4 * q + 3] = w.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const int64_t i = i0 + j;
      r[j] = word(philox_at(g, static_cast<uint64_t>(i >> 2)), static_cast<int>(i & 3));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// element rounding and scales

__device__ __forceinline__ float pow2f(int k) {  // exact 2**k for k in [-126, 127]
  return __int_as_float((k + 127) << 23);
}

// Round-to-nearest-even onto the grid (no scaling), branch-free: integer RNE of the float32
// bits for the normal range, the magic-number addition for the subnormal range, one select.
// Any flags (flush, no saturation, E = 8).
__device__ __forceinline__ float quant_rne(float y, const QParams& p) {
  const uint32_t yb = __float_as_uint(y);
  const uint32_t u = yb & 0x7fffffffu;
  const uint32_t qn = (u + p.inc0 + ((u >> p.sh) & p.lsbm)) & p.keep;
  const float au = __uint_as_float(u);
  const uint32_t qs = __float_as_uint(__fsub_rn(__fadd_rn(au, p.magic), p.magic));
  uint32_t q = u < p.sub_lim ? qs : qn;
  q = q > p.maxv_bits ? p.over_bits : q;
  q |= yb & 0x80000000u;
  return u > 0x7f800000u ? y : __uint_as_float(q);  // NaN stays NaN
}

// min(a, b) that returns NaN when a is NaN (b is never NaN).
__device__ __forceinline__ float min_keep_nan(float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  float r;
  asm("min.NaN.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
#else
  return a > b ? b : a;
#endif
}

// Round-to-nearest-even onto the grid when p.fast (subnormals kept, overflow saturates), with
// one rounding addition for every binade: for |y| in [2**e, 2**(e+1)), e >= emin, the float32
// sum |y| + 2**(e + 23 - M) lies in [2**(e + 23 - M), 2**(e + 24 - M)], whose ulp is the grid
// quantum 2**(e - M), so the IEEE addition rounds |y| to nearest even on the grid (the parity of
// the sum's last bit is the parity of the grid index) and the subtraction is exact. Below 2**emin
// the binade is clamped to emin (the subnormal quantum, as the magic constant above). At or above
// 2**(max_exp + 1) the binade is clamped too: the result stays above max_value and saturates.
// Inf gives Inf (then max_value), NaN stays NaN (min.NaN), zero keeps its sign. Same values as
// quant_rne for every float32 input; the constants are exact powers of two (p.fast checks that
// 2**(max_exp + 24 - M) is finite).
__device__ __forceinline__ float quant_fast(float y, const QParams& p) {
  const uint32_t yb = __float_as_uint(y);
  const float e = __uint_as_float(yb & 0x7f800000u);  // 2**floor(log2|y|); 0 or Inf at the ends
  const float c = __fmul_rn(fminf(fmaxf(e, p.c_lo), p.c_hi), p.c_k);
  const float q = __fsub_rn(__fadd_rn(fabsf(y), c), c);
  const float qs = min_keep_nan(q, p.maxv);
  return __uint_as_float(__float_as_uint(qs) | (yb & 0x80000000u));
}

// Any rounding mode, decided at run time (half_away and stochastic).
__device__ __forceinline__ float quant_any(float y, const QParams& p, uint32_t rbits) {
  if (p.rounding == 0) return quant_rne(y, p);  // nearest even without p.fast
  if (isnan(y)) return y;
  const uint32_t u = __float_as_uint(y) & 0x7fffffffu;
  float a;
  if (u < p.sub_lim) {  // subnormal range of the target: quantum 2**(emin - M)
    const float t = __fmul_rn(__fmul_rn(__uint_as_float(u), pow2f(-p.emin)), pow2f(p.mbits));
    float r;
    if (!p.subnormals) {
      r = 0.f;
    } else if (p.rounding == 0) {
      r = rintf(t);
    } else {
      const float fl = floorf(t);
      const float frac = __fsub_rn(t, fl);
      if (p.rounding == 1) {
        r = frac >= 0.5f ? __fadd_rn(fl, 1.f) : fl;
      } else {
        const float uni = __fmul_rn(static_cast<float>(rbits >> 8), 5.9604644775390625e-08f);
        r = frac > uni ? __fadd_rn(fl, 1.f) : fl;
      }
    }
    a = __fmul_rn(__fmul_rn(r, pow2f(-p.mbits)), pow2f(p.emin));
  } else {  // normal range: integer rounding of the bit pattern at bit 23 - M
    uint32_t inc;
    if (p.rounding == 0) {
      inc = p.inc0 + ((u >> p.sh) & p.lsbm);
    } else if (p.rounding == 1) {
      inc = 1u << (p.sh - 1);
    } else {
      inc = rbits & ~p.keep;
    }
    a = __uint_as_float((u + inc) & p.keep);
  }
  if (a > p.maxv) a = p.saturate ? p.maxv : p.ovf;
  return copysignf(a, y);
}

// RM = 0: nearest even with p.fast (compile-time fast path); RM = -1: mode read from p at run
// time.
template <int RM>
__device__ __forceinline__ float quant_elem(float y, const QParams& p, uint32_t rbits) {
  if constexpr (RM == 0) {
    return quant_fast(y, p);
  } else {
    return quant_any(y, p, rbits);
  }
}

__device__ __forceinline__ float scale_of(float amax, const QParams& p) {
  if (!(amax > 0.f)) return 1.f;
  if (!p.pow2) return fminf(__fdiv_rn(p.maxv, amax), FLT_MAX);
  int ex;
  frexpf(amax, &ex);  // amax = m * 2**ex, m in [0.5, 1)
  int k = p.max_exp - (ex - 1);
  k = k < -126 ? -126 : (k > 127 ? 127 : k);
  return pow2f(k);
}

// The de-scale factor of a group: 1 / S, capped at p.inv_max so that no grid value becomes Inf
// (1 / S rounds up for an absmax near FLT_MAX).
__device__ __forceinline__ float descale_of(float s, const QParams& p) {
  return fminf(__fdiv_rn(1.f, s), p.inv_max);
}

__device__ __forceinline__ float fin_abs(float v) {
  const float a = fabsf(v);
  return a <= FLT_MAX ? a : 0.f;  // NaN and Inf do not enter the absmax
}

}  // namespace detail
}  // namespace fq
