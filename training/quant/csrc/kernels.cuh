// Fake-quant ExMy CUDA kernels.
//
// x_q = Q(x * S) * (1 / S) in float32 with one scale S per group (see
// training/quant/reference.py, which defines the semantics; this file repeats its operations in
// the same order). Build
// without --use_fast_math and with --fmad=false: subnormals must survive and no multiply may be
// fused into an add.
//
// Kernels
//   rows_warp_kernel   groups contiguous along the last dim, 1..32 lanes per group, whole group
//                      in registers: one read, one write (block sizes up to 2048 bf16 elements).
//   rows_lane_kernel   (variant 1) groups of at most 32 packs along the last dim, coalesced,
//                      the next chunk loaded while the current one is quantized.
//   rows_block_kernel  one thread block per group (long rows, channel-wise).
//   tile_kernel        groups of B rows along a non-last dim (e.g. dim 0 of a 2-D operand):
//                      a tile of B rows x PC packs in registers, column absmax via shuffles and
//                      shared memory; optionally also row groups of the same tile (pair output).
//   strip_kernel       (variant 1) groups of at most 128 rows along a non-last dim: one warp per
//                      strip of B rows x 2..32 column packs, shuffles only, no shared memory.
//   square_kernel      (variant 5) column groups, optionally with row groups (pair output), of a
//                      2-D 16-bit tensor in B x 128 tiles whose every size is a compile-time
//                      constant: the next tile copied to shared memory while one is quantized.
//   pair_strip_kernel  (variant 3) both groupings of a 2-D tensor in one read: warps of column
//                      strips, row maxima through shared memory, two barriers per tile.
//   amax_all_kernel + apply_kernel   tensor-wise: device-side absmax, scale read by pointer.
//   cols_absmax_kernel + cols_scale_kernel + cols_apply_kernel  any other grouping along a
//                      non-last dim (long groups, e.g. channel-wise along dim 0): two reads.
#pragma once

#include "fakequant.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <cfloat>
#include <cstdint>

namespace fq {
namespace detail {

// Which implementation the launchers pick where there are two (process-wide, read on the host
// at each launch, so a CUDA graph keeps the one it was captured with):
//   0  rows_warp_kernel for short row groups, tile_kernel for column groups and pairs;
//   1  rows_lane_kernel for row groups of at most 32 packs (coalesced, register double
//      buffering); strip_kernel for column groups of B rows when a strip of two or more column
//      packs fits (B * SC / 32 <= kTileRegs packs per lane); pairs as those two kernels, one
//      after the other; the rest as 0.
//   2  as 1, with each group's scale computed by one lane and shuffled to the others (where a
//      chunk has at most 32 groups), not by every lane that holds part of the group.
//   3  as 2, with pairs in one read (pair_strip_kernel) where a tile of B rows x bap packs fits
//      one block of bap / SC warps.
//   4  row groups as 2 (rows_lane_kernel, shared scales); column groups and pairs as 0
//      (tile_kernel): the faster kernel of each kind as measured on the H200
//      (docs/benchmarks.md).
//   5  (default) row groups as 0 (rows_warp_kernel); column groups of 32, 64 or 128 rows and
//      pairs of equal blocks of a 2-D 16-bit tensor whose shape tiles (rows a multiple of B,
//      columns of 128) by square_kernel with nearest-even rounding; the rest as 0. The fastest
//      of each kind on the H200 (docs/benchmarks.md).
// Every variant computes the same values (the GPU tests run each against the reference).
inline int& kernel_variant() {
  static int variant = 5;
  return variant;
}
constexpr int kNumVariants = 6;
// row groups of at most 32 packs by rows_lane_kernel (variants 1-4)
inline bool rows_lane_on() { return kernel_variant() >= 1 && kernel_variant() <= 4; }
// one lane computes each group's scale and shuffles it to the others (variants 2-4)
inline bool shared_scales_on() { return kernel_variant() >= 2 && kernel_variant() <= 4; }
// column groups by strip_kernel, pairs as two passes or pair_strip_kernel (variants 1-3)
inline bool strips_on() { return kernel_variant() >= 1 && kernel_variant() <= 3; }
// column groups and pairs of 2-D 16-bit tensors by square_kernel where the shape tiles (5)
inline bool squares_on() { return kernel_variant() == 5; }

constexpr int kThreads = 256;
constexpr int kLaneBlocksPerSm = 3;   // rows_lane_kernel: launch bounds, and its grid per SM
constexpr int kStripBlocksPerSm = 2;  // strip_kernel: likewise
constexpr int kRowRegs = 8;   // packs per thread held in registers (rows kernels)
constexpr int kTileRegs = 8;  // packs per thread held in registers (tile kernel)

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
// element conversions and packs

template <typename T>
__device__ __forceinline__ float to_f(T v);
template <>
__device__ __forceinline__ float to_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ float to_f<__nv_bfloat16>(__nv_bfloat16 v) {
  return __bfloat162float(v);
}
template <>
__device__ __forceinline__ float to_f<__half>(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v);
template <>
__device__ __forceinline__ float from_f<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}
template <>
__device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

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

__device__ __forceinline__ float fin_abs(float v) {
  const float a = fabsf(v);
  return a <= FLT_MAX ? a : 0.f;  // NaN and Inf do not enter the absmax
}

template <typename T, int N>
__device__ __forceinline__ float pack_absmax(const Pack<T, N>& v) {
  float m = 0.f;
#pragma unroll
  for (int j = 0; j < N; ++j) m = fmaxf(m, fin_abs(to_f(v.v[j])));
  return m;
}

// Absmax of |x| over a pack with NaN ignored (fmaxf) but Inf kept: one max per element. A result
// above FLT_MAX means the pack holds an Inf; the caller then recomputes with pack_absmax (rare).
template <typename T, int N>
__device__ __forceinline__ float pack_absmax_inf(const Pack<T, N>& v) {
  float m = 0.f;
#pragma unroll
  for (int j = 0; j < N; ++j) m = fmaxf(m, fabsf(to_f(v.v[j])));
  return m;
}

// Absmaxes of a thread's first NP packs of v: cm[j] over element j of every pack (a column),
// rm[k] over pack k (a row). FIN: Inf left out (fin_abs), for the rare re-pass over a tile that
// holds one; otherwise Inf kept and reported: the result is whether any pack holds an Inf. NaN
// is ignored by fmaxf either way.
template <bool FIN, typename T, int N, int NPM>
__device__ __forceinline__ bool packs_absmax(const Pack<T, N> (&v)[NPM], int NP, float (&cm)[N],
                                             float (&rm)[NPM]) {
  bool has_inf = false;
#pragma unroll
  for (int j = 0; j < N; ++j) cm[j] = 0.f;
#pragma unroll
  for (int k = 0; k < NPM; ++k) {
    rm[k] = 0.f;
    if (k < NP) {
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float a = FIN ? fin_abs(to_f(v[k].v[j])) : fabsf(to_f(v[k].v[j]));
        cm[j] = fmaxf(cm[j], a);
        rm[k] = fmaxf(rm[k], a);
      }
      has_inf |= rm[k] > FLT_MAX;
    }
  }
  return has_inf;
}

// Halves of a 2 x 16-bit vector.
__device__ __forceinline__ __half low_half(__half2 h) { return __low2half(h); }
__device__ __forceinline__ __half high_half(__half2 h) { return __high2half(h); }
__device__ __forceinline__ __nv_bfloat16 low_half(__nv_bfloat162 h) { return __low2bfloat16(h); }
__device__ __forceinline__ __nv_bfloat16 high_half(__nv_bfloat162 h) {
  return __high2bfloat16(h);
}

// packs_absmax for 16-bit elements on packed pairs (abs and max of two halves per instruction,
// no conversion to float32 until the maxima): the max of bf16 / fp16 values is exact and, as
// fmaxf, max.bf16x2 / max.f16x2 return the other operand when one is NaN. Same results as
// packs_absmax<false>, including the Inf report.
template <typename T, int NP>
__device__ __forceinline__ bool packs_absmax_x2(const Pack<T, 8> (&v)[NP], float (&cm)[8],
                                                float (&rm)[NP]) {
  using V2 = typename std::conditional<std::is_same<T, __half>::value, __half2,
                                       __nv_bfloat162>::type;
  V2 c[4];
  bool has_inf = false;
#pragma unroll
  for (int k = 0; k < NP; ++k) {
    V2 a[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      V2 w;
      memcpy(&w, &v[k].v[2 * i], sizeof(V2));
      a[i] = __habs2(w);
      c[i] = k == 0 ? a[i] : __hmax2(c[i], a[i]);
    }
    const V2 r = __hmax2(__hmax2(a[0], a[1]), __hmax2(a[2], a[3]));
    rm[k] = fmaxf(fmaxf(0.f, to_f(low_half(r))), to_f(high_half(r)));  // all-NaN: 0
    has_inf |= rm[k] > FLT_MAX;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    cm[2 * i] = fmaxf(0.f, to_f(low_half(c[i])));
    cm[2 * i + 1] = fmaxf(0.f, to_f(high_half(c[i])));
  }
  return has_inf;
}

