// Fake-quant ExMy CUDA kernels: packs, absmaxes, stores and the kernels themselves.
//
// Kernels
//   rows_warp_kernel   groups contiguous along the last dim, 1..32 lanes per group, whole group
//                      in registers: one read, one write (block sizes up to 2048 bf16 elements).
//   rows_block_kernel  one thread block per group (long rows, channel-wise).
//   tile_kernel        groups of B rows along a non-last dim (e.g. dim 0 of a 2-D operand):
//                      a tile of B rows x PC packs in registers, column absmax via shuffles and
//                      shared memory; optionally also row groups of the same tile (pair output).
//   square_kernel      column groups, optionally with row groups (pair output), of a 2-D 16-bit
//                      tensor in B x 128 tiles whose every size is a compile-time constant: the
//                      next tile copied to shared memory while one is quantized.
//   amax_all_kernel + apply_kernel   tensor-wise: device-side absmax, scale read by pointer.
//   cols_absmax_kernel + cols_scale_kernel + cols_apply_kernel  any other grouping along a
//                      non-last dim (long groups, e.g. channel-wise along dim 0): two reads.
//
// Every kernel here is a template or static: the header is included by one translation unit per
// dtype.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>

#include "format.cuh"

namespace fq {
namespace detail {

constexpr int kThreads = 256;
constexpr int kRowRegs = 8;   // packs per thread held in registers (rows kernels)
constexpr int kTileRegs = 8;  // packs per thread held in registers (tile kernel)

// ---------------------------------------------------------------------------------------------
// element conversions and packs

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }

template <typename T>
__device__ __forceinline__ T from_f(float v) {
  if constexpr (std::is_same<T, __nv_bfloat16>::value) {
    return __float2bfloat16_rn(v);
  } else if constexpr (std::is_same<T, __half>::value) {
    return __float2half_rn(v);
  } else {
    return v;
  }
}

template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// ---------------------------------------------------------------------------------------------
// absmaxes, stores, copies

// Absmax of |x| over a pack, NaN ignored (fmaxf). FIN: Inf left out (fin_abs); otherwise Inf
// kept, one max per element: a result above FLT_MAX means the pack holds an Inf, and the caller
// then recomputes with FIN (rare).
template <bool FIN, typename T, int N>
__device__ __forceinline__ float pack_absmax(const Pack<T, N>& v) {
  float m = 0.f;
#pragma unroll
  for (int j = 0; j < N; ++j) m = fmaxf(m, FIN ? fin_abs(to_f(v.v[j])) : fabsf(to_f(v.v[j])));
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

// Quantize a pack, element j with scale s_of(j) and de-scale factor inv_of(j); i0 = flat index of
// its first element.
template <int RM, typename T, typename OutT, int N, typename S, typename I>
__device__ __forceinline__ void quant_store_by(const Pack<T, N>& v, S s_of, I inv_of,
                                               const QParams& p, const int64_t* state,
                                               int stream, int64_t i0, OutT* out) {
  uint32_t r[N];
#pragma unroll
  for (int j = 0; j < N; ++j) r[j] = 0u;
  if constexpr (RM != 0) {
    if (p.rounding == 2) rand_pack<N>(make_rng(state, stream), i0, r);
  }
  float q[N];
#pragma unroll
  for (int j = 0; j < N; ++j)
    q[j] = __fmul_rn(quant_elem<RM>(__fmul_rn(to_f(v.v[j]), s_of(j)), p, r[j]), inv_of(j));
  store_pack<OutT, N>(q, out + i0);
}

// A pack whose elements share the scale s (inv: its de-scale factor).
template <int RM, typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store(const Pack<T, N>& v, float s, float inv,
                                            const QParams& p, const int64_t* state, int stream,
                                            int64_t i0, OutT* out) {
  quant_store_by<RM, T, OutT, N>(v, [=](int) { return s; }, [=](int) { return inv; }, p, state,
                                 stream, i0, out);
}

// A pack with one scale per element.
template <int RM, typename T, typename OutT, int N>
__device__ __forceinline__ void quant_store_each(const Pack<T, N>& v, const float (&s)[N],
                                                 const float (&inv)[N], const QParams& p,
                                                 const int64_t* state, int stream, int64_t i0,
                                                 OutT* out) {
  quant_store_by<RM, T, OutT, N>(v, [&](int j) { return s[j]; }, [&](int j) { return inv[j]; },
                                 p, state, stream, i0, out);
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
      if (k < npt && active) m = fmaxf(m, pack_absmax<false>(v[k]));
    }
    for (int off = tpg >> 1; off > 0; off >>= 1)
      m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    if (__any_sync(0xffffffffu, m > FLT_MAX)) {  // some group holds an Inf: exclude it
      m = 0.f;
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        if (k < npt && active) m = fmaxf(m, pack_absmax<true>(v[k]));
      }
      for (int off = tpg >> 1; off > 0; off >>= 1)
        m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, off));
    }
    if (active) {
      const float s = scale_of(m, p);
      const float inv = descale_of(s, p);
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
    if (hold) {
#pragma unroll
      for (int k = 0; k < NREG; ++k) {
        const int64_t idx = tid + static_cast<int64_t>(k) * bd;
        if (idx < P) v[k] = src[idx];
      }
    }
    // the group's absmax with absmax_of per pack (block-uniform; every thread must call it)
    auto group_max = [&](auto absmax_of) {
      float m = 0.f;
      if (hold) {
#pragma unroll
        for (int k = 0; k < NREG; ++k) {
          const int64_t idx = tid + static_cast<int64_t>(k) * bd;
          if (idx < P) m = fmaxf(m, absmax_of(v[k]));
        }
      } else {
        for (int64_t idx = tid; idx < P; idx += bd) m = fmaxf(m, absmax_of(src[idx]));
      }
      return block_max(m, red);
    };
    float m = group_max([](const PackT& w) { return pack_absmax<false>(w); });
    if (m > FLT_MAX)  // the group holds an Inf: absmax of the finite elements
      m = group_max([](const PackT& w) { return pack_absmax<true>(w); });
    const float s = scale_of(m, p);
    const float inv = descale_of(s, p);
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
__global__ void __launch_bounds__(TT, RM == 0 || TT <= 256 ? 2 : 1)  // 512 threads with run-time rounding: one block per SM, 128 registers
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
        col_i[c] = descale_of(sc, pb);
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
          const float iv = descale_of(sc, pa);
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
// output), for a 2-D tensor of 16-bit elements whose shape tiles exactly: every size
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
      const float iv = descale_of(sc, pa);
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
      col_i[tid] = descale_of(s, pb);
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
    for (int u = 0; u < U; ++u) m = fmaxf(m, pack_absmax<true>(v[u]));
  }
  for (; i < npacks; i += stride) m = fmaxf(m, pack_absmax<true>(src[i]));
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

