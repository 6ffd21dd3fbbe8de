"""CUDA fake-quant kernel: bit-exact against the torch reference, pair kernel, graph capture.

Every test runs once per kernel set (``$BAYESFP_FQ_TEST_KERNELS``, comma-separated, default
``square,generic``), so each implementation is checked against the reference; after each test the
kernel set in use before it (``$BAYESFP_FQ_KERNEL``, default ``square``) is restored.
"""

import os

import pytest
import torch

from training.quant import FPFormat, LinearQuantConfig, quantize, quantize_pair, quantize_reference
from training.quant.config import OperandQuant
from training.quant.linear import QuantLinear

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]

KERNELS = [k.strip() for k in os.environ.get("BAYESFP_FQ_TEST_KERNELS", "square,generic").split(",")
           if k.strip()]


@pytest.fixture(autouse=True, params=KERNELS)
def fq_kernel(request):
    from training.quant import kernel

    before = kernel.kernel_name()
    kernel.set_kernel(request.param)
    yield request.param
    kernel.set_kernel(before)


FORMATS = [FPFormat(4, 3), FPFormat(2, 1), FPFormat(5, 2, "ieee", saturate=False),
           FPFormat(3, 2, rounding="half_away"), FPFormat(4, 3, "fn", subnormals=False),
           FPFormat(2, 3, rounding="stochastic"), FPFormat(8, 3), FPFormat(1, 2),
           FPFormat(6, 9), FPFormat(3, 0), FPFormat(5, 10, "ieee", rounding="stochastic")]

# (shape, dim, granularity): rows in registers, rows per block, scalar rows, tiles, two-pass
CASES = [((64, 256), -1, 8), ((64, 256), -1, 32), ((32, 512), -1, 128), ((16, 2048), -1, 256),
         ((8, 4096), -1, 2048), ((8, 4096), -1, "channel"), ((3, 20000), -1, "channel"),
         ((40, 24), -1, 24), ((30, 21), -1, 3), ((256, 64), 0, 128), ((256, 64), 0, 32),
         ((96, 40), 0, 3), ((4, 64, 48), 1, 16), ((1024, 16), 0, "channel"),
         ((2048, 24), 0, 1024), ((128, 13), 0, 8), ((4096, 8), 0, 4096), ((300, 5), 0, 300),
         ((37, 53), 1, "tensor"), ((512, 256), 0, None),
         ((5, 7, 9), 2, None), ((0, 16), -1, 8), ((), 0, "tensor"),
         # rows of 257..512 packs (one block per row, two packs per thread)
         ((5, 2400), -1, "channel"), ((3, 2048), -1, "channel"),
         # column kernels (groups along a non-last dim too long for a register tile): several
         # chunks per group, several groups, outer > 1, partial column blocks, scalar packs
         ((6144, 16), 0, "channel"), ((6144, 48), 0, 3072), ((3, 4200, 8), 1, 4200),
         ((3000, 13), 0, "channel"), ((2, 5000, 3), 1, "channel"), ((4096, 264), 0, "channel"),
         # 2-D tiles of B x 128 (square_kernel for 16-bit types): one tile, several,
         # and more tiles than the grid has blocks (the next tile copied in while one is
         # quantized)
         ((128, 128), 0, 128), ((512, 384), 0, 128), ((1024, 256), 0, 64), ((2048, 640), 0, 32)]


def adversarial(shape, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g) * torch.exp(torch.randn(shape, generator=g) * 3)
    flat = x.view(-1)
    n = flat.numel()
    if n >= 64:
        idx = torch.randperm(n, generator=g)[:48]
        special = torch.tensor([0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-40,
                                -3e-39, 0.5, 1.5, 2.5, 448.0, 464.0, 6.0e4, 1e-8, 2.0**-9,
                                3.0 * 2**-10])
        flat[idx] = special.repeat(3)
    if n >= 256:
        flat[:32] = 0.0  # an all-zero group for most block sizes
    return x.to(dtype)


def assert_same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape
    got, want = got.cpu(), want.cpu()
    nan = torch.isnan(got.float())
    assert torch.equal(nan, torch.isnan(want.float()))
    ints = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16}
    g, w = got[~nan], want[~nan]
    assert torch.equal(g.view(ints[g.dtype]), w.view(ints[w.dtype])), \
        f"{(g != w).sum().item()} of {g.numel()} differ"


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape,dim,gran", CASES)
def test_kernel_equals_reference(shape, dim, gran, dtype):
    x = adversarial(shape, dtype, seed=len(shape) * 1000 + sum(shape)).cuda()
    for i, fmt in enumerate(FORMATS):
        for scale in ("fp32", "pow2"):
            seed = torch.tensor([123 + i, 7], dtype=torch.int64, device="cuda")
            got = quantize(x, fmt, gran, dim=dim, scale=scale, seed=seed, stream=i % 16,
                           backend="cuda")
            want = quantize_reference(x.cpu(), fmt, gran, dim=dim, scale=scale,
                                      seed=seed.cpu(), stream=i % 16)
            assert_same(got, want)