// Bits of a 2 x 16-bit vector type as one 32-bit word.
template <typename V2>
__device__ __forceinline__ uint32_t word_of(const V2& h) {
  static_assert(sizeof(V2) == 4, "two 16-bit halves");
  uint32_t u;
  memcpy(&u, &h, 4);
  return u;
}

// Store N converted values as one vector store. The 16-bit types go through 32-bit words: a
// pack of __nv_bfloat162 / __half2 (classes with their own assignment) is copied member by
// member, i.e. as N / 2 separate 32-bit stores, where a pack of words is one 8- or 16-byte
// store (STG.E.64 / STG.E.128).
template <typename OutT, int N>
__device__ __forceinline__ void store_pack(const float (&q)[N], OutT* dst) {
  if constexpr (std::is_same<OutT, __nv_bfloat16>::value && N % 2 == 0) {
    Pack<uint32_t, N / 2> o;  // one cvt.rn.bf16x2.f32 per two elements
#pragma unroll
    for (int j = 0; j < N / 2; ++j) o.v[j] = word_of(__floats2bfloat162_rn(q[2 * j], q[2 * j + 1]));
    *reinterpret_cast<Pack<uint32_t, N / 2>*>(dst) = o;
  } else if constexpr (std::is_same<OutT, __half>::value && N % 2 == 0) {
    Pack<uint32_t, N / 2> o;
#pragma unroll
    for (int j = 0; j < N / 2; ++j) o.v[j] = word_of(__floats2half2_rn(q[2 * j], q[2 * j + 1]));
    *reinterpret_cast<Pack<uint32_t, N / 2>*>(dst) = o;
  } else {
    Pack<OutT, N> o;
#pragma unroll
    for (int j = 0; j < N; ++j) o.v[j] = from_f<OutT>(q[j]);
    *reinterpret_cast<Pack<OutT, N>*>(dst) = o;
  }
}

// Quantize a pack whose elements share the scale s (inv = 1 / s); i0 = flat index of its first
// element.
template <int RM, typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store(const Pack<T, N>& v, float s, float inv,
                                            const QParams& p, const int64_t* state, int stream,
                                            int64_t i0, OutT* out) {
  uint32_t r[N];
#pragma unroll
  for (int j = 0; j < N; ++j) r[j] = 0u;
  if constexpr (RM != 0) {
    if (p.rounding == 2) rand_pack<N>(make_rng(state, stream), i0, r);
  }
  float q[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    q[j] = __fmul_rn(quant_elem<RM>(__fmul_rn(to_f(v.v[j]), s), p, r[j]), inv);
  store_pack<OutT, N>(q, out + i0);
}

// Same with one scale per element.
template <int RM, typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store_each(const Pack<T, N>& v, const float (&s)[N],
                                                 const float (&inv)[N], const QParams& p,
                                                 const int64_t* state, int stream, int64_t i0,
                                                 OutT* out) {
  uint32_t r[N];
#pragma unroll
  for (int j = 0; j < N; ++j) r[j] = 0u;
  if constexpr (RM != 0) {
    if (p.rounding == 2) rand_pack<N>(make_rng(state, stream), i0, r);
  }
  float q[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    q[j] = __fmul_rn(quant_elem<RM>(__fmul_rn(to_f(v.v[j]), s[j]), p, r[j]), inv[j]);
  store_pack<OutT, N>(q, out + i0);
}

// 16-byte asynchronous global -> shared copy (cp.async, sm_80+; a plain copy before).
template <typename PackT>
__device__ __forceinline__ void cp_async16(PackT* smem, const void* gmem) {
  static_assert(sizeof(PackT) == 16, "cp.async copies 16-byte packs");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem) : "memory");
#else
  *smem = *reinterpret_cast<const PackT*>(gmem);
#endif
}

__device__ __forceinline__ void cp_async_commit() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void cp_async_wait_all() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  asm volatile("cp.async.wait_group 0;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void atomic_max_nonneg(float* addr, float v) {
  // non-negative floats order like their int bit patterns
  atomicMax(reinterpret_cast<int*>(addr), __float_as_int(v));
}

__device__ __forceinline__ float block_max(float m, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
#pragma unroll
  for (int off = 16; off > 0; off >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
  if (lane == 0) red[warp] = m;
  __syncthreads();
  m = 0.f;
  for (int w = 0; w < nw; ++w) m = fmaxf(m, red[w]);
  __syncthreads();
  return m;
}

// ---------------------------------------------------------------------------------------------
// kernels

// Groups of P packs contiguous in memory; tpg lanes per group (power of two <= 32), npt packs
// per lane (P == tpg * npt, npt <= NREG). All loads of a lane are issued before the first use.
template <int RM, typename T, typename OutT, int N, int NREG>
__global__ void __launch_bounds__(kThreads, NREG <= 4 ? 4 : 2)
    rows_warp_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t ngroups, int P,
                     int tpg, int npt, QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  const int lane = threadIdx.x & 31;
  const int sub = lane / tpg, li = lane % tpg;
  const int gpw = 32 / tpg;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t g0 = warp * gpw; g0 < ngroups; g0 += nwarps * gpw) {
    const int64_t g = g0 + sub;
    const bool active = g < ngroups;
    const PackT* src = reinterpret_cast<const PackT*>(x) + g * P;
    PackT v[NREG];
#pragma unroll
    for (int k = 0; k < NREG; ++k) {
      if (k < npt && active) v[k] = src[li + k * tpg];
    }
    float m = 0.f;
#pragma unroll
    for (int k = 0; k < NREG; ++k) {
      if (k < npt && active) m = fmaxf(m, pack_absmax_inf(v[k]));
    }
    for (int off = tpg >> 1; off > 0; off >>= 1)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (__any_sync(0xffffffffu, m > FLT_MAX)) {  // some group holds an Inf: exclude it
      m = 0.f;
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        if (k < npt && active) m = fmaxf(m, pack_absmax(v[k]));
      }
      for (int off = tpg >> 1; off > 0; off >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    }
    if (active) {
      const float s = scale_of(m, p);
      const float inv = __fdiv_rn(1.f, s);
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        if (k < npt) {
          const int64_t i0 = (g * P + li + k * tpg) * N;
          quant_store<RM, T, OutT, N>(v[k], s, inv, p, state, stream, i0, out);
        }
      }
    }
  }
}

// Groups of P packs contiguous in memory, P dividing 32 (variant 1). A warp takes chunks of
// U * 32 consecutive packs: in round u, lane l holds pack u * 32 + l of the chunk, so each load
// and store of the warp covers 32 consecutive packs (512 bytes) and a group is P consecutive
// lanes of one round (absmax by P-lane shuffles). The loads of the warp's next chunk are issued
// before the current chunk is quantized (register double buffering): with a grid of one resident
// wave, memory stays busy while the warps compute.
//
// SH (variant 2, P >= U): the U * 32 / P groups of a chunk get their scales from one lane each
// (lane g computes the scale of group g, then shuffles give every lane the scales of its
// groups), so a lane divides twice per chunk instead of twice per round.
template <int RM, typename T, typename OutT, int N, int U, bool SH>
__global__ void __launch_bounds__(kThreads, kLaneBlocksPerSm)
    rows_lane_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t npacks, int P,
                     QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  constexpr int CH = U * 32;
  const PackT* src = reinterpret_cast<const PackT*>(x);
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t step = ((static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5) * CH;
  auto load = [&](PackT (&v)[U], int64_t c) {
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = c + u * 32 + lane;
      if (i < npacks) v[u] = src[i];
    }
  };
  PackT cur[U], nxt[U];
  int64_t c = warp * CH;
  load(cur, c);
  for (; c < npacks; c += step) {
    load(nxt, c + step);
    float m[U];
#pragma unroll
    for (int u = 0; u < U; ++u) m[u] = c + u * 32 + lane < npacks ? pack_absmax_inf(cur[u]) : 0.f;
    for (int off = P >> 1; off > 0; off >>= 1) {
#pragma unroll
      for (int u = 0; u < U; ++u) m[u] = fmaxf(m[u], __shfl_xor_sync(0xffffffffu, m[u], off));
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      if (__any_sync(0xffffffffu, m[u] > FLT_MAX)) {  // some group holds an Inf: exclude it
        m[u] = c + u * 32 + lane < npacks ? pack_absmax(cur[u]) : 0.f;
        for (int off = P >> 1; off > 0; off >>= 1)
          m[u] = fmaxf(m[u], __shfl_xor_sync(0xffffffffu, m[u], off));
      }
    }
    float sc[U], iv[U];
    if constexpr (SH) {
      const int gpr = 32 / P;  // groups per round
      float mine = 0.f;        // absmax of group `lane` of the chunk (0 past the last group)
#pragma unroll
      for (int u = 0; u < U; ++u) {
        const float t = __shfl_sync(0xffffffffu, m[u], (lane % gpr) * P);
        if (lane / gpr == u) mine = t;
      }
      const float s_mine = scale_of(mine, p);
      const float i_mine = __fdiv_rn(1.f, s_mine);
#pragma unroll
      for (int u = 0; u < U; ++u) {
        sc[u] = __shfl_sync(0xffffffffu, s_mine, u * gpr + lane / P);
        iv[u] = __shfl_sync(0xffffffffu, i_mine, u * gpr + lane / P);
      }
    } else {
#pragma unroll
      for (int u = 0; u < U; ++u) {
        sc[u] = scale_of(m[u], p);
        iv[u] = __fdiv_rn(1.f, sc[u]);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const int64_t i = c + u * 32 + lane;
      if (i < npacks)  // a group is wholly active or not (P divides 32)
        quant_store<RM, T, OutT, N>(cur[u], sc[u], iv[u], p, state, stream, i * N, out);
    }
#pragma unroll
    for (int u = 0; u < U; ++u) cur[u] = nxt[u];
  }
}

