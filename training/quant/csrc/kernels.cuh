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
//   rows_block_kernel  one thread block per group (long rows, channel-wise).
//   tile_kernel        groups of B rows along a non-last dim (e.g. dim 0 of a 2-D operand):
//                      a tile of B rows x PC packs in registers, column absmax via shuffles and
//                      shared memory; optionally also row groups of the same tile (pair output).
//   amax_all_kernel + apply_kernel   tensor-wise: device-side absmax, scale read by pointer.
//   amax_cols_kernel + apply_kernel  any other grouping along a non-last dim (two passes).
#pragma once

#include "fakequant.h"

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cfloat>
#include <cstdint>

namespace fq {
namespace detail {

constexpr int kThreads = 256;
constexpr int kRowRegs = 8;   // packs per thread held in registers (rows kernels)
constexpr int kTileRegs = 8;  // packs per thread held in registers (tile kernel)

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
};

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
  TORCH_CHECK(static_cast<double>(p.maxv) == maxv, "maxv must be exact in float32");
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

__device__ __forceinline__ float quant_elem(float y, const QParams& p, uint32_t rbits) {
  if (isnan(y)) return y;
  const uint32_t u = __float_as_uint(y) & 0x7fffffffu;
  const int e = static_cast<int>(u >> 23) - 127;
  float a;
  if (e < p.emin) {  // subnormal range of the target: quantum 2**(emin - M)
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
    const int sh = 23 - p.mbits;
    const uint32_t mask = (1u << sh) - 1u;
    uint32_t inc;
    if (p.rounding == 0) {
      inc = (1u << (sh - 1)) - 1u + (p.mbits == 0 ? 1u : ((u >> sh) & 1u));
    } else if (p.rounding == 1) {
      inc = 1u << (sh - 1);
    } else {
      inc = rbits & mask;
    }
    a = __uint_as_float((u + inc) & ~mask);
  }
  if (a > p.maxv) a = p.saturate ? p.maxv : p.ovf;
  return copysignf(a, y);
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

// Quantize a pack whose elements share the scale s; i0 = flat index of its first element.
template <typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store(const Pack<T, N>& v, float s, const QParams& p,
                                            const int64_t* state, int stream, int64_t i0,
                                            OutT* out) {
  uint32_t r[N];
  if (p.rounding == 2) {
    rand_pack<N>(make_rng(state, stream), i0, r);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) r[j] = 0u;
  }
  const float inv = __fdiv_rn(1.f, s);
  Pack<OutT, N> o;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float q = quant_elem(__fmul_rn(to_f(v.v[j]), s), p, r[j]);
    o.v[j] = from_f<OutT>(__fmul_rn(q, inv));
  }
  *reinterpret_cast<Pack<OutT, N>*>(out + i0) = o;
}

// Same with one scale per element.
template <typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store_each(const Pack<T, N>& v, const float (&s)[N],
                                                 const float (&inv)[N], const QParams& p,
                                                 const int64_t* state, int stream, int64_t i0,
                                                 OutT* out) {
  uint32_t r[N];
  if (p.rounding == 2) {
    rand_pack<N>(make_rng(state, stream), i0, r);
  } else {
#pragma unroll
    for (int j = 0; j < N; ++j) r[j] = 0u;
  }
  Pack<OutT, N> o;
#pragma unroll
  for (int j = 0; j < N; ++j) {
    const float q = quant_elem(__fmul_rn(to_f(v.v[j]), s[j]), p, r[j]);
    o.v[j] = from_f<OutT>(__fmul_rn(q, inv[j]));
  }
  *reinterpret_cast<Pack<OutT, N>*>(out + i0) = o;
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
// per lane (P == tpg * npt, npt <= kRowRegs).
template <typename T, typename OutT, int N, int NREG>
__global__ void __launch_bounds__(kThreads, NREG <= 2 ? 4 : 2)
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
    float m = 0.f;
#pragma unroll
    for (int k = 0; k < NREG; ++k) {
      if (k < npt && active) {
        v[k] = src[li + k * tpg];
        m = fmaxf(m, pack_absmax(v[k]));
      }
    }
    for (int off = tpg >> 1; off > 0; off >>= 1)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    const float s = scale_of(m, p);
    if (active) {
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        if (k < npt) {
          const int64_t i0 = (g * P + li + k * tpg) * N;
          quant_store<T, OutT, N>(v[k], s, p, state, stream, i0, out);
        }
      }
    }
  }
}

