// Fake-quant host entry points: argument checks, kernel choice and dtype dispatch.
#include "fakequant.h"

#include "launch.cuh"

FQ_EXTERN(float, float)
FQ_EXTERN(__half, __half)
FQ_EXTERN(__nv_bfloat16, __nv_bfloat16)
FQ_EXTERN(__nv_bfloat16, float)

namespace fq {

using detail::QParams;

namespace {

template <typename T, typename OutT>
struct Types {
  using In = T;
  using Out = OutT;
};

// Calls f(Types<T, OutT>{}) for the dtype of x (and float32 output for bfloat16 with out_fp32).
template <typename F>
void with_types(const at::Tensor& x, bool out_fp32, const char* who, F&& f) {
  switch (x.scalar_type()) {
    case at::kFloat:
      f(Types<float, float>{});
      break;
    case at::kHalf:
      f(Types<__half, __half>{});
      break;
    case at::kBFloat16:
      if (out_fp32)
        f(Types<__nv_bfloat16, float>{});
      else
        f(Types<__nv_bfloat16, __nv_bfloat16>{});
      break;
    default:
      TORCH_CHECK(false, who, ": dtype must be float32, bfloat16 or float16");
  }
}

}  // namespace

void set_kernel(const std::string& name) {
  TORCH_CHECK(name == "square" || name == "generic",
              "kernel must be 'square' or 'generic', got '", name, "'");
  detail::square_on() = name == "square";
}

std::string get_kernel() { return detail::square_on() ? "square" : "generic"; }

at::Tensor fake_quant(const at::Tensor& x_in, const std::vector<int64_t>& fmt_code, double maxv,
                      int64_t granularity, int64_t dim, bool pow2,
                      const std::optional<at::Tensor>& seed, int64_t stream, bool out_fp32) {
  TORCH_CHECK(x_in.is_cuda(), "fake_quant: x must be a CUDA tensor");
  const c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const QParams p = detail::make_params(fmt_code, maxv, pow2);
  const int64_t* state = detail::seed_ptr(seed, x, p, p);
  at::Tensor out = detail::new_output(x, out_fp32);
  if (x.numel() == 0) return out;
  if (x.dim() > 0) {
    dim = dim < 0 ? dim + x.dim() : dim;
    TORCH_CHECK(dim >= 0 && dim < x.dim(), "dim out of range");
  } else {
    dim = 0;
    if (granularity != 0) granularity = -1;
  }
  with_types(x, out_fp32, "fake_quant", [&](auto types) {
    using Ty = decltype(types);
    detail::dispatch_one<typename Ty::In, typename Ty::Out>(x, out, p, granularity, dim, state,
                                                             static_cast<int>(stream));
  });
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
  const QParams pa = detail::make_params(fmt_a, maxv_a, pow2_a);
  const QParams pb = detail::make_params(fmt_b, maxv_b, pow2_b);
  const int64_t* state = detail::seed_ptr(seed, x, pa, pb);
  at::Tensor oa = detail::new_output(x, out_fp32), ob = detail::new_output(x, out_fp32);
  if (x.numel() == 0) return {oa, ob};
  bool done = false;
  with_types(x, out_fp32, "fake_quant_pair", [&](auto types) {
    using Ty = decltype(types);
    done = detail::pair_one<typename Ty::In, typename Ty::Out>(
        x, oa, ob, pa, block_a, pb, block_b, state, static_cast<int>(stream_a),
        static_cast<int>(stream_b));
  });
  if (done) return {oa, ob};
  return {fake_quant(x, fmt_a, maxv_a, block_a, 1, pow2_a, seed, stream_a, out_fp32),
          fake_quant(x, fmt_b, maxv_b, block_b, 0, pow2_b, seed, stream_b, out_fp32)};
}

}  // namespace fq