// One thread block per group of P packs (kept in registers when P <= blockDim * NREG; NREG = 2
// holds rows of 512 packs, e.g. 4096 bf16, at low register use).
template <int RM, typename T, typename OutT, int N, int NREG>
__global__ void __launch_bounds__(kThreads, NREG <= 2 ? 4 : 2)
    rows_block_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t ngroups, int64_t P,
                      QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  __shared__ float red[32];
  const int tid = threadIdx.x, bd = blockDim.x;
  const bool hold = P <= static_cast<int64_t>(bd) * NREG;
  for (int64_t g = blockIdx.x; g < ngroups; g += gridDim.x) {
    const PackT* src = reinterpret_cast<const PackT*>(x) + g * P;
    PackT v[NREG];
    float m = 0.f;
    if (hold) {
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P) v[k] = src[idx];
      }
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P) m = fmaxf(m, pack_absmax_inf(v[k]));
      }
    } else {
      for (int64_t idx = tid; idx < P; idx += bd) m = fmaxf(m, pack_absmax_inf(src[idx]));
    }
    m = block_max(m, red);
    if (m > FLT_MAX) {  // the group holds an Inf (block-uniform): absmax of the finite elements
      m = 0.f;
      if (hold) {
#pragma unroll
        for (int k = 0; k < NREG; ++k) {
          const int64_t idx = tid + static_cast<int64_t>(k) * bd;
          if (idx < P) m = fmaxf(m, pack_absmax(v[k]));
        }
      } else {
        for (int64_t idx = tid; idx < P; idx += bd) m = fmaxf(m, pack_absmax(src[idx]));
      }
      m = block_max(m, red);
    }
    const float s = scale_of(m, p);
    const float inv = __fdiv_rn(1.f, s);
    if (hold) {
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P)
          quant_store<RM, T, OutT, N>(v[k], s, inv, p, state, stream, (g * P + idx) * N, out);
      }
    } else {
      for (int64_t idx = tid; idx < P; idx += bd) {
        const PackT w = src[idx];
        quant_store<RM, T, OutT, N>(w, s, inv, p, state, stream, (g * P + idx) * N, out);
      }
    }
  }
}

// x viewed as (outer, R, inner). A tile is TR rows x PC packs (PC * N columns) of one outer
// index. Thread t holds column pack t % PC of rows t / PC + k * (TT / PC), k < NP.
// out_b: groups of TR rows along R (one scale per column of the tile).
// out_a (optional, outer == 1): groups of bap consecutive packs along a row.
// Each element's |x| is computed once and feeds both absmaxes; column scales and their
// reciprocals are computed once per column (shared memory), not once per thread.
// Dynamic shared memory (sizes from tile_smem): part[nslots * ncols], col_s[ncols],
// col_i[ncols], then, when stage_off >= 0, a staging area of NP * TT packs at byte stage_off:
// each thread copies its own packs of the NEXT tile there with cp.async while it quantizes the
// current one, so the loads of one tile overlap the arithmetic and stores of the previous one.
// A thread only ever reads the staging slots it wrote itself (no barrier needed for them).
template <int RM, typename T, typename OutT, int N, int TT, int NPM>
__global__ void __launch_bounds__(TT, RM == 0 || TT <= 256 ? 2 : 1)  // 512 threads, run-time rounding: 128 regs
    tile_kernel(const T* __restrict__ x, OutT* __restrict__ out_a, OutT* __restrict__ out_b,
                int64_t outer, int64_t R, int64_t inner, int TR, int PC, int NP, int bap,
                QParams pa, QParams pb, const int64_t* state, int stream_a, int stream_b,
                int stage_off) {
  using PackT = Pack<T, N>;
  extern __shared__ __align__(16) unsigned char tile_smem_raw[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cp = tid % PC, r0 = tid / PC, rstep = TT / PC;
  const int ncols = PC * N;
  // tile counts fit in 32 bits (checked on the host): fewer live 64-bit registers in the loop
  const int tile_cols = PC * N;
  const int tiles_c = static_cast<int>((inner + tile_cols - 1) / tile_cols);
  const int tiles_r = static_cast<int>(R / TR);
  const int ntiles = static_cast<int>(outer) * tiles_r * tiles_c;
  const int nslots = PC >= 32 ? TT / PC : TT / 32;
  const int slot = PC >= 32 ? tid / PC : warp;
  float* part = reinterpret_cast<float*>(tile_smem_raw);
  float* col_s = part + nslots * ncols;
  float* col_i = col_s + ncols;
  const bool staged = stage_off >= 0;
  PackT* stage = reinterpret_cast<PackT*>(tile_smem_raw + (staged ? stage_off : 0));
  // flat offset of this thread's first element in a tile, and whether its column exists
  auto tile_base = [&](int t, bool* valid) {
    const int ct = t % tiles_c;
    const int rest = t / tiles_c;
    const int rt = rest % tiles_r, o = rest / tiles_r;
    const int64_t col = (static_cast<int64_t>(ct) * PC + cp) * N;
    *valid = col < inner;
    return (o * R + static_cast<int64_t>(rt) * TR) * inner + col;
  };
  auto prefetch = [&](int t) {
    if constexpr (sizeof(PackT) == 16) {  // the host stages 16-byte packs only
      bool valid;
      const int64_t b = tile_base(t, &valid);
      if (valid) {
#pragma unroll
        for (int k = 0; k < NPM; ++k) {
          if (k < NP) cp_async16(stage + k * TT + tid, x + b + (r0 + k * rstep) * inner);
        }
      }
      cp_async_commit();
    }
  };
  if (staged && blockIdx.x < ntiles) prefetch(blockIdx.x);
  for (int tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    bool cvalid;
    const int64_t base = tile_base(tile, &cvalid);
    PackT v[NPM];
    if (staged) cp_async_wait_all();
#pragma unroll
    for (int k = 0; k < NPM; ++k) {
      if (k < NP) {
        if (!cvalid) {
#pragma unroll
          for (int j = 0; j < N; ++j) v[k].v[j] = from_f<T>(0.f);
        } else if (staged) {
          v[k] = stage[k * TT + tid];
        } else {
          v[k] = *reinterpret_cast<const PackT*>(x + base + (r0 + k * rstep) * inner);
        }
      }
    }
    float cm[N], rm[NPM];
    const bool has_inf = packs_absmax<false>(v, NP, cm, rm);
    // has_inf depends on every element of v, so the staging slots have been read: refill them
    // with the next tile (the barrier also keeps the compiler from hoisting this above the reads)
    const bool any_inf = __syncthreads_or(has_inf);
    if (staged && tile + gridDim.x < ntiles) prefetch(tile + gridDim.x);
    if (any_inf) {  // rare: the tile holds an Inf, which no absmax may see
      packs_absmax<true>(v, NP, cm, rm);
    }
    if (out_b != nullptr) {
      for (int off = PC; off < 32; off <<= 1) {
#pragma unroll
        for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], __shfl_xor_sync(0xffffffffu, cm[j], off));
      }
      if (PC >= 32 || lane < PC) {
#pragma unroll
        for (int j = 0; j < N; ++j) part[(slot * PC + cp) * N + j] = cm[j];
      }
      __syncthreads();
      for (int c = tid; c < ncols; c += TT) {
        float m = 0.f;
        for (int q = 0; q < nslots; ++q) m = fmaxf(m, part[q * ncols + c]);
        const float sc = scale_of(m, pb);
        col_s[c] = sc;
        col_i[c] = __fdiv_rn(1.f, sc);
      }
    }
    if (out_a != nullptr) {
#pragma unroll
      for (int k = 0; k < NPM; ++k) {
        if (k < NP) {
          float m = rm[k];
          for (int off = bap >> 1; off > 0; off >>= 1)
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
          const float sc = scale_of(m, pa);
          const float iv = __fdiv_rn(1.f, sc);
          if (cvalid)
            quant_store<RM, T, OutT, N>(v[k], sc, iv, pa, state, stream_a,
                                        base + (r0 + k * rstep) * inner, out_a);
        }
      }
    }
    if (out_b != nullptr) {
      __syncthreads();
      if (cvalid) {
#pragma unroll
        for (int k = 0; k < NPM; ++k) {
          if (k < NP) {
            // the column scales are read from shared memory for each pack rather than held
            // across the loop: N * 2 fewer live registers next to the tile's packs
            float sc[N], iv[N];
#pragma unroll
            for (int j = 0; j < N; ++j) {
              sc[j] = col_s[cp * N + j];
              iv[j] = col_i[cp * N + j];
            }
            quant_store_each<RM, T, OutT, N>(v[k], sc, iv, pb, state, stream_b,
                                             base + (r0 + k * rstep) * inner, out_b);
          }
        }
      }
      __syncthreads();  // part / col_s are rewritten by the next tile
    }
  }
}

