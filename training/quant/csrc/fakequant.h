// Fake-quant ExMy CUDA kernels: host entry points.
//
// The semantics are defined by training/quant/reference.py; these kernels perform the same
// float32 operations in the same order (no fast-math, no FMA contraction) and must match it bit
// for bit.
#pragma once

#include <ATen/ATen.h>
#include <optional>
#include <string>
#include <vector>

namespace fq {

// fmt_code: {mbits, emin, max_exponent, rounding (0 nearest_even, 1 half_away, 2 stochastic),
//            subnormals, saturate, overflow_is_nan}
// granularity: 0 none (scale 1), -1 tensor, -2 channel, B > 0 blocks of B along dim.
at::Tensor fake_quant(const at::Tensor& x, const std::vector<int64_t>& fmt_code, double maxv,
                      int64_t granularity, int64_t dim, bool pow2,
                      const std::optional<at::Tensor>& seed, int64_t stream, bool out_fp32);

// x is 2-D (R, C). Output a: groups along dim 1 (block_a elements); output b: groups along dim 0
// (block_b rows). One read of x when both fit one tile; two calls of fake_quant otherwise.
std::vector<at::Tensor> fake_quant_pair(const at::Tensor& x,
                                        const std::vector<int64_t>& fmt_a, double maxv_a,
                                        int64_t block_a, bool pow2_a, int64_t stream_a,
                                        const std::vector<int64_t>& fmt_b, double maxv_b,
                                        int64_t block_b, bool pow2_b, int64_t stream_b,
                                        const std::optional<at::Tensor>& seed, bool out_fp32);

// The kernel set the launchers use: "square" (the default) or "generic" (see launch.cuh);
// set_kernel raises for any other name.
void set_kernel(const std::string& name);
std::string get_kernel();

}  // namespace fq
