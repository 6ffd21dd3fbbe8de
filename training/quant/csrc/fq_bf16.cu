// Fake-quant kernels for __nv_bfloat16 input, __nv_bfloat16 output (one file per dtype so that
// ninja compiles them in parallel).
#include "kernels.cuh"

namespace fq {
namespace detail {

void dispatch_bf16(const at::Tensor& x, at::Tensor& out, const QParams& p,
                 int64_t granularity, int64_t dim, const int64_t* state, int stream) {
  dispatch_one<__nv_bfloat16, __nv_bfloat16>(x, out, p, granularity, dim, state, stream);
}

bool pair_bf16(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
             int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
             int stream_a, int stream_b) {
  return pair_tile<__nv_bfloat16, __nv_bfloat16>(x, oa, ob, pa, block_a, pb, block_b, state,
                                   stream_a, stream_b);
}

}  // namespace detail
}  // namespace fq