# formats on the branch-free nearest-even path (subnormals, saturation, E <= 7) and next to it
FAST_FORMATS = [FPFormat(e, m, c) for e, m, c in
                [(1, 0, "finite"), (1, 5, "finite"), (2, 1, "finite"), (2, 22, "finite"),
                 (3, 0, "fn"), (4, 3, "fn"), (4, 7, "finite"), (5, 2, "ieee"), (5, 10, "ieee"),
                 (6, 12, "finite"), (7, 0, "finite"), (7, 16, "ieee"), (7, 22, "fn"),
                 (8, 7, "ieee"), (8, 0, "finite")]]


def special_values(dtype):
    """Grid points, midpoints and their neighbours of many formats, +-0, Inf, NaN, subnormals."""
    vals = [0.0, -0.0, float("inf"), -float("inf"), float("nan"), 1e-45, 1e-40, 1e-38, 3.4e38]
    for e in range(-30, 31, 3):
        for m in (1.0, 1.25, 1.5, 1.75, 1.875, 1.9375, 1.0625, 1.03125):
            vals += [m * 2.0**e, -m * 2.0**e]
    x = torch.tensor(vals, dtype=torch.float32)
    x = torch.cat([x, torch.nextafter(x, torch.full_like(x, float("inf"))),
                   torch.nextafter(x, torch.full_like(x, -float("inf")))])
    return x.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_fast_path_formats_equal_reference(dtype):
    g = torch.Generator().manual_seed(11)
    sp = special_values(dtype)
    rnd = (torch.randn(4096, generator=g) * torch.exp(torch.randn(4096, generator=g) * 4))
    flat = torch.cat([sp, rnd.to(dtype)])
    flat = flat[: flat.numel() // 64 * 64]  # the special values first, then random ones
    for gran, dim, shape in [(None, -1, (-1, 64)), (32, -1, (-1, 64)), (8, 0, (-1, 64)),
                             ("channel", 0, (-1, 64)), ("tensor", -1, (-1, 64)),
                             (32, 0, (32, 128))]:
        n = flat.numel() if shape[0] == -1 else shape[0] * shape[1]
        x = flat[:n].reshape(shape).cuda()
        for fmt in FAST_FORMATS:
            for scale in ("fp32", "pow2"):
                got = quantize(x, fmt, gran, dim=dim, scale=scale, backend="cuda")
                want = quantize_reference(x.cpu(), fmt, gran, dim=dim, scale=scale)
                assert_same(got, want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape,dim,gran", [((6145, 20), 0, "channel"), ((6145, 24), 0, 1024),
                                            ((65, 264), -1, 8), ((9, 2400), -1, "channel"),
                                            ((513, 40), 0, 128)])