// One thread block per group of P packs (kept in registers when P <= blockDim * kRowRegs).
template <typename T, typename OutT, int N>
__global__ void __launch_bounds__(kThreads)
    rows_block_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t ngroups, int64_t P,
                      QParams p, const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  __shared__ float red[32];
  const int tid = threadIdx.x, bd = blockDim.x;
  const bool hold = P <= static_cast<int64_t>(bd) * kRowRegs;
  for (int64_t g = blockIdx.x; g < ngroups; g += gridDim.x) {
    const PackT* src = reinterpret_cast<const PackT*>(x) + g * P;
    PackT v[kRowRegs];
    float m = 0.f;
    if (hold) {
#pragma unroll
      for (int k = 0; k < kRowRegs; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P) {
          v[k] = src[idx];
          m = fmaxf(m, pack_absmax(v[k]));
        }
      }
    } else {
      for (int64_t idx = tid; idx < P; idx += bd) m = fmaxf(m, pack_absmax(src[idx]));
    }
    m = block_max(m, red);
    const float s = scale_of(m, p);
    if (hold) {
#pragma unroll
      for (int k = 0; k < kRowRegs; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P) quant_store<T, OutT, N>(v[k], s, p, state, stream, (g * P + idx) * N, out);
      }
    } else {
      for (int64_t idx = tid; idx < P; idx += bd) {
        const PackT w = src[idx];
        quant_store<T, OutT, N>(w, s, p, state, stream, (g * P + idx) * N, out);
      }
    }
  }
}

// x viewed as (outer, R, inner). A tile is TR rows x PC packs (PC * N columns) of one outer
// index. Thread t holds column pack t % PC of rows t / PC + k * (kThreads / PC), k < NP.
// out_b: groups of TR rows along R (one scale per column of the tile).
// out_a (optional, outer == 1): groups of bap consecutive packs along a row.
template <typename T, typename OutT, int N>
__global__ void __launch_bounds__(kThreads, 2)
    tile_kernel(const T* __restrict__ x, OutT* __restrict__ out_a, OutT* __restrict__ out_b,
                int64_t outer, int64_t R, int64_t inner, int TR, int PC, int NP, int bap,
                QParams pa, QParams pb, const int64_t* state, int stream_a, int stream_b) {
  using PackT = Pack<T, N>;
  __shared__ float part[kThreads * N];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int cp = tid % PC, r0 = tid / PC, rstep = kThreads / PC;
  const int64_t tile_cols = static_cast<int64_t>(PC) * N;
  const int64_t tiles_c = (inner + tile_cols - 1) / tile_cols;
  const int64_t tiles_r = R / TR;
  const int64_t ntiles = outer * tiles_r * tiles_c;
  for (int64_t tile = blockIdx.x; tile < ntiles; tile += gridDim.x) {
    const int64_t ct = tile % tiles_c;
    const int64_t rest = tile / tiles_c;
    const int64_t rt = rest % tiles_r, o = rest / tiles_r;
    const int64_t col = (ct * PC + cp) * N;
    const bool cvalid = col < inner;
    const int64_t base = (o * R + rt * TR) * inner + col;
    PackT v[kTileRegs];
#pragma unroll
    for (int k = 0; k < kTileRegs; ++k) {
      if (k < NP) {
        if (cvalid) {
          v[k] = *reinterpret_cast<const PackT*>(x + base + (r0 + k * rstep) * inner);
        } else {
#pragma unroll
          for (int j = 0; j < N; ++j) v[k].v[j] = from_f<T>(0.f);
        }
      }
    }
    if (out_a != nullptr) {
#pragma unroll
      for (int k = 0; k < kTileRegs; ++k) {
        if (k < NP) {
          float m = pack_absmax(v[k]);
          for (int off = bap >> 1; off > 0; off >>= 1)
            m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
          const float s = scale_of(m, pa);
          if (cvalid)
            quant_store<T, OutT, N>(v[k], s, pa, state, stream_a, base + (r0 + k * rstep) * inner,
                                    out_a);
        }
      }
    }
    if (out_b != nullptr) {
      float cm[N];
#pragma unroll
      for (int j = 0; j < N; ++j) cm[j] = 0.f;
#pragma unroll
      for (int k = 0; k < kTileRegs; ++k) {
        if (k < NP) {
#pragma unroll
          for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v[k].v[j])));
        }
      }
      for (int off = PC; off < 32; off <<= 1) {
#pragma unroll
        for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], __shfl_xor_sync(0xffffffffu, cm[j], off));
      }
      const int nslots = PC >= 32 ? kThreads / PC : kThreads / 32;
      const int slot = PC >= 32 ? tid / PC : warp;
      if (PC >= 32 || lane < PC) {
#pragma unroll
        for (int j = 0; j < N; ++j) part[(slot * PC + cp) * N + j] = cm[j];
      }
      __syncthreads();
      float s[N], inv[N];