// Calls f(pack, r) for the rows r = threadIdx.y, + kColY, ... < RPC of the column pack at src
// (rows inner elements apart), four loads in flight at a time.
template <typename T, int N, typename F>
__device__ __forceinline__ void chunk_rows(const T* src, int64_t inner, int RPC, F&& f) {
  using PackT = Pack<T, N>;
  int r = threadIdx.y;
  for (; r + 3 * kColY < RPC; r += 4 * kColY) {
    PackT v[4];
#pragma unroll
    for (int u = 0; u < 4; ++u)
      v[u] = *reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r + u * kColY) * inner);
#pragma unroll
    for (int u = 0; u < 4; ++u) f(v[u], r + u * kColY);
  }
  for (; r < RPC; r += kColY)
    f(*reinterpret_cast<const PackT*>(src + static_cast<int64_t>(r) * inner), r);
}

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
      chunk_rows<T, N>(x + ch * RPC * inner + cpk * N, inner, RPC, [&](const PackT& v, int) {
#pragma unroll
        for (int j = 0; j < N; ++j) cm[j] = fmaxf(cm[j], fin_abs(to_f(v.v[j])));
      });
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
      sinv[g * inner + col] = make_float2(sc, descale_of(sc, p));
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
  const int tx = threadIdx.x;
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
    chunk_rows<T, N>(x + row0 * inner + cpk * N, inner, RPC, [&](const PackT& v, int r) {
      quant_store_each<RM, T, OutT, N>(v, sc, iv, p, state, stream, (row0 + r) * inner + cpk * N,
                                       out);
    });
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
  const float inv = descale_of(s_all, p);
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


}  // namespace detail
}  // namespace fq