// Column groups of B rows, optionally with row groups of B columns of the same tile (pair
// output), for a 2-D tensor of 16-bit elements whose shape tiles exactly (variant 5): every size
// is fixed at compile time. A tile is B rows x 128 columns (16 packs of 8 per row); thread t holds
// column pack c = t % 16 of rows t / 16 + 16 k, k < B / 16. Row groups (out_a) are B / 8 lanes of
// one half-warp: absmax by shuffles, each group's scale computed by one of its lanes and shuffled
// to the others. Column groups (out_b): one shuffle combines the two half-warps, shared memory the
// eight warps, and one thread per column computes its scale and reciprocal. Two barriers per
// tile. Each thread copies its own packs of the next tile to shared memory with cp.async while it
// quantizes the current one (it only ever reads the slots it wrote: no barrier for those). An Inf
// only changes the absmax of the thread that holds it, so its re-pass is thread-local. Nearest
// even on the fast path only (pa.fast, pb.fast): no random bits, no run-time rounding mode.
template <typename T, typename OutT, int B, bool ROWS>
__global__ void __launch_bounds__(256, 2)
    square_kernel(const T* __restrict__ x, OutT* __restrict__ out_a, OutT* __restrict__ out_b,
                  int64_t C, int tiles_c, int ntiles, QParams pa, QParams pb) {
  constexpr int N = 8, TT = 256, PC = 16, RSTEP = TT / PC, NP = B / RSTEP, G = B / N;
  static_assert(sizeof(T) == 2 && B % RSTEP == 0 && B <= 128 && NP <= G, "square tile shape");
  using PackT = Pack<T, N>;
  __shared__ __align__(16) unsigned char stage_raw[NP * TT * sizeof(PackT)];
  __shared__ __align__(16) float part[TT / 32][PC * N];
  __shared__ __align__(16) float col_s[PC * N];
  __shared__ __align__(16) float col_i[PC * N];
  PackT* stage = reinterpret_cast<PackT*>(stage_raw);
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cp = tid % PC, r0 = tid / PC;
  const int64_t kstride = static_cast<int64_t>(RSTEP) * C;  // elements between a thread's packs
  auto offset = [&](int t) {  // flat index of this thread's first element of tile t
    const int rt = t / tiles_c, ct = t - rt * tiles_c;
    return (static_cast<int64_t>(rt) * B + r0) * C + ct * (PC * N) + cp * N;
  };
  auto prefetch = [&](int t) {
    const T* src = x + offset(t);
#pragma unroll
    for (int k = 0; k < NP; ++k) cp_async16(stage + k * TT + tid, src + k * kstride);
    cp_async_commit();
  };
  if (blockIdx.x < ntiles) prefetch(blockIdx.x);
  for (int t = blockIdx.x; t < ntiles; t += gridDim.x) {
    const int64_t base = offset(t);
    cp_async_wait_all();
    PackT v[NP];
#pragma unroll
    for (int k = 0; k < NP; ++k) v[k] = stage[k * TT + tid];
    float cm[N], rm[NP];
    const bool has_inf = packs_absmax_x2<T, NP>(v, cm, rm);
    if (has_inf) packs_absmax<true>(v, NP, cm, rm);
    // has_inf depends on every element of v: once it is in a register, the slots are read and
    // the next tile may overwrite them (the asm keeps the compiler from issuing the copies first)
    asm volatile("" ::"r"(static_cast<int>(has_inf)) : "memory");
    if (t + static_cast<int>(gridDim.x) < ntiles) prefetch(t + gridDim.x);
    // column maxima of this warp: lanes l and l + 16 hold the same column pack
#pragma unroll
    for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], __shfl_xor_sync(0xffffffffu, cm[j], 16));
    if (lane < PC) {
      float4* dst = reinterpret_cast<float4*>(&part[warp][cp * N]);
      dst[0] = make_float4(cm[0], cm[1], cm[2], cm[3]);
      dst[1] = make_float4(cm[4], cm[5], cm[6], cm[7]);
    }
    if constexpr (ROWS) {
#pragma unroll
      for (int k = 0; k < NP; ++k) {
#pragma unroll
        for (int off = G / 2; off > 0; off >>= 1)
          rm[k] = fmaxf(rm[k], __shfl_xor_sync(0xffffffffu, rm[k], off));
      }
      // lane j of each group computes the scale of the group's row k = j (NP <= G lanes)
      const int j = cp % G, first = lane - j;
      float m = rm[0];
#pragma unroll
      for (int k = 1; k < NP; ++k) m = j == k ? rm[k] : m;
      const float sc = scale_of(m, pa);
      const float iv = __fdiv_rn(1.f, sc);
#pragma unroll
      for (int k = 0; k < NP; ++k) {
        const float s = __shfl_sync(0xffffffffu, sc, first + k);
        const float i = __shfl_sync(0xffffffffu, iv, first + k);
        quant_store<0, T, OutT, N>(v[k], s, i, pa, nullptr, 0, base + k * kstride, out_a);
      }
    }
    __syncthreads();
    if (tid < PC * N) {
      float m = part[0][tid];
#pragma unroll
      for (int w = 1; w < TT / 32; ++w) m = fmaxf(m, part[w][tid]);
      const float s = scale_of(m, pb);
      col_s[tid] = s;
      col_i[tid] = __fdiv_rn(1.f, s);
    }
    __syncthreads();
    float sc[N], iv[N];
    {
      const float4* s4 = reinterpret_cast<const float4*>(&col_s[cp * N]);
      const float4* i4 = reinterpret_cast<const float4*>(&col_i[cp * N]);
      const float4 s0 = s4[0], s1 = s4[1], i0 = i4[0], i1 = i4[1];
      sc[0] = s0.x; sc[1] = s0.y; sc[2] = s0.z; sc[3] = s0.w;
      sc[4] = s1.x; sc[5] = s1.y; sc[6] = s1.z; sc[7] = s1.w;
      iv[0] = i0.x; iv[1] = i0.y; iv[2] = i0.z; iv[3] = i0.w;
      iv[4] = i1.x; iv[5] = i1.y; iv[6] = i1.z; iv[7] = i1.w;
    }
#pragma unroll
    for (int k = 0; k < NP; ++k)
      quant_store_each<0, T, OutT, N>(v[k], sc, iv, pb, nullptr, 0, base + k * kstride, out_b);
  }
}

// Column scales of a warp's strip (strip_kernel, pair_strip_kernel): lane l holds the absmax cm
// of the N columns of column pack l % SC over its own rows l / SC + k * (32 / SC). The maxima are
// combined over the lanes of each column pack, then each lane gets the scale sc and reciprocal iv
// of its N columns. With share (32 / SC >= N), lane r * SC + c computes column r of pack c alone
// and shuffles hand the results out: two divisions per lane instead of 2 * N. Every lane of the
// warp must call it.
template <int N>
__device__ __forceinline__ void strip_column_scales(float (&cm)[N], int SC, bool share,
                                                    const QParams& p, float (&sc)[N],
                                                    float (&iv)[N]) {
  const int lane = threadIdx.x & 31, cpk = lane % SC, r0 = lane / SC;
  for (int off = SC; off < 32; off <<= 1) {
#pragma unroll
    for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], __shfl_xor_sync(0xffffffffu, cm[j], off));
  }
  if (share) {
    float mine = 0.f;  // absmax of column r0 of this lane's pack (0 for r0 >= N)
#pragma unroll
    for (int j = 0; j < N; ++j) {
      if (r0 == j) mine = cm[j];
    }
    const float s_mine = scale_of(mine, p);
    const float i_mine = __fdiv_rn(1.f, s_mine);
#pragma unroll
    for (int j = 0; j < N; ++j) {
      sc[j] = __shfl_sync(0xffffffffu, s_mine, j * SC + cpk);
      iv[j] = __shfl_sync(0xffffffffu, i_mine, j * SC + cpk);
    }
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) {
      sc[j] = scale_of(cm[j], p);
      iv[j] = __fdiv_rn(1.f, sc[j]);
    }
  }
}