#pragma unroll
      for (int j = 0; j < N; ++j) {
        float m = 0.f;
        for (int q = 0; q < nslots; ++q) m = fmaxf(m, part[(q * PC + cp) * N + j]);
        s[j] = scale_of(m, pb);
        inv[j] = __fdiv_rn(1.f, s[j]);
      }
      __syncthreads();
      if (cvalid) {
#pragma unroll
        for (int k = 0; k < kTileRegs; ++k) {
          if (k < NP)
            quant_store_each<T, OutT, N>(v[k], s, inv, pb, state, stream_b,
                                         base + (r0 + k * rstep) * inner, out_b);
        }
      }
    }
  }
}

// Absmax of the whole tensor into amax[0] (zero-initialised).
template <typename T, int N>
__global__ void __launch_bounds__(kThreads)
    amax_all_kernel(const T* __restrict__ x, int64_t npacks, float* amax) {
  using PackT = Pack<T, N>;
  __shared__ float red[32];
  float m = 0.f;
  const PackT* src = reinterpret_cast<const PackT*>(x);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < npacks;
       i += stride)
    m = fmaxf(m, pack_absmax(src[i]));
  m = block_max(m, red);
  if (threadIdx.x == 0) atomic_max_nonneg(amax, m);
}

// Absmax of groups of B rows along R of x viewed as (outer, R, inner); each thread scans `chunk`
// rows (chunk divides B) of one column pack. amax has shape (outer, R / B, inner), zeroed.
template <typename T, int N>
__global__ void __launch_bounds__(kThreads)
    amax_cols_kernel(const T* __restrict__ x, float* amax, int64_t outer, int64_t R,
                     int64_t inner, int64_t B, int chunk) {
  using PackT = Pack<T, N>;
  const int64_t pcs = inner / N, nch = R / chunk;
  const int64_t items = outer * nch * pcs;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t it = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; it < items;
       it += stride) {
    const int64_t cp = it % pcs, rest = it / pcs;
    const int64_t rc = rest % nch, o = rest / nch;
    float cm[N];
#pragma unroll
    for (int j = 0; j < N; ++j) cm[j] = 0.f;
    const int64_t r_begin = rc * chunk;
    for (int r = 0; r < chunk; ++r) {
      const PackT v =
          *reinterpret_cast<const PackT*>(x + (o * R + r_begin + r) * inner + cp * N);
#pragma unroll
      for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v.v[j])));
    }
    float* dst = amax + ((o * (R / B) + r_begin / B) * inner + cp * N);
#pragma unroll
    for (int j = 0; j < N; ++j) atomic_max_nonneg(dst + j, cm[j]);
  }
}