def test_kernel_misaligned_pointer(shape, dim, gran, dtype):
    # a contiguous view whose data pointer is not 16-byte aligned takes the scalar paths
    base = adversarial(shape, dtype, seed=sum(shape)).cuda()
    x = base.reshape(-1)[1:].reshape(-1)
    x = x[: x.numel() // shape[1] * shape[1] - shape[1]].reshape(-1, shape[1])
    if dim == 0:
        x = x[: x.shape[0] // (gran if isinstance(gran, int) else 1) *
              (gran if isinstance(gran, int) else 1)]
    assert x.data_ptr() % 16 != 0 and x.is_contiguous()
    for fmt in (FPFormat(4, 3), FPFormat(2, 1, rounding="stochastic")):
        seed = torch.tensor([4, 1], dtype=torch.int64, device="cuda")
        got = quantize(x, fmt, gran, dim=dim, seed=seed, stream=2, backend="cuda")
        want = quantize_reference(x.cpu(), fmt, gran, dim=dim, seed=seed.cpu(), stream=2)
        assert_same(got, want)


def test_kernel_non_contiguous_input():
    x = adversarial((128, 96), torch.bfloat16, 5).cuda().t()
    assert_same(quantize(x, "e4m3", 32, dim=0, backend="cuda"),
                quantize_reference(x.cpu(), "e4m3", 32, dim=0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("ba,bb,shape", [(128, 128, (512, 384)), (32, 64, (256, 96)),
                                         (16, 16, (64, 48)), (8, 3, (24, 40)),
                                         (128, 1024, (2048, 256)), (128, 128, (1024, 640)),
                                         (64, 64, (512, 256)), (32, 32, (2048, 640))])
def test_pair_equals_two_references(ba, bb, shape, dtype):
    x = adversarial(shape, dtype, seed=ba + bb).cuda()
    seed = torch.tensor([9, 2], dtype=torch.int64, device="cuda")
    for fa, fb in [("e4m3", "e5m2"), ("e2m1:sr", "e3m2:sr"), ("e8m3", "e2m3:away")]:
        qa, qb = OperandQuant(fa, ba), OperandQuant(fb, bb, "pow2")
        a, b = quantize_pair(x, qa, qb, seed=seed, streams=(3, 4), backend="cuda")
        assert_same(a, quantize_reference(x.cpu(), fa, ba, 1, "fp32", seed.cpu(), 3))
        assert_same(b, quantize_reference(x.cpu(), fb, bb, 0, "pow2", seed.cpu(), 4))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_tiles_with_nan_inf_and_zero_lines(dtype):
    # whole rows and columns of NaN, of zeros, an Inf in a column: the absmax of a line of NaN is
    # that of zeros (scale 1); an Inf enters no absmax and saturates
    g = torch.Generator().manual_seed(3)
    x = torch.randn(256, 384, generator=g) * 3
    x[:, 5] = float("nan")
    x[7, :] = float("nan")
    x[:, 11] = 0.0
    x[20, :] = 0.0
    x[40, 9] = float("inf")
    x[41, 130] = -float("inf")
    x[:, 200] = float("nan")
    x[3, 200] = 2.0
    x = x.to(dtype).cuda()
    q = OperandQuant("e4m3", 128)
    a, b = quantize_pair(x, q, q, backend="cuda")
    assert_same(a, quantize_reference(x.cpu(), "e4m3", 128, 1))
    assert_same(b, quantize_reference(x.cpu(), "e4m3", 128, 0))
    assert_same(quantize(x, "e4m3", 64, dim=0, backend="cuda"),
                quantize_reference(x.cpu(), "e4m3", 64, 0))


def test_cuda_graph_capture():
    x = torch.randn(256, 512, device="cuda", dtype=torch.bfloat16)
    state = torch.tensor([5, 0], dtype=torch.int64, device="cuda")
    fmts = [("e4m3", "tensor", -1), ("e2m1:sr", 32, -1), ("e3m2", 128, 0), ("e5m2", "channel", 0)]

    def step():
        outs = [quantize(x, f, g, dim=d, seed=state, backend="cuda") for f, g, d in fmts]
        outs += list(quantize_pair(x, OperandQuant("e4m3", 128), OperandQuant("e4m3", 128),
                                   backend="cuda"))
        state[1:].add_(1)
        return outs

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outs = step()
    for _ in range(2):
        x.copy_(torch.randn_like(x) * 3)
        before = state.clone()
        graph.replay()
        torch.cuda.synchronize()
        assert state[1].item() == before[1].item() + 1
        for (f, g, d), out in zip(fmts, outs):
            assert_same(out, quantize_reference(x.cpu(), f, g, d, seed=before.cpu()))
        assert_same(outs[-2], quantize_reference(x.cpu(), "e4m3", 128, 1))
        assert_same(outs[-1], quantize_reference(x.cpu(), "e4m3", 128, 0))


def test_quant_linear_graph_capture_fwd_bwd():
    torch.manual_seed(0)
    cfg = LinearQuantConfig.from_spec("e4m3:sr", 32, "all")
    kw = dict(qconfig=cfg, backend="cuda", seed=3, device="cuda", dtype=torch.bfloat16)
    layer, twin = QuantLinear(256, 128, **kw), QuantLinear(256, 128, **kw)
    twin.load_state_dict(layer.state_dict())
    sx = torch.randn(64, 256, device="cuda", dtype=torch.bfloat16, requires_grad=True)
    sg = torch.randn(64, 128, device="cuda", dtype=torch.bfloat16)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            layer(sx).backward(sg)
    torch.cuda.current_stream().wait_stream(side)
    layer.weight.grad, sx.grad = None, None
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        y = layer(sx)
        y.backward(sg)
    twin.rng_state.copy_(layer.rng_state)
    graph.replay()
    x2 = sx.detach().clone().requires_grad_(True)
    y2 = twin(x2)
    y2.backward(sg)
    torch.cuda.synchronize()
    assert torch.equal(y, y2) and torch.equal(sx.grad, x2.grad)
    assert torch.equal(layer.weight.grad, twin.weight.grad)
    assert torch.equal(layer.rng_state, twin.rng_state)


def test_fake_impl_opcheck():
    from training.quant import kernel
    x = torch.randn(64, 128, device="cuda", dtype=torch.bfloat16)
    fmt = FPFormat(4, 3)
    args = (x, kernel.fmt_code(fmt), fmt.max_value, 32, -1, False, None, 0, False)
    torch.library.opcheck(kernel.fake_quant_op, args,
                          test_utils=("test_schema", "test_faketensor"))


def test_kernel_switch(fq_kernel):
    from training.quant import kernel

    assert kernel.kernel_name() == fq_kernel
    with pytest.raises(ValueError, match="kernel must be one of"):
        kernel.set_kernel("5")
    with pytest.raises(RuntimeError, match="kernel must be 'square' or 'generic'"):
        kernel.load_extension().set_kernel("tile")  # the extension checks too
    assert kernel.kernel_name() == fq_kernel  # unchanged by the refused calls


def kernel_names(fn):
    """Names of the CUDA kernels that ``fn()`` launches (torch profiler)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    torch.cuda.synchronize()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize()
    return {e.name for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA}


def test_square_kernel_runs_where_the_shape_tiles(fq_kernel):
    x = torch.randn(256, 384, device="cuda", dtype=torch.bfloat16)
    q = OperandQuant("e4m3", 128)
    for fn in (lambda: quantize(x, "e4m3", 128, dim=0, backend="cuda"),
               lambda: quantize_pair(x, q, q, backend="cuda")):
        names = " ".join(kernel_names(fn))
        assert ("square_kernel" in names) == (fq_kernel == "square"), names
        assert ("tile_kernel" in names) == (fq_kernel == "generic"), names
    # float32 has no square kernel: the generic tile kernel under either choice
    names = " ".join(kernel_names(lambda: quantize(x.float(), "e4m3", 128, dim=0,
                                                   backend="cuda")))
    assert "tile_kernel" in names and "square_kernel" not in names


FP32_MAX = torch.finfo(torch.float32).max


@pytest.mark.parametrize("shape,dim,gran", [((4, 64), -1, "tensor"), ((4, 64), -1, 8),
                                            ((4, 64), -1, "channel"), ((3, 3000), -1, "channel"),
                                            ((256, 64), 0, 128), ((6144, 16), 0, "channel"),
                                            ((30, 21), -1, 3), ((5, 7), 0, None)])
def test_float32_maximum_equals_reference(shape, dim, gran):
    # groups that hold +-FLT_MAX: 1 / S rounds up past the largest finite de-scale factor, which
    # the kernel must cap exactly as the reference does (finite output, same bits)
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(shape, generator=g)
    flat = x.view(-1)
    idx = torch.randperm(flat.numel(), generator=g)[: max(2, flat.numel() // 50)]
    flat[idx[::2]] = FP32_MAX
    flat[idx[1::2]] = -FP32_MAX
    flat[idx[:1]] = torch.nextafter(torch.tensor(FP32_MAX), torch.tensor(0.0))
    x = x.cuda()
    formats = [FPFormat(e, m, c) for e in (1, 2, 3, 4, 5, 8) for m in (0, 3, 7, 22)
               for c in ("finite", "ieee", "fn")
               if not (c == "ieee" and e < 2) and not (c == "fn" and e + m < 2)]
    for fmt in formats:
        for scale in ("fp32", "pow2"):
            got = quantize(x, fmt, gran, dim=dim, scale=scale, backend="cuda")
            want = quantize_reference(x.cpu(), fmt, gran, dim=dim, scale=scale)
            assert_same(got, want)
            assert torch.isfinite(got).all(), (fmt.name, scale)


def test_float32_maximum_pair_equals_reference():
    g = torch.Generator().manual_seed(8)
    x = torch.randn(256, 64, generator=g)
    x[3, 5], x[100, 17], x[200, 63] = FP32_MAX, -FP32_MAX, FP32_MAX
    x = x.cuda()
    for fmt in ("e3m4", "e2m1", "e5m2", "e8m3"):
        q = OperandQuant(fmt, 16)
        a, b = quantize_pair(x, q, q, backend="cuda")
        assert_same(a, quantize_reference(x.cpu(), fmt, 16, 1))
        assert_same(b, quantize_reference(x.cpu(), fmt, 16, 0))
        assert torch.isfinite(a).all() and torch.isfinite(b).all()
