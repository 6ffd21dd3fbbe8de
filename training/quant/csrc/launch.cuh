// Fake-quant launch code: which kernel takes which shape, grid sizes, dtype units.
//
// Two kernel sets compute the same values (the GPU tests check each against the reference):
//   square   (default) column groups of 32, 64 or 128 rows and pairs of equal blocks of a 2-D
//            16-bit tensor whose shape tiles (rows a multiple of B, columns of 128) by
//            square_kernel with nearest-even rounding; everything else as generic.
//   generic  rows_warp_kernel / rows_block_kernel for row groups, tile_kernel for column groups
//            and pairs, the column kernels where no register tile fits, amax_all + apply for
//            tensor-wise scaling.
// The choice is process-wide and read on the host at each launch, so a CUDA graph keeps the
// kernels it was captured with.
#pragma once

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <optional>
#include <string>

#include "kernels.cuh"

namespace fq {
namespace detail {

inline bool& square_on() {
  static bool on = true;
  return on;
}

inline int sm_count() {
  return at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
}

// Grid of a launch: one block per work item, at most per_sm blocks per SM (at least one block).
inline int grid_of(int64_t items, int per_sm) {
  const int64_t cap = static_cast<int64_t>(sm_count()) * per_sm;
  return static_cast<int>(std::max<int64_t>(1, std::min(items, cap)));
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

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

// Groups of L consecutive elements along the last dim.
template <typename T, typename OutT, int N>
void launch_rows(const T* x, OutT* out, int64_t numel, int64_t L, const QParams& p,
                 const int64_t* state, int stream) {
  auto cu = at::cuda::getCurrentCUDAStream();
  const int64_t P = L / N, ngroups = numel / L;
  int tpg = 1;  // largest power of two dividing P, <= 32, aiming at four packs per lane
  while (tpg < 32 && P % (tpg * 2) == 0 && P / (tpg * 2) >= 4) tpg *= 2;
  const int64_t npt = P / tpg;
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    if (npt <= kRowRegs) {
      const int grid = grid_of(ceil_div(ceil_div(ngroups, 32 / tpg) * 32, kThreads), 16);
      if (npt <= 4)
        rows_warp_kernel<RM, T, OutT, N, 4><<<grid, kThreads, 0, cu>>>(
            x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
      else
        rows_warp_kernel<RM, T, OutT, N, kRowRegs><<<grid, kThreads, 0, cu>>>(
            x, out, ngroups, static_cast<int>(P), tpg, static_cast<int>(npt), p, state, stream);
    } else {
      const int grid = grid_of(ngroups, 16);
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

// tile_kernel: picks 512 threads (four packs per thread for a 128 x 128 bf16 tile) when a shape
// fits, else 256. Returns false when neither fits.
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
  const int64_t ntiles = outer * (R / TR) * ceil_div(inner, static_cast<int64_t>(PC) * N);
  TORCH_CHECK(ntiles < (int64_t{1} << 31) - 2 * static_cast<int64_t>(sm_count()) * 2,
              "launch_tile: too many tiles");
  // two blocks per SM are resident (launch bounds): one wave, so the prefetch runs throughout
  const int grid = grid_of(ntiles, 2);
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

// square_kernel for a 2-D tensor of R x C 16-bit elements: column groups of B rows (out_b), with
// out_a also row groups of B columns. False when it does not apply (the generic kernels chosen,
// rounding other than the nearest-even fast path, B not 32, 64 or 128, R not a multiple of B, C
// not a multiple of 128); the caller then uses tile_kernel.
template <typename T, typename OutT, int N>
bool launch_square(const T* x, OutT* out_a, OutT* out_b, int64_t R, int64_t C, int64_t B,
                   const QParams& pa, const QParams& pb) {
  if constexpr (N != 8 || sizeof(T) != 2) {
    return false;
  } else {
    if (!square_on() || !pb.fast || (out_a != nullptr && !pa.fast)) return false;
    if ((B != 32 && B != 64 && B != 128) || R % B != 0 || C % 128 != 0) return false;
    const int64_t tiles_c = C / 128, ntiles = (R / B) * tiles_c;
    if (ntiles == 0) return false;
    TORCH_CHECK(ntiles < (int64_t{1} << 31) - static_cast<int64_t>(sm_count()) * 2,
                "launch_square: too many tiles");
    const int grid = grid_of(ntiles, 2);  // two blocks per SM: one wave
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

// Tensor-wise (mode 1: device-side absmax, scale read by pointer) or no scaling (mode 0).
template <typename T, typename OutT, int N>
void launch_whole(const T* x, OutT* out, int64_t numel, int mode, const QParams& p,
                  const int64_t* state, int stream, const at::Tensor& like) {
  auto cu = at::cuda::getCurrentCUDAStream();
  const int grid = grid_of(ceil_div(numel / N, kThreads), 8);
  at::Tensor amax;
  const float* amax_ptr = nullptr;
  if (mode == 1) {
    amax = at::zeros({1}, like.options().dtype(at::kFloat));
    amax_all_kernel<T, N><<<grid, kThreads, 0, cu>>>(x, numel / N, amax.data_ptr<float>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    amax_ptr = amax.data_ptr<float>();
  }
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    apply_kernel<RM, T, OutT, N><<<grid, kThreads, 0, cu>>>(x, out, numel / N, mode, amax_ptr, p,
                                                             state, stream);
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
  const int64_t cblocks = ceil_div(inner / N, kColX);
  const dim3 block(kColX, kColY);
  at::Tensor partial = at::empty({nchunks * inner}, like.options().dtype(at::kFloat));
  at::Tensor sinv = at::empty({ngroups * inner * 2}, like.options().dtype(at::kFloat));
  cols_absmax_kernel<T, N><<<grid_of(nchunks * cblocks, 8), block, 0, cu>>>(
      x, partial.data_ptr<float>(), nchunks, inner, RPC);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  cols_scale_kernel<<<grid_of(ngroups * ceil_div(inner, kColX), 8), block, 0, cu>>>(
      partial.data_ptr<float>(), reinterpret_cast<float2*>(sinv.data_ptr<float>()), ngroups,
      inner, static_cast<int>(B / RPC), p);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  with_rm<N>(p.fast, [&](auto rm) {
    constexpr int RM = decltype(rm)::value;
    cols_apply_kernel<RM, T, OutT, N><<<grid_of(nchunks * cblocks, 8), block, 0, cu>>>(
        x, out, reinterpret_cast<const float2*>(sinv.data_ptr<float>()), nchunks, inner, B, RPC,
        p, state, stream);
  });
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}

// fake_quant of one (input, output) dtype pair; out is contiguous, x contiguous and non-empty.
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
  if (vec && outer == 1 && launch_square<T, OutT, V>(xp, nullptr, op, R, inner, B, p, p)) return;
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

// fake_quant_pair of one dtype pair in one read of x: true when a kernel took it, false when the
// caller must quantize along each dim on its own.
template <typename T, typename OutT>
bool pair_one(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
              int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
              int stream_a, int stream_b) {
  constexpr int V = 16 / sizeof(T);
  const int64_t R = x.size(0), C = x.size(1);
  if (!aligned16(x.data_ptr()) || !aligned16(oa.data_ptr()) || !aligned16(ob.data_ptr()) ||
      C % V != 0 || block_a % V != 0)
    return false;
  const T* xp = reinterpret_cast<const T*>(x.data_ptr());
  OutT* ap = reinterpret_cast<OutT*>(oa.data_ptr());
  OutT* bp = reinterpret_cast<OutT*>(ob.data_ptr());
  if (block_a == block_b && launch_square<T, OutT, V>(xp, ap, bp, R, C, block_b, pa, pb))
    return true;
  const int64_t bap = block_a / V;
  if (bap > 32 || (bap & (bap - 1)) != 0) return false;
  return launch_tile<T, OutT, V>(xp, ap, bp, 1, R, C, static_cast<int>(block_b),
                                 static_cast<int>(bap), pa, pb, state, stream_a, stream_b);
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

}  // namespace detail
}  // namespace fq

// The entry points of one (input, output) dtype pair. Each pair is compiled in a translation
// unit of its own (fq_*.cu: FQ_INSTANTIATE, so that ninja builds them in parallel); the host
// entry points (fakequant.cu: FQ_EXTERN) only declare them.
#define FQ_ENTRY_POINTS(PREFIX, T, OutT)                                                       \
  namespace fq {                                                                               \
  namespace detail {                                                                           \
  PREFIX template void dispatch_one<T, OutT>(const at::Tensor&, at::Tensor&, const QParams&,   \
                                             int64_t, int64_t, const int64_t*, int);           \
  PREFIX template bool pair_one<T, OutT>(const at::Tensor&, at::Tensor&, at::Tensor&,          \
                                         const QParams&, int64_t, const QParams&, int64_t,     \
                                         const int64_t*, int, int);                            \
  }                                                                                            \
  }
#define FQ_INSTANTIATE(T, OutT) FQ_ENTRY_POINTS(, T, OutT)
#define FQ_EXTERN(T, OutT) FQ_ENTRY_POINTS(extern, T, OutT)