// Groups of B rows along R of x viewed as (outer, R, inner), inner % N == 0 (variant 1). A warp
// takes a strip of B rows x SC column packs: lane l holds column pack l % SC of rows
// l / SC + k * (32 / SC), k < NP = B * SC / 32 (each load of the warp reads 32 / SC rows of SC
// consecutive packs). The column absmax is a shuffle among the lanes of one column pack and each
// lane computes the scales of its own N columns: no shared memory, no barriers, every warp on its
// own. Strips go column-fastest, so the warps of a block read neighbouring segments of the same
// rows.
//
// SH (variant 2, 32 / SC >= N): lane r0 * SC + c computes the scale of column r0 of column pack
// c, and shuffles hand each lane the N scales of its pack: two divisions per lane per strip
// instead of 2 * N.
template <int RM, typename T, typename OutT, int N, int NPM, bool SH>
__global__ void __launch_bounds__(kThreads, kStripBlocksPerSm)
    strip_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t outer, int64_t R,
                 int64_t inner, int B, int SC, int NP, QParams p, const int64_t* state,
                 int stream) {
  using PackT = Pack<T, N>;
  const int lane = threadIdx.x & 31;
  const int cpk = lane % SC, r0 = lane / SC, RI = 32 / SC;
  const int64_t cpacks = inner / N;
  const int64_t strips_c = (cpacks + SC - 1) / SC;
  const int64_t rgroups = R / B;
  const int64_t nstrips = outer * rgroups * strips_c;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t nwarps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  const int64_t rstride = static_cast<int64_t>(RI) * inner;
  for (int64_t st = warp; st < nstrips; st += nwarps) {
    const int64_t cs = st % strips_c, g = st / strips_c;
    const int64_t colp = cs * SC + cpk;
    const bool valid = colp < cpacks;
    const int64_t base = ((g / rgroups) * R + (g % rgroups) * B + r0) * inner + colp * N;
    PackT v[NPM];
#pragma unroll
    for (int k = 0; k < NPM; ++k) {
      if (k < NP && valid) v[k] = *reinterpret_cast<const PackT*>(x + base + k * rstride);
    }
    float cm[N];
#pragma unroll
    for (int j = 0; j < N; ++j) cm[j] = 0.f;
#pragma unroll
    for (int k = 0; k < NPM; ++k) {
      if (k < NP && valid) {
#pragma unroll
        for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fabsf(to_f(v[k].v[j])));  // NaN ignored
      }
    }
    float mm = 0.f;
#pragma unroll
    for (int j = 0; j < N; ++j) mm = fmaxf(mm, cm[j]);
    if (__any_sync(0xffffffffu, mm > FLT_MAX)) {  // an Inf in the strip: no absmax may see it
#pragma unroll
      for (int j = 0; j < N; ++j) cm[j] = 0.f;
#pragma unroll
      for (int k = 0; k < NPM; ++k) {
        if (k < NP && valid) {
#pragma unroll
          for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v[k].v[j])));
        }
      }
    }
    float sc[N], iv[N];
    strip_column_scales<N>(cm, SC, SH, p, sc, iv);
    if (valid) {
#pragma unroll
      for (int k = 0; k < NPM; ++k) {
        if (k < NP)
          quant_store_each<RM, T, OutT, N>(v[k], sc, iv, p, state, stream, base + k * rstride,
                                           out);
      }
    }
  }
}

// Both groupings of a 2-D x (R, C) in one read (variant 3): out_a in row groups of bap packs
// along dim 1, out_b in column groups of B rows along dim 0. A block of W = bap / SC warps takes a
// tile of B rows x bap packs: warp w holds the strip of column packs w * SC .. w * SC + SC - 1,
// laid out as in strip_kernel (lane l: column pack l % SC, rows l / SC + k * (32 / SC)). Column
// scales come from warp shuffles alone (strip_kernel with SH). Row maxima: shuffles within the
// warp, then one partial per (warp, row) in shared memory; after a barrier, thread t reduces
// row t over the W warps and stores its scale and reciprocal; after a second barrier every lane
// reads the scales of its rows. The shared arrays are double-buffered by tile parity, so two
// barriers per tile suffice (a thread writes buffer b again only after every thread has passed
// the first barrier of the tile in between, and so has finished reading b).
constexpr int kPairMaxRows = 128;
constexpr int kPairMaxWarps = 8;

template <int RM, typename T, typename OutT, int N, int NPM>
__global__ void __launch_bounds__(kThreads, 2)
    pair_strip_kernel(const T* __restrict__ x, OutT* __restrict__ out_a, OutT* __restrict__ out_b,
                      int64_t R, int64_t C, int B, int SC, int NP, int bap, QParams pa,
                      QParams pb, const int64_t* state, int stream_a, int stream_b) {
  using PackT = Pack<T, N>;
  __shared__ float part[2][kPairMaxWarps][kPairMaxRows];
  __shared__ float row_s[2][kPairMaxRows], row_i[2][kPairMaxRows];
  const int tid = threadIdx.x, lane = tid & 31, w = tid >> 5;
  const int W = blockDim.x >> 5;
  const int cpk = lane % SC, r0 = lane / SC, RI = 32 / SC;
  const int64_t tiles_c = C / N / bap;
  const int64_t ntiles = (R / B) * tiles_c;
  int buf = 0;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x, buf ^= 1) {
    const int64_t ct = tile % tiles_c, rg = tile / tiles_c;
    const int64_t colp = ct * bap + w * SC + cpk;
    const int64_t base = (rg * B + r0) * C + colp * N;  // element index of this lane's first pack
    const int64_t rstride = static_cast<int64_t>(RI) * C;
    PackT v[NPM];
#pragma unroll
    for (int k = 0; k < NPM; ++k) {
      if (k < NP) v[k] = *reinterpret_cast<const PackT*>(x + base + k * rstride);
    }
    float cm[N], rm[NPM];
    const bool has_inf = packs_absmax<false>(v, NP, cm, rm);
    // row partials of this warp: combine the SC lanes of each row, one lane writes them
    auto put_rows = [&]() {
#pragma unroll
      for (int k = 0; k < NPM; ++k) {
        if (k < NP) {  // NP is the same for every thread: the whole warp shuffles
          for (int off = 1; off < SC; off <<= 1)
            rm[k] = fmaxf(rm[k], __shfl_xor_sync(0xffffffffu, rm[k], off));
        }
      }
      if (cpk == 0) {
#pragma unroll
        for (int k = 0; k < NPM; ++k) {
          if (k < NP) part[buf][w][r0 + k * RI] = rm[k];
        }
      }
    };
    put_rows();
    if (__syncthreads_or(has_inf)) {  // rare: the tile holds an Inf, which no absmax may see
      packs_absmax<true>(v, NP, cm, rm);
      put_rows();
      __syncthreads();
    }
    for (int t = tid; t < B; t += blockDim.x) {
      float m = 0.f;
      for (int q = 0; q < W; ++q) m = fmaxf(m, part[buf][q][t]);
      const float sc = scale_of(m, pa);
      row_s[buf][t] = sc;
      row_i[buf][t] = __fdiv_rn(1.f, sc);
    }
    // column groups: the whole group is this warp's strip (as strip_kernel, shared scales)
    float sc[N], iv[N];
    strip_column_scales<N>(cm, SC, RI >= N, pb, sc, iv);
    __syncthreads();  // row scales of this tile are in row_s / row_i [buf]
#pragma unroll
    for (int k = 0; k < NPM; ++k) {
      if (k < NP) {
        const int row = r0 + k * RI;
        const int64_t i0 = base + k * rstride;
        quant_store<RM, T, OutT, N>(v[k], row_s[buf][row], row_i[buf][row], pa, state, stream_a,
                                    i0, out_a);
        quant_store_each<RM, T, OutT, N>(v[k], sc, iv, pb, state, stream_b, i0, out_b);
      }
    }
  }
}

// Absmax of the whole tensor into amax[0] (zero-initialised); four loads in flight per thread.
template <typename T, int N>
__global__ void __launch_bounds__(kThreads)
    amax_all_kernel(const T* __restrict__ x, int64_t npacks, float* amax) {
  using PackT = Pack<T, N>;
  constexpr int U = 4;
  __shared__ float red[32];
  float m = 0.f;
  const PackT* src = reinterpret_cast<const PackT*>(x);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (; i + (U - 1) * stride < npacks; i += U * stride) {
    PackT v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = src[i + u * stride];
#pragma unroll
    for (int u = 0; u < U; ++u) m = fmaxf(m, pack_absmax(v[u]));
  }
  for (; i < npacks; i += stride) m = fmaxf(m, pack_absmax(src[i]));
  m = block_max(m, red);
  if (threadIdx.x == 0) atomic_max_nonneg(amax, m);
}

// Groups of B rows along R of x viewed as (outer, R, inner), when no register tile fits (long
// groups, e.g. channel-wise along dim 0): three kernels. A work item is a chunk of RPC rows (RPC
// divides B, so a chunk lies in one group) by kColX column packs; a kColX x kColY thread block
// gives thread (tx, ty) column pack tx and rows ty, ty + kColY, ... of the chunk (each row of the
// block is kColX consecutive packs: coalesced 16-byte loads, four in flight per thread).
//   cols_absmax_kernel  absmax per (chunk, column) into partial (no atomics, no zero-fill);
//   cols_scale_kernel   per (group, column): max over the group's chunks, scale and reciprocal;
//   cols_apply_kernel   quantize with the column scales, read once per thread per chunk.
constexpr int kColX = 32;
constexpr int kColY = 8;

