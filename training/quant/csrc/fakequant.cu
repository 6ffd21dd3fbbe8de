// Fake-quant host entry points: argument checks and dtype dispatch.
#include "kernels.cuh"

namespace fq {
namespace detail {

void dispatch_f32(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                 int64_t dim, const int64_t* state, int stream);
bool pair_f32(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
             int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
             int stream_a, int stream_b);
void dispatch_f16(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                 int64_t dim, const int64_t* state, int stream);
bool pair_f16(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
             int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
             int stream_a, int stream_b);
void dispatch_bf16(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                 int64_t dim, const int64_t* state, int stream);
bool pair_bf16(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
             int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
             int stream_a, int stream_b);
void dispatch_bf16_f32(const at::Tensor& x, at::Tensor& out, const QParams& p, int64_t granularity,
                 int64_t dim, const int64_t* state, int stream);
bool pair_bf16_f32(const at::Tensor& x, at::Tensor& oa, at::Tensor& ob, const QParams& pa,
             int64_t block_a, const QParams& pb, int64_t block_b, const int64_t* state,
             int stream_a, int stream_b);

}  // namespace detail

using detail::make_params;
using detail::new_output;
using detail::QParams;
using detail::seed_ptr;
using namespace detail;

void set_kernel_variant(int64_t variant) {
  TORCH_CHECK(variant >= 0 && variant < kNumVariants, "kernel variant must be in 0..",
              kNumVariants - 1, ", got ", variant);
  kernel_variant() = static_cast<int>(variant);
}

int64_t get_kernel_variant() { return kernel_variant(); }

int64_t num_kernel_variants() { return kNumVariants; }

at::Tensor fake_quant(const at::Tensor& x_in, const std::vector<int64_t>& fmt_code, double maxv,
                      int64_t granularity, int64_t dim, bool pow2,
                      const std::optional<at::Tensor>& seed, int64_t stream, bool out_fp32) {
  TORCH_CHECK(x_in.is_cuda(), "fake_quant: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const QParams p = make_params(fmt_code, maxv, pow2);
  const int64_t* state = seed_ptr(seed, x, p, p);
  at::Tensor out = new_output(x, out_fp32);
  if (x.numel() == 0) return out;
  if (x.dim() > 0) {
    dim = dim < 0 ? dim + x.dim() : dim;
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "dim out of range");
  } else {
    dim = 0;
    if (granularity != 0) granularity = -1;
  }
  const int st = static_cast<int>(stream);
  switch (x.scalar_type()) {
    case at::kFloat:
      dispatch_f32(x, out, p, granularity, dim, state, st);
      break;
    case at::kHalf:
      dispatch_f16(x, out, p, granularity, dim, state, st);
      break;
    case at::kBFloat16:
      if (out_fp32)
        dispatch_bf16_f32(x, out, p, granularity, dim, state, st);
      else
        dispatch_bf16(x, out, p, granularity, dim, state, st);
      break;
    default:
      TORCH_CHECK(false, "fake_quant: dtype must be float32, bfloat16 or float16");
  }
  return out;
}


std::vector<at::Tensor> fake_quant_pair(const at::Tensor& x_in,
                                        const std::vector<int64_t>& fmt_a, double maxv_a,
                                        int64_t block_a, bool pow2_a, int64_t stream_a,
                                        const std::vector<int64_t>& fmt_b, double maxv_b,
                                        int64_t block_b, bool pow2_b, int64_t stream_b,
                                        const std::optional<at::Tensor>& seed, bool out_fp32) {
  TORCH_CHECK(x_in.is_cuda() && x_in.dim() == 2, "fake_quant_pair: x must be a 2-D CUDA tensor");
  TORCH_CHECK(block_a > 0 && block_b > 0, "fake_quant_pair: blocks must be positive");
  TORCH_CHECK(x_in.size(1) % block_a == 0 && x_in.size(0) % block_b == 0,
              "fake_quant_pair: blocks must divide the dims");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const QParams pa = make_params(fmt_a, maxv_a, pow2_a);
  const QParams pb = make_params(fmt_b, maxv_b, pow2_b);
  const int64_t* state = seed_ptr(seed, x, pa, pb);
  at::Tensor oa = new_output(x, out_fp32), ob = new_output(x, out_fp32);
  if (x.numel() == 0) return {oa, ob};
  const int sa = static_cast<int>(stream_a), sb = static_cast<int>(stream_b);
  bool done = false;
  switch (x.scalar_type()) {
    case at::kFloat:
      done = pair_f32(x, oa, ob, pa, block_a, pb, block_b, state, sa, sb);
      break;
    case at::kHalf:
      done = pair_f16(x, oa, ob, pa, block_a, pb, block_b, state, sa, sb);
      break;
    case at::kBFloat16:
      if (out_fp32)
        done = pair_bf16_f32(x, oa, ob, pa, block_a, pb, block_b, state, sa,
                                               sb);
      else
        done = pair_bf16(x, oa, ob, pa, block_a, pb, block_b,
                                                       state, sa, sb);
      break;
    default:
      TORCH_CHECK(false, "fake_quant_pair: dtype must be float32, bfloat16 or float16");
  }
  if (done) return {oa, ob};
  return {fake_quant(x, fmt_a, maxv_a, block_a, 1, pow2_a, seed, stream_a, out_fp32),
          fake_quant(x, fmt_b, maxv_b, block_b, 0, pow2_b, seed, stream_b, out_fp32)};
}

}  // namespace fq