// mode 0: scale 1; mode 1: one absmax amax[0]; mode 2: absmax per (outer, R / B, inner) group.
template <typename T, typename OutT, int N>
__global__ void __launch_bounds__(kThreads)
    apply_kernel(const T* __restrict__ x, OutT* __restrict__ out, int64_t npacks, int mode,
                 const float* __restrict__ amax, int64_t R, int64_t inner, int64_t B, QParams p,
                 const int64_t* state, int stream) {
  using PackT = Pack<T, N>;
  const PackT* src = reinterpret_cast<const PackT*>(x);
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  const float s_all = mode == 1 ? scale_of(amax[0], p) : 1.f;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < npacks;
       i += stride) {
    const PackT v = src[i];
    const int64_t i0 = i * N;
    if (mode != 2) {
      quant_store<T, OutT, N>(v, s_all, p, state, stream, i0, out);
    } else {
      const int64_t c = i0 % inner, rest = i0 / inner;
      const int64_t r = rest % R, o = rest / R;
      const float* a = amax + (o * (R / B) + r / B) * inner + c;
      float s[N], inv[N];
#pragma unroll
      for (int j = 0; j < N; ++j) {
        s[j] = scale_of(a[j], p);
        inv[j] = __fdiv_rn(1.f, s[j]);
      }
      quant_store_each<T, OutT, N>(v, s, inv, p, state, stream, i0, out);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// host side

inline int sm_count() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

inline int grid_for(int64_t work_threads) {
  const int64_t blocks = (work_threads + kThreads - 1) / kThreads;
  const int64_t cap = static_cast<int64_t>(sm_count()) * 8;
  return static_cast<int>(std::max<int64_t>(1, std::min(blocks, cap)));
}

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <typename T, typename OutT, int N>
void launch_rows(const T* x, OutT* out, int64_t numel, int64_t L, const QParams& p,
                 const int64_t* state, int stream) {
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t P = L / N, ngroups = numel / L;
  int tpg = 1;  // largest power of two dividing P, <= 32, aiming at two packs per lane
  while (tpg < 32 && P % (tpg * 2) == 0 && P / (tpg * 2) >= 2) tpg *= 2;
  const int64_t npt = P / tpg;
  if (npt <= kRowRegs) {
    const int64_t warps = (ngroups + (32 / tpg) - 1) / (32 / tpg);
    if (npt <= 2)
      rows_warp_kernel<T, OutT, N, 2><<<grid_for(warps * 32), kThreads, 0, cu>>>(
          x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
    else
      rows_warp_kernel<T, OutT, N, kRowRegs><<<grid_for(warps * 32), kThreads, 0, cu>>>(
          x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
  } else {
    const int64_t cap = static_cast<int64_t>(sm_count()) * 8;
    const int grid = static_cast<int>(std::max<int64_t>(1, std::min(ngroups, cap)));
    rows_block_kernel<T, OutT, N><<<grid, kThreads, 0, cu>>>(x, out, ngroups, P, p, state, stream);
  }
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// Tile shape for groups of TR rows (and optional row groups of bap packs): PC packs per tile row,
// NP packs per thread. Returns false when no shape fits.
inline bool tile_shape(int64_t TR, int N, int elem_bytes, int bap, int* PC, int* NP) {
  const int pc_min = std::max(128 / (N * elem_bytes), std::max(bap, 1));
  int best = -1;
  for (int pc = 1; pc <= kThreads; pc *= 2) {
    if (pc < bap || (bap > 0 && pc % bap != 0)) continue;
    if ((TR * pc) % kThreads != 0) continue;
    const int64_t np = TR * pc / kThreads;
    if (np < 1 || np > kTileRegs) continue;
    if (best < 0 || (best < pc_min && pc > best) || (pc >= pc_min && pc < best)) best = pc;
  }
  if (best < 0) return false;
  *PC = best;
  *NP = static_cast<int>(TR * best / kThreads);
  return true;
}

template <typename T, typename OutT, int N>
void launch_tile(const T* x, OutT* out_a, OutT* out_b, int64_t outer, int64_t R, int64_t inner,
                 int TR, int PC, int NP, int bap, const QParams& pa, const QParams& pb,
                 const int64_t* state, int stream_a, int stream_b) {
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t tile_cols = static_cast<int64_t>(PC) * N;
  const int64_t tiles_c = (inner + tile_cols - 1) / tile_cols;
  const int64_t ntiles = outer * (R / TR) * tiles_c;
  const int64_t cap = static_cast<int64_t>(sm_count()) * 8;
  const int grid = static_cast<int>(std::max<int64_t>(1, std::min(ntiles, cap)));
  tile_kernel<T, OutT, N><<<grid, kThreads, 0, cu>>>(x, out_a, out_b, outer, R, inner, TR, PC, NP,
                                                     bap, pa, pb, state, stream_a, stream_b);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename OutT, int N>
void launch_generic(const T* x, OutT* out, int64_t numel, int mode, int64_t outer, int64_t R,
                    int64_t inner, int64_t B, const QParams& p, const int64_t* state, int stream,
                    const at::Tensor& like) {
  auto cu = at::cuda::getCurrentCUDAStream();
  at::Tensor amax;
  const float* amax_ptr = nullptr;
  if (mode == 1) {
    amax = at::zeros({1}, like.options().dtype(at::kFloat));
    amax_all_kernel<T, N><<<grid_for(numel / N), kThreads, 0, cu>>>(x, numel / N,
                                                                    amax.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    amax_ptr = amax.data_ptr<float>();
  } else if (mode == 2) {
    amax = at::zeros({outer * (R / B) * inner}, like.options().dtype(at::kFloat));
    int chunk = 1;
    for (int c = 32; c >= 1; --c) {
      if (B % c == 0) {
        chunk = c;
        break;
      }
    }
    const int64_t items = outer * (R / chunk) * (inner / N);
    amax_cols_kernel<T, N><<<grid_for(items), kThreads, 0, cu>>>(x, amax.data_ptr<float>(), outer,
                                                                 R, inner, B, chunk);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    amax_ptr = amax.data_ptr<float>();
  }
  apply_kernel<T, OutT, N><<<grid_for(numel / N), kThreads, 0, cu>>>(
      x, out, numel / N, mode, amax_ptr, R, inner, B, p, state, stream);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

template <typename T, typename OutT>
void dispatch_one(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                  int64_t dim, const int64_t* state, int stream) {
  constexpr int V = 16 / sizeof(T);
  const T* xp = reinterpret_cast<const T*>(x.data_ptr());
  OutT* op = reinterpret_cast<OutT*>(out.data_ptr());
  const int64_t numel = x.numel();
  const bool al = aligned16(xp);
  if (granularity == 0 || granularity == -1) {
    const int mode = granularity == 0 ? 0 : 1;
    if (al && numel % V == 0)
      launch_generic<T, OutT, V>(xp, op, numel, mode, 1, numel, 1, numel, p, state, stream, x);
    else
      launch_generic<T, OutT, 1>(xp, op, numel, mode, 1, numel, 1, numel, p, state, stream, x);
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
  int PC, NP;
  if (vec && tile_shape(B, V, sizeof(T), 0, &PC, &NP)) {
    launch_tile<T, OutT, V>(xp, nullptr, op, outer, R, inner, static_cast<int>(B), PC, NP, 0, p, p,
                            state, stream, stream);
  } else if (!vec && tile_shape(B, 1, sizeof(T), 0, &PC, &NP)) {
    launch_tile<T, OutT, 1>(xp, nullptr, op, outer, R, inner, static_cast<int>(B), PC, NP, 0, p, p,
                            state, stream, stream);
  } else if (vec) {
    launch_generic<T, OutT, V>(xp, op, numel, 2, outer, R, inner, B, p, state, stream, x);
  } else {
    launch_generic<T, OutT, 1>(xp, op, numel, 2, outer, R, inner, B, p, state, stream, x);
  }
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
  if (!aligned16(x.data_ptr()) || C % V != 0 || block_a % V != 0) return false;
  const int64_t bap = block_a / V;
  if (bap > 32 || (bap & (bap - 1)) != 0) return false;
  int PC, NP;
  if (!tile_shape(block_b, V, sizeof(T), static_cast<int>(bap), &PC, &NP)) return false;
  launch_tile<T, OutT, V>(reinterpret_cast<const T*>(x.data_ptr()),
                          reinterpret_cast<OutT*>(oa.data_ptr()),
                          reinterpret_cast<OutT*>(ob.data_ptr()), 1, R, C,
                          static_cast<int>(block_b), PC, NP, static_cast<int>(bap), pa, pb, state,
                          stream_a, stream_b);
  return true;
}

}  // namespace detail
}  // namespace fq