template <typename T, int N>
__global__ void __launch_bounds__(kColX * kColY)
    cols_absmax_kernel(const T* __restrict__ x, float* __restrict__ partial, int64_t nchunks,
                       int64_t inner, int RPC) {
  static_assert(kColX * kColY == 256, "thread block shape");
  using PackT = Pack<T, N>;
  __shared__ float red[kColY][kColX * N];
  const int tx = threadIdx.x, ty = threadIdx.y, tid = ty * kColX + tx;
  const int64_t pcs = inner / N;  // the host checks inner % N == 0
  const int64_t cblocks = (pcs + kColX - 1) / kColX;
  const int64_t items = nchunks * cblocks;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t cb = it % cblocks, ch = it / cblocks;
    const int64_t cpk = cb * kColX + tx;
    float cm[N];
#pragma unroll
    for (int j = 0; j < N; ++j) cm[j] = 0.f;
    if (cpk < pcs) {
      const T* src = x + ch * RPC * inner + cpk * N;
      int r = ty;
      for (; r + 3 * kColY < RPC; r += 4 * kColY) {
        PackT v[4];
#pragma unroll
        for (int u = 0; u < 4; ++u)
          v[u] = *reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r + u * kColY) * inner);
#pragma unroll
        for (int u = 0; u < 4; ++u) {
#pragma unroll
          for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v[u].v[j])));
        }
      }
      for (; r < RPC; r += kColY) {
        const PackT v = *reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r) * inner);
#pragma unroll
        for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v.v[j])));
      }
    }
#pragma unroll
    for (int j = 0; j < N; ++j) red[ty][tx * N + j] = cm[j];
    __syncthreads();
    for (int c = tid; c < kColX * N; c += kColX * kColY) {
      float m = red[0][c];
#pragma unroll
      for (int q = 1; q < kColY; ++q) m = fmaxf(m, red[q][c]);
      const int64_t col = cb * kColX * N + c;
      if (col < inner) partial[ch * inner + col] = m;
    }
    __syncthreads();  // red is rewritten by the next item
  }
}

// sinv[g * inner + c] = (S, 1 / S) of group g (flat over outer and R / B) and column c, from the
// cpg = B / RPC chunk absmaxes of the group.
static __global__ void __launch_bounds__(kColX * kColY)
    cols_scale_kernel(const float* __restrict__ partial, float2* __restrict__ sinv,
                      int64_t ngroups, int64_t inner, int cpg, QParams p) {
  __shared__ float red[kColY][kColX];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t cblocks = (inner + kColX - 1) / kColX;
  const int64_t items = ngroups * cblocks;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t cb = it % cblocks, g = it / cblocks;
    const int64_t col = cb * kColX + tx;
    float m = 0.f;
    if (col < inner) {
      const float* src = partial + g * cpg * inner + col;
      for (int k = ty; k < cpg; k += kColY) m = fmaxf(m, src[static_cast<int64_t>(k) * inner]);
    }
    red[ty][tx] = m;
    __syncthreads();
    if (ty == 0 && col < inner) {
#pragma unroll
      for (int q = 1; q < kColY; ++q) m = fmaxf(m, red[q][tx]);
      const float sc = scale_of(m, p);
      sinv[g * inner + col] = make_float2(sc, __fdiv_rn(1.f, sc));
    }
    __syncthreads();
  }
}

template <int RM, typename T, typename OutT, int N>
__global__ void __launch_bounds__(kColX * kColY)
    cols_apply_kernel(const T* __restrict__ x, OutT* __restrict__ out,
                      const float2* __restrict__ sinv, int64_t nchunks, int64_t inner,
                      int64_t B, int RPC, QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t pcs = inner / N;
  const int64_t cblocks = (pcs + kColX - 1) / kColX;
  const int64_t items = nchunks * cblocks;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t cb = it % cblocks, ch = it / cblocks;
    const int64_t cpk = cb * kColX + tx;
    if (cpk >= pcs) continue;
    const int64_t row0 = ch * RPC;  // flat row over (outer, R); R % B == 0, B % RPC == 0
    const float2* sv = sinv + (row0 / B) * inner + cpk * N;
    float sc[N], iv[N];
#pragma unroll
    for (int j = 0; j < N; ++j) {
      const float2 t = sv[j];
      sc[j] = t.x;
      iv[j] = t.y;
    }
    const T* src = x + row0 * inner + cpk * N;
    int r = ty;
    for (; r + 3 * kColY < RPC; r += 4 * kColY) {
      PackT v[4];
#pragma unroll
      for (int u = 0; u < 4; ++u)
        v[u] = *reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r + u * kColY) * inner);
#pragma unroll
      for (int u = 0; u < 4; ++u)
        quant_store_each<RM, T, OutT, N>(v[u], sc, iv, p, state, stream,
                                         (row0 + r + u * kColY) * inner + cpk * N, out);
    }
    for (; r < RPC; r += kColY) {
      const PackT v = *reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r) * inner);
      quant_store_each<RM, T, OutT, N>(v, sc, iv, p, state, stream, (row0 + r) * inner + cpk * N,
                                       out);
    }
  }
}

// mode 0: scale 1; mode 1: one absmax amax[0] (tensor-wise).
template <int RM, typename T, typename OutT, int N>
__global__ void __launch_bounds__(kThreads)
    apply_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t npacks, int mode,
                 const float* __restrict__ amax, QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  constexpr int U = 4;
  const PackT* src = reinterpret_cast<const PackT*>(x);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const float s_all = mode == 1 ? scale_of(amax[0], p) : 1.f;
  const float inv = __fdiv_rn(1.f, s_all);
  for (; i + (U - 1) * stride < npacks; i += U * stride) {
    PackT v[U];
#pragma unroll
    for (int u = 0; u < U; ++u) v[u] = src[i + u * stride];
#pragma unroll
    for (int u = 0; u < U; ++u)
      quant_store<RM, T, OutT, N>(v[u], s_all, inv, p, state, stream, (i + u * stride) * N,
                                  out);
  }
  for (; i < npacks; i += stride)
    quant_store<RM, T, OutT, N>(src[i], s_all, inv, p, state, stream, i * N, out);
}

// ---------------------------------------------------------------------------------------------
// host side

inline int sm_count() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

inline int grid_for(int64_t work_threads, int per_sm = 8) {
  const int64_t blocks = (work_threads + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * per_sm;
  return static_cast<int>(std::max<int64_t>(1, std::min(blocks, cap)));
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// Calls f with std::integral_constant<int, RM>: 0 (the branch-free nearest-even path,
// quant_fast) when every format has p.fast and packs are vectors, else -1 (mode read at run
// time).
template <int N, typename F>
inline void with_rm(bool rne, F&& f) {
  if constexpr (N > 1) {
    if (rne) {
      f(std::integral_constant<int, 0>{});
      return;
    }
  }
  f(std::integral_constant<int, -1>{});
}

template <typename T, typename OutT, int N>
void launch_rows(const T* x, OutT* out, int64_t numel, int64_t L, const QParams& p,
                 const int64_t* state, int stream) {
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t P = L / N, ngroups = numel / L;
  int tpg = 1;  // largest power of two dividing P, <= 32, aiming at four packs per lane
  while (tpg < 32 && P % (tpg * 2) == 0 && P / (tpg * 2) >= 4) tpg *= 2;
  const int64_t npt = P / tpg;
  constexpr int U = 4;  // rounds per chunk of rows_lane_kernel
  if (rows_lane_on() && P <= 32 && 32 % P == 0) {
    const bool share = shared_scales_on() && P >= U;
    with_rm<N>(p.fast, [&](auto rm) {
      constexpr int RM = decltype(rm)::value;
      // one resident wave: the blocks per SM that the launch bounds guarantee (no occupancy
      // query, which would run inside a CUDA-graph capture on first use)
      const int64_t chunks = (numel / N + U * 32 - 1) / (U * 32);
      const int64_t blocks = (chunks + kThreads / 32 - 1) / (kThreads / 32);
      const int64_t cap = static_cast<int64_t>(sm_count()) * kLaneBlocksPerSm;
      const int grid = static_cast<int>(std::max<int64_t>(1, std::min(blocks, cap)));
      if (share)
        rows_lane_kernel<RM, T, OutT, N, U, true><<<grid, kThreads, 0, cu>>>(
            x, out, numel / N, static_cast<int>(P), p, state, stream);
      else
        rows_lane_kernel<RM, T, OutT, N, U, false><<<grid, kThreads, 0, cu>>>(
            x, out, numel / N, static_cast<int>(P), p, state, stream);
    });
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return;
  }
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    if (npt <= kRowRegs) {
      const int64_t warps = (ngroups + (32 / tpg) - 1) / (32 / tpg);
      if (npt <= 4)
        rows_warp_kernel<RM, T, OutT, N, 4><<<grid_for(warps * 32, 16), kThreads, 0, cu>>>(
            x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
      else
        rows_warp_kernel<RM, T, OutT, N, kRowRegs><<<grid_for(warps * 32, 16), kThreads, 0, cu>>>(
            x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
    } else {
      const int64_t cap = static_cast<int64_t>(sm_count()) * 16;
      const int grid = static_cast<int>(std::max<int64_t>(1, std::min(ngroups, cap)));
      if (P <= 2 * kThreads)
        rows_block_kernel<RM, T, OutT, N, 2><<<grid, kThreads, 0, cu>>>(x, out, ngroups, P, p,
                                                                        state, stream);
      else
        rows_block_kernel<RM, T, OutT, N, kRowRegs><<<grid, kThreads, 0, cu>>>(x, out, ngroups, P,
                                                                               p, state, stream);
    }
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Tile shape for groups of TR rows (and optional row groups of bap packs) with TT threads: PC
// packs per tile row, NP packs per thread. Returns false when no shape fits.
inline bool tile_shape(int64_t TR, int N, int elem_bytes, int bap, int TT, int* PC, int* NP) {
  const int pc_min = std::max(128 / (N * elem_bytes), std::max(bap, 1));
  int best = -1;
  for (int pc = 1; pc <= TT; pc *= 2) {
    if (pc < bap || (bap > 0 && pc % bap != 0)) continue;
    if ((TR * pc) % TT != 0) continue;
    const int64_t np = TR * pc / TT;
    if (np < 1 || np > kTileRegs) continue;
    if (best < 0 || (best < pc_min && pc > best) || (pc >= pc_min && pc < best)) best = pc;
  }
  if (best < 0) return false;
  *PC = best;
  *NP = static_cast<int>(TR * best / TT);
  return true;
}

// Picks 512 threads (four packs per thread for a 128 x 128 bf16 tile) when a shape fits,
// else 256. Returns false when neither fits.
template <typename T, typename OutT, int N>
bool launch_tile(const T* x, OutT* out_a, OutT* out_b, int64_t outer, int64_t R, int64_t inner,
                 int TR, int bap, const QParams& pa, const QParams& pb, const int64_t* state,
                 int stream_a, int stream_b) {
  int PC, NP, TT;
  if (N > 1 && tile_shape(TR, N, sizeof(T), bap, 512, &PC, &NP) && NP <= 4) {
    TT = 512;
  } else if (tile_shape(TR, N, sizeof(T), bap, 256, &PC, &NP)) {
    TT = 256;
  } else {
    return false;
  }
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t tile_cols = static_cast<int64_t>(PC) * N;
  const int64_t tiles_c = (inner + tile_cols - 1) / tile_cols;
  const int64_t ntiles = outer * (R / TR) * tiles_c;
  TORCH_CHECK(ntiles < (int64_t{1} << 31) - 2 * static_cast<int64_t>(sm_count()) * 2,
              "launch_tile: too many tiles");
  // two blocks per SM are resident (launch bounds): one wave, so the prefetch runs throughout
  const int64_t cap = static_cast<int64_t>(sm_count()) * 2;
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min(ntiles, cap)));
  // dynamic shared memory: part, col_s, col_i (at most 48 KB), plus the staging area of 16-byte
  // packs when the total stays within the default 48 KB
  const int ncols = PC * N, nslots = PC >= 32 ? TT / PC : TT / 32;
  size_t smem = static_cast<size_t>(nslots * ncols + 2 * ncols) * sizeof(float);
  int stage_off = -1;
  constexpr size_t kSmemMax = 48 * 1024;
  if (N > 1 && sizeof(Pack<T, N>) == 16) {
    const size_t off = (smem + 15) / 16 * 16;
    const size_t total = off + static_cast<size_t>(TT) * NP * 16;
    if (total <= kSmemMax) {
      stage_off = static_cast<int>(off);
      smem = total;
    }
  }
  TORCH_CHECK(smem <= kSmemMax, "launch_tile: shared memory ", smem, " bytes");
  const bool rne = pb.fast && (out_a == nullptr || pa.fast);
  with_rm<N>(rne, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    if constexpr (N > 1) {
      if (TT == 512) {
        tile_kernel<RM, T, OutT, N, 512, 4><<<grid, 512, smem, cu>>>(
            x, out_a, out_b, outer, R, inner, TR, PC, NP, bap, pa, pb, state, stream_a, stream_b,
            stage_off);
        return;
      }
    }
    tile_kernel<RM, T, OutT, N, 256, kTileRegs><<<grid, 256, smem, cu>>>(
        x, out_a, out_b, outer, R, inner, TR, PC, NP, bap, pa, pb, state, stream_a, stream_b,
        stage_off);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

// square_kernel (variant 5) for a 2-D tensor of R x C 16-bit elements: column groups of B rows
// (out_b), with out_a also row groups of B columns. False when it does not apply (another
// variant, rounding other than the nearest-even fast path, B not 32, 64 or 128, R not a multiple
// of B, C not a multiple of 128); the caller then uses tile_kernel.
template <typename T, typename OutT, int N>
bool launch_square(const T* x, OutT* out_a, OutT* out_b, int64_t R, int64_t C, int64_t B,
                   const QParams& pa, const QParams& pb) {
  if constexpr (N != 8 || sizeof(T) != 2) {
    return false;
  } else {
    if (!squares_on() || !pb.fast || (out_a != nullptr && !pa.fast)) return false;
    if ((B != 32 && B != 64 && B != 128) || R % B != 0 || C % 128 != 0) return false;
    const int64_t tiles_c = C / 128, ntiles = (R / B) * tiles_c;
    if (ntiles == 0) return false;
    const int64_t cap = static_cast<int64_t>(sm_count()) * 2;  // two blocks per SM: one wave
    TORCH_CHECK(ntiles < (int64_t{1} << 31) - cap, "launch_square: too many tiles");
    const int grid = static_cast<int>(std::min(ntiles, cap));
    auto cu = at::cuda::getCurrentCUDAStream();
    auto go = [&](auto b) {
      constexpr int BB = decltype(b)::value;
      if (out_a != nullptr)
        square_kernel<T, OutT, BB, true><<<grid, 256, 0, cu>>>(
            x, out_a, out_b, C, static_cast<int>(tiles_c), static_cast<int>(ntiles), pa, pb);
      else
        square_kernel<T, OutT, BB, false><<<grid, 256, 0, cu>>>(
            x, nullptr, out_b, C, static_cast<int>(tiles_c), static_cast<int>(ntiles), pa, pb);
    };
    if (B == 128)
      go(std::integral_constant<int, 128>{});
    else if (B == 64)
      go(std::integral_constant<int, 64>{});
    else
      go(std::integral_constant<int, 32>{});
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    return true;
  }
}

// Strip shape for groups of B rows (variant 1): the widest SC (column packs per strip, 2..32,
// a power of two) with B * SC / 32 packs per lane, a whole number at most kTileRegs. False when
// only SC = 1 fits (16-byte row segments: the tile kernel reads those better).
inline bool strip_shape(int64_t B, int* SC, int* NP) {
  for (int sc = 32; sc >= 2; sc >>= 1) {
    if ((B * sc) % 32 == 0 && B * sc / 32 <= kTileRegs) {
      *SC = sc;
      *NP = static_cast<int>(B * sc / 32);
      return true;
    }
  }
  return false;
}

template <typename T, typename OutT, int N>
bool launch_strip(const T* x, OutT* out, int64_t outer, int64_t R, int64_t inner, int64_t B,
                  const QParams& p, const int64_t* state, int stream) {
  int SC, NP;
  if (N == 1 || inner % N != 0 || R % B != 0 || !strip_shape(B, &SC, &NP)) return false;
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t nstrips = outer * (R / B) * ((inner / N + SC - 1) / SC);
  const bool share = shared_scales_on() && 32 / SC >= N;
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    const int64_t blocks = (nstrips + kThreads / 32 - 1) / (kThreads / 32);
    const int64_t cap = static_cast<int64_t>(sm_count()) * kStripBlocksPerSm;
    const int grid = static_cast<int>(std::max<int64_t>(1, std::min(blocks, cap)));
    if (share)
      strip_kernel<RM, T, OutT, N, kTileRegs, true><<<grid, kThreads, 0, cu>>>(
          x, out, outer, R, inner, static_cast<int>(B), SC, NP, p, state, stream);
    else
      strip_kernel<RM, T, OutT, N, kTileRegs, false><<<grid, kThreads, 0, cu>>>(
          x, out, outer, R, inner, static_cast<int>(B), SC, NP, p, state, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

// Variant 3 pair: true when pair_strip_kernel applies (a strip of SC >= 2 column packs for B
// rows, bap / SC warps of at most kPairMaxWarps, B at most kPairMaxRows) and was launched.
template <typename T, typename OutT, int N>
bool launch_pair_strip(const T* x, OutT* out_a, OutT* out_b, int64_t R, int64_t C, int64_t B,
                       int bap, const QParams& pa, const QParams& pb, const int64_t* state,
                       int stream_a, int stream_b) {
  int SC, NP;
  if (N == 1 || C % N != 0 || R % B != 0 || B > kPairMaxRows || !strip_shape(B, &SC, &NP))
    return false;
  if (bap % SC != 0 || bap / SC > kPairMaxWarps || (C / N) % bap != 0) return false;
  const int W = bap / SC;
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t ntiles = (R / B) * (C / N / bap);
  const int64_t cap = static_cast<int64_t>(sm_count()) * 2 * (kPairMaxWarps / W);
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min(ntiles, cap)));
  const bool rne = pa.fast && pb.fast;
  with_rm<N>(rne, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    pair_strip_kernel<RM, T, OutT, N, kTileRegs><<<grid, 32 * W, 0, cu>>>(
        x, out_a, out_b, R, C, static_cast<int>(B), SC, NP, bap, pa, pb, state, stream_a,
        stream_b);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  return true;
}

// Tensor-wise (mode 1: device-side absmax, scale read by pointer) or no scaling (mode 0).
template <typename T, typename OutT, int N>
void launch_whole(const T* x, OutT* out, int64_t numel, int mode, const QParams& p,
                  const int64_t* state, int stream, const at::Tensor& like) {
  auto cu = at::cuda::getCurrentCUDAStream();
  at::Tensor amax;
  const float* amax_ptr = nullptr;
  if (mode == 1) {
    amax = at::zeros({1}, like.options().dtype(at::kFloat));
    amax_all_kernel<T, N><<<grid_for(numel / N), kThreads, 0, cu>>>(x, numel / N,
                                                                    amax.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    amax_ptr = amax.data_ptr<float>();
  }
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    apply_kernel<RM, T, OutT, N><<<grid_for(numel / N), kThreads, 0, cu>>>(
        x, out, numel / N, mode, amax_ptr, p, state, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Rows per chunk of the column kernels: the largest divisor of B up to 128.
inline int cols_rows_per_chunk(int64_t B) {
  for (int r = 128; r > 1; --r) {
    if (B % r == 0) return r;
  }
  return 1;
}

// Groups of B rows along R (x viewed as (outer, R, inner), inner > 1): three column kernels.
template <typename T, typename OutT, int N>
void launch_cols(const T* x, OutT* out, int64_t outer, int64_t R, int64_t inner, int64_t B,
                 const QParams& p, const int64_t* state, int stream, const at::Tensor& like) {
  TORCH_CHECK(inner % N == 0 && R % B == 0, "launch_cols: bad shape");
  auto cu = at::cuda::getCurrentCUDAStream();
  const int RPC = cols_rows_per_chunk(B);
  const int64_t nchunks = outer * (R / RPC), ngroups = outer * (R / B);
  const int64_t cblocks = (inner / N + kColX - 1) / kColX;
  const dim3 block(kColX, kColY);
  const int64_t cap = static_cast<int64_t>(sm_count()) * 8;
  auto grid_of = [&](int64_t items) {
    return static_cast<int>(std::max<int64_t>(1, std::min(items, cap)));
  };
  at::Tensor partial = at::empty({nchunks * inner}, like.options().dtype(at::kFloat));
  at::Tensor sinv = at::empty({ngroups * inner * 2}, like.options().dtype(at::kFloat));
  cols_absmax_kernel<T, N><<<grid_of(nchunks * cblocks), block, 0, cu>>>(
      x, partial.data_ptr<float>(), nchunks, inner, RPC);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cols_scale_kernel<<<grid_of(ngroups * ((inner + kColX - 1) / kColX)), block, 0, cu>>>(
      partial.data_ptr<float>(), reinterpret_cast<float2*>(sinv.data_ptr<float>()), ngroups,
      inner, static_cast<int>(B / RPC), p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    cols_apply_kernel<RM, T, OutT, N><<<grid_of(nchunks * cblocks), block, 0, cu>>>(
        x, out, reinterpret_cast<const float2*>(sinv.data_ptr<float>()), nchunks, inner, B, RPC,
        p, state, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename OutT>
void dispatch_one(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                  int64_t dim, const int64_t* state, int stream) {
  constexpr int V = 16 / sizeof(T);
  const T* xp = reinterpret_cast<const T*>(x.data_ptr());
  OutT* op = reinterpret_cast<OutT*>(out.data_ptr());
  const int64_t numel = x.numel();
  const bool al = aligned16(xp) && aligned16(op);
  if (granularity == 0 || granularity == -1) {
    const int mode = granularity == 0 ? 0 : 1;
    if (al && numel % V == 0)
      launch_whole<T, OutT, V>(xp, op, numel, mode, p, state, stream, x);
    else
      launch_whole<T, OutT, 1>(xp, op, numel, mode, p, state, stream, x);
    return;
  }
  const int64_t R = x.size(dim);
  int64_t inner = 1;
  for (int64_t d = dim + 1; d < x.dim(); ++d) inner *= x.size(d);
  const int64_t outer = numel / (R * inner);
  const int64_t B = granularity == -2 ? R : granularity;
  TORCH_CHECK(R % B == 0, "block size must divide the size of dim");
  if (inner == 1) {
    if (al && B % V == 0)
      launch_rows<T, OutT, V>(xp, op, numel, B, p, state, stream);
    else
      launch_rows<T, OutT, 1>(xp, op, numel, B, p, state, stream);
    return;
  }
  const bool vec = al && inner % V == 0;
  if (vec && outer == 1 &&
      launch_square<T, OutT, V>(xp, nullptr, op, R, inner, B, p, p))
    return;
  if (vec && strips_on() &&
      launch_strip<T, OutT, V>(xp, op, outer, R, inner, B, p, state, stream))
    return;
  if (vec && launch_tile<T, OutT, V>(xp, nullptr, op, outer, R, inner, static_cast<int>(B), 0, p,
                                     p, state, stream, stream))
    return;
  if (!vec && launch_tile<T, OutT, 1>(xp, nullptr, op, outer, R, inner, static_cast<int>(B), 0, p,
                                      p, state, stream, stream))
    return;
  if (vec)
    launch_cols<T, OutT, V>(xp, op, outer, R, inner, B, p, state, stream, x);
  else
    launch_cols<T, OutT, 1>(xp, op, outer, R, inner, B, p, state, stream, x);
}

inline const int64_t* seed_ptr(const std::optional<at::Tensor>& seed, const at::Tensor& x,
                        const QParams& pa, const QParams& pb) {
  if (pa.rounding != 2 && pb.rounding != 2) return nullptr;
  TORCH_CHECK(seed.has_value(), "stochastic rounding needs a seed tensor");
  TORCH_CHECK(seed->is_cuda() && seed->device() == x.device(), "seed must be on x's device");
  TORCH_CHECK(seed->scalar_type() == at::kLong && seed->numel() == 2 && seed->is_contiguous(),
              "seed must be a contiguous int64 tensor [seed, step]");
  return seed->data_ptr<int64_t>();
}

inline at::Tensor new_output(const at::Tensor& x, bool out_fp32) {
  return at::empty(x.sizes(), x.options().dtype(out_fp32 ? at::kFloat : x.scalar_type()));
}

template <typename T, typename OutT>
bool pair_tile(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
               int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
               int stream_a, int stream_b) {
  constexpr int V = 16 / sizeof(T);
  const int64_t R = x.size(0), C = x.size(1);
  if (!aligned16(x.data_ptr()) || !aligned16(oa.data_ptr()) || !aligned16(ob.data_ptr()) ||
      C % V != 0 || block_a % V != 0)
    return false;
  if (block_a == block_b &&
      launch_square<T, OutT, V>(reinterpret_cast<const T*>(x.data_ptr()),
                                reinterpret_cast<OutT*>(oa.data_ptr()),
                                reinterpret_cast<OutT*>(ob.data_ptr()), R, C, block_b, pa, pb))
    return true;
  const int64_t bap = block_a / V;
  if (bap > 32 || (bap & (bap - 1)) != 0) return false;
  if (kernel_variant() == 3 &&
      launch_pair_strip<T, OutT, V>(reinterpret_cast<const T*>(x.data_ptr()),
                                    reinterpret_cast<OutT*>(oa.data_ptr()),
                                    reinterpret_cast<OutT*>(ob.data_ptr()), R, C, block_b,
                                    static_cast<int>(bap), pa, pb, state, stream_a, stream_b))
    return true;
  int sc, np;
  // variants 1-3: two passes (rows_lane_kernel along dim 1, strip_kernel along dim 0) instead of
  // one tile pass, when both apply
  if (strips_on() && strip_shape(block_b, &sc, &np) && 32 % bap == 0) return false;
  return launch_tile<T, OutT, V>(reinterpret_cast<const T*>(x.data_ptr()),
                                 reinterpret_cast<OutT*>(oa.data_ptr()),
                                 reinterpret_cast<OutT*>(ob.data_ptr()), 1, R, C,
                                 static_cast<int>(block_b), static_cast<int>(bap), pa, pb, state,
                                 stream_a, stream_b);
}

}  // namespace detail
}  // namespace fq
