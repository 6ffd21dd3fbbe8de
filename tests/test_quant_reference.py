"""Torch reference fake-quant against ml_dtypes, hand tables and float64 numpy oracles."""

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from quant_oracle import fq_oracle, grid_constants, random_float32, same_bits

from training.quant import FPFormat, quantize, quantize_reference
from training.quant.philox import philox4x32

FP32_MAX = float(np.finfo(np.float32).max)


def cast(x, fmt, **kw):
    """Plain cast (no scaling) through the reference; numpy float32 in and out."""
    t = torch.from_numpy(np.asarray(x, dtype=np.float32))
    return quantize_reference(t, fmt, None, **kw).numpy()


def probe_values(ml_dtype) -> np.ndarray:
    """Every finite value of an ml_dtypes type, every midpoint, its float32 neighbours, overflow."""
    nbits = 8 if "float8" in ml_dtype.__name__ else int(ml_dtype.__name__[5])
    codes = np.arange(2**nbits, dtype=np.uint8).view(ml_dtype).astype(np.float32)
    pos = np.unique(codes[np.isfinite(codes) & (codes >= 0)])
    mids = ((pos[:-1].astype(np.float64) + pos[1:]) / 2).astype(np.float32)
    top = np.float32(pos[-1] + (pos[-1] - pos[-2]) / 2)  # max + half an ulp: the overflow tie
    around = np.concatenate([mids, [top, 2 * pos[-1], 1e30]])
    vals = np.concatenate([pos, around, np.nextafter(around, np.float32(np.inf)),
                           np.nextafter(around, np.float32(0)), [np.inf]])
    return np.concatenate([vals, -vals]).astype(np.float32)


# ml_dtypes types whose semantics coincide with a spec format over all inputs (NaN excluded)
ML_EXACT = [
    (ml_dtypes.float4_e2m1fn, FPFormat(2, 1)),
    (ml_dtypes.float6_e2m3fn, FPFormat(2, 3)),
    (ml_dtypes.float6_e3m2fn, FPFormat(3, 2)),
    (ml_dtypes.float8_e4m3fn, FPFormat(4, 3, "fn", saturate=False)),
    (ml_dtypes.float8_e5m2, FPFormat(5, 2, "ieee", saturate=False)),
]


@pytest.mark.parametrize("ml_dtype,fmt", ML_EXACT, ids=lambda v: getattr(v, "__name__", ""))
def test_bit_exact_vs_ml_dtypes_probe_values(ml_dtype, fmt):
    x = probe_values(ml_dtype)
    ref = x.astype(ml_dtype).astype(np.float32)
    got = cast(x, fmt)
    bad = ~same_bits(ref, got)
    assert not bad.any(), (x[bad][:8], ref[bad][:8], got[bad][:8])


@pytest.mark.parametrize("ml_dtype,fmt", ML_EXACT, ids=lambda v: getattr(v, "__name__", ""))
def test_bit_exact_vs_ml_dtypes_random(ml_dtype, fmt):
    x = random_float32(200_000, seed=1)
    ref = x.astype(ml_dtype).astype(np.float32)
    assert same_bits(ref, cast(x, fmt)).all()


@pytest.mark.parametrize("ml_dtype,fmt", [(ml_dtypes.float8_e4m3fn, FPFormat(4, 3, "fn")),
                                          (ml_dtypes.float8_e5m2, FPFormat(5, 2, "ieee"))])
def test_saturating_fp8_matches_ml_dtypes_in_range_and_clamps(ml_dtype, fmt):
    x = probe_values(ml_dtype)
    x = x[np.isfinite(x)]
    ml_max = float(ml_dtypes.finfo(ml_dtype).max)
    ref = x.astype(ml_dtype).astype(np.float32)
    got = cast(x, fmt)
    inside = np.isfinite(ref)
    assert same_bits(ref[inside], got[inside]).all()
    assert (np.abs(got[~inside]) == ml_max).all()


def test_hand_table_e2m1_finite():
    x = [0.0, -0.0, 0.24, 0.25, 0.26, 0.75, 1.25, 1.75, 2.5, 3.5, 5.0, 6.9, 7.0, 1e9, np.inf,
         -np.inf, -2.5, 1e-45]
    want = [0.0, -0.0, 0.0, 0.0, 0.5, 1.0, 1.0, 2.0, 2.0, 4.0, 4.0, 6.0, 6.0, 6.0, 6.0, -6.0,
            -2.0, 0.0]
    got = cast(x, "e2m1")
    assert same_bits(got, want).all(), got
    assert np.signbit(got[1])


def test_hand_table_finite_vs_fn_max():
    assert cast([470.0, 500.0, 1e6], "e4m3").tolist() == [480.0, 480.0, 480.0]
    assert cast([470.0, 500.0, 1e6], "e4m3fn").tolist() == [448.0, 448.0, 448.0]
    assert cast([1e9], "e5m2").tolist() == [114688.0]
    assert cast([1e9], "e5m2ieee").tolist() == [57344.0]
    assert cast([2.0**-9, 2.0**-10, 2.0**-10 * 1.01], "e4m3").tolist() == [2.0**-9, 0.0, 2.0**-9]
    assert cast([2.0**-16 * 1.5, 2.0**-16 * 2.5], "e5m2").tolist() == [2.0**-15, 2.0**-15]


def test_m0_ties_go_to_significand_two():
    fmt = FPFormat(3, 0)  # grid 0, 0.25, 0.5, 1, 2, 4, 8, 16
    x = [0.125, 0.375, 0.75, 1.5, 3.0, 6.0, 12.0, 24.0, 1.49, 0.126]
    assert cast(x, fmt).tolist() == [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 16.0, 1.0, 0.25]
    e8m0 = np.array([1.5, 3.0, 6.0, 0.75], np.float32)  # float8_e8m0fnu rounds ties up
    want = e8m0.astype(ml_dtypes.float8_e8m0fnu).astype(np.float32)
    assert same_bits(cast(e8m0, FPFormat(8, 0)), want).all()


def test_nan_and_inf_policy():
    x = [np.nan, np.inf, -np.inf]
    got = cast(x, "e4m3")
    assert np.isnan(got[0]) and got[1] == 480.0 and got[2] == -480.0
    got = cast(x, FPFormat(4, 3, saturate=False))
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == -np.inf
    assert np.isnan(cast([1e6], FPFormat(4, 3, "fn", saturate=False))[0])


def test_e8_saturates_at_float32_grid_max():
    got = cast([3.4e38, FP32_MAX, np.inf], FPFormat(8, 3))
    assert (got == np.float32(2.0**127 * 1.875)).all()
    assert cast([FP32_MAX], FPFormat(8, 7)).tolist() == [2.0**127 * (2 - 2.0**-7)]


def test_flush_subnormals():
    fmt = FPFormat(4, 3, subnormals=False)
    assert cast([2.0**-7, -2.0**-7, 2.0**-6, 2.0**-6 * 0.999], fmt).tolist() == \
        [0.0, -0.0, 2.0**-6, 0.0]


EM_GRID = [(e, m) for e in range(1, 9) for m in range(0, 11)]


@pytest.mark.slow
@pytest.mark.parametrize("ebits,mbits", EM_GRID)
def test_oracle_all_formats_random(ebits, mbits):
    x = random_float32(40_000, seed=ebits * 100 + mbits)
    x = np.concatenate([x, [np.inf, -np.inf, np.nan]]).astype(np.float32)
    assert same_bits(cast(x, FPFormat(ebits, mbits)), fq_oracle(x, ebits, mbits)).all()


@pytest.mark.parametrize("ebits,mbits", [(1, 0), (1, 3), (2, 0), (3, 5), (4, 7), (6, 9), (8, 0),
                                         (8, 10), (5, 10), (7, 4)])
@pytest.mark.parametrize("rounding,oracle_rounding",
                         [("nearest_even", "rne"), ("half_away", "away")])
def test_oracle_every_midpoint(ebits, mbits, rounding, oracle_rounding):
    emin, maxv = grid_constants(ebits, mbits)
    emax = int(np.floor(np.log2(maxv)))
    # all grid points of binades emin-1 (subnormals) .. emax, capped at 4096 per binade
    pts = [0.0]
    for e in range(max(emin, -140), emax + 1):
        k = np.arange(0, 2**mbits, max(1, 2**mbits // 4096))
        pts.extend((2.0**e * (1 + k / 2.0**mbits)).tolist())
    k = np.arange(1, 2**mbits)
    pts.extend((2.0**emin * k / 2.0**mbits).tolist())
    pts = np.unique(np.array(pts, dtype=np.float64))
    pts = pts[pts <= maxv]
    mids = (pts[:-1] + pts[1:]) / 2
    x = np.concatenate([pts, mids, [min(maxv * 1.01, FP32_MAX)]]).astype(np.float32)
    x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(0))])
    x = np.concatenate([x, -x])
    got = cast(x, FPFormat(ebits, mbits, rounding=rounding))
    assert same_bits(got, fq_oracle(x, ebits, mbits, rounding=oracle_rounding)).all()


def test_half_away_ties():
    fmt = FPFormat(2, 1, rounding="half_away")
    assert cast([0.25, 0.75, 1.25, 2.5, 3.5, 5.0, -2.5], fmt).tolist() == \
        [0.5, 1.0, 1.5, 3.0, 4.0, 6.0, -3.0]


finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(ebits=st.integers(1, 8), mbits=st.integers(0, 10),
       xs=st.lists(finite32, min_size=1, max_size=64))
def test_properties_arbitrary_formats(ebits, mbits, xs):
    fmt = FPFormat(ebits, mbits)
    x = np.array(xs, dtype=np.float32)
    q = cast(x, fmt)
    assert same_bits(cast(q, fmt), q).all()                       # idempotent
    assert same_bits(cast(-x, fmt), -q).all()                     # sign symmetric
    order = np.argsort(x, kind="stable")
    assert (np.diff(q[order].astype(np.float64)) >= 0).all()      # monotone
    a = np.abs(x.astype(np.float64))
    inside = a <= fmt.max_value
    _, k = np.frexp(a)
    ulp = np.ldexp(1.0, np.maximum(k - 1, fmt.emin) - mbits)
    err = np.abs(q.astype(np.float64) - x)
    assert (err[inside] <= ulp[inside] / 2).all()                 # within half an ulp


def numpy_groups(x, fmt_args, group_index_fn, scale="fp32"):
    """Independent numpy fake-quant: per-group absmax, fp32 scale, float64 oracle rounding."""
    ebits, mbits = fmt_args
    _, maxv = grid_constants(ebits, mbits)
    out = np.empty_like(x)
    for idx in group_index_fn(x.shape):
        g = x[idx]
        a = np.abs(g[np.isfinite(g)]).max(initial=0.0)
        if a == 0:
            s = np.float32(1)
        elif scale == "fp32":
            s = np.minimum(np.float32(maxv) / np.float32(a), np.float32(FP32_MAX))
        else:
            _, e = np.frexp(np.float64(a))
            s = np.float32(2.0 ** np.clip(int(np.floor(np.log2(maxv))) - (e - 1), -126, 127))
        y = (g * s).astype(np.float32)
        out[idx] = (fq_oracle(y, ebits, mbits) * (np.float32(1) / s)).astype(np.float32)
    return out


def blocks(dim, b):
    def index(shape):
        other = [range(n) for i, n in enumerate(shape) if i != dim]
        for rest in np.ndindex(*[len(r) for r in other]):
            for start in range(0, shape[dim], b):
                idx = list(rest)
                idx.insert(dim, slice(start, start + b))
                yield tuple(idx)
    return index


@pytest.mark.parametrize("shape,dim,gran", [((6, 32), -1, 8), ((6, 32), 0, 3), ((4, 6, 8), 1, 2),
                                            ((6, 32), -1, "channel"), ((6, 32), 0, "channel"),
                                            ((6, 32), 1, "tensor"), ((5, 7), -1, 7)])
@pytest.mark.parametrize("scale", ["fp32", "pow2"])
def test_granularities_match_numpy(shape, dim, gran, scale):
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(shape) * np.exp(rng.normal(0, 3, shape))).astype(np.float32)
    nd = len(shape)
    d = dim % nd
    if gran == "tensor":
        def index(s):
            yield tuple(slice(None) for _ in s)
    elif gran == "channel":
        index = blocks(d, shape[d])
    else:
        index = blocks(d, gran)
    want = numpy_groups(x, (4, 3), index, scale)
    got = quantize_reference(torch.from_numpy(x), "e4m3", gran, dim=dim, scale=scale).numpy()
    assert same_bits(got, want).all()


def test_group_max_maps_to_format_max():
    x = torch.randn(8, 64)
    q = quantize_reference(x, "e2m1", 16)
    amax = x.abs().reshape(8, 4, 16).amax(-1)
    qmax = q.abs().reshape(8, 4, 16).amax(-1)
    torch.testing.assert_close(qmax, amax, rtol=1e-6, atol=0)


def test_all_zero_groups_and_non_finite():
    x = torch.zeros(4, 16)
    x[1, :8] = torch.randn(8)
    x[2, 3] = float("nan")
    x[3, 5] = float("inf")
    q = quantize_reference(x, "e4m3", 8)
    assert torch.equal(q[0], torch.zeros(16))
    assert torch.isnan(q[2, 3]) and torch.isnan(q).sum() == 1
    assert torch.equal(q[3, 8:], torch.zeros(8)) and q[3, 5] == 480.0  # all-zero finite group


def test_block_must_divide_dim():
    with pytest.raises(ValueError, match="granularity"):
        quantize_reference(torch.randn(4, 30), "e4m3", 8)
    with pytest.raises(ValueError, match="granularity"):
        quantize(torch.randn(4, 30), "e4m3", 8, backend="reference")
    with pytest.raises(ValueError, match="granularity"):
        quantize_reference(torch.randn(4, 30), "e4m3", 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_dtypes(dtype):
    x = torch.randn(4, 64).to(dtype)
    q = quantize_reference(x, "e4m3", 32)
    assert q.dtype == dtype
    want = quantize_reference(x.float(), "e4m3", 32).to(dtype)
    assert torch.equal(q, want)
    if dtype == torch.bfloat16:
        assert quantize_reference(x, "e5m9", 32).dtype == torch.float32
        assert quantize_reference(x, "e4m7", 32).dtype == torch.bfloat16


def test_philox_known_answers():
    # Random123 known-answer vectors for philox4x32-10
    m = 0xFFFFFFFF
    cases = [((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
             ((m, m, m, m), (m, m), (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
             ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
              (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1))]
    for ctr, key, want in cases:
        assert tuple(int(v) for v in philox4x32(ctr, key)) == want


@pytest.mark.parametrize("value", [0.3, 2.7, -4.9, 0.26, 2.0**-12 * 1.3])
def test_stochastic_rounding_unbiased(value):
    fmt = FPFormat(4, 3, rounding="stochastic")
    x = torch.full((200_000,), value)
    q = quantize_reference(x, fmt, None, seed=7).double()
    lo, hi = q.min().item(), q.max().item()
    assert lo <= value <= hi and hi > lo  # two neighbours
    se = (hi - lo) / 2 / np.sqrt(x.numel())
    assert abs(q.mean().item() - value) < 5 * se


def test_stochastic_reproducible_and_seeded():
    fmt = "e2m1:sr"
    x = torch.randn(64, 32)
    a = quantize_reference(x, fmt, 16, seed=1)
    assert torch.equal(a, quantize_reference(x, fmt, 16, seed=1))
    assert not torch.equal(a, quantize_reference(x, fmt, 16, seed=2))
    assert not torch.equal(a, quantize_reference(x, fmt, 16, seed=1, stream=3))
    state = torch.tensor([1, 0])
    assert torch.equal(a, quantize_reference(x, fmt, 16, seed=state))
    assert not torch.equal(a, quantize_reference(x, fmt, 16, seed=torch.tensor([1, 1])))
    with pytest.raises(ValueError, match="seed"):
        quantize_reference(x, fmt, 16)


def test_kernel_without_cuda_is_a_clear_error():
    x = torch.randn(4, 16)
    with pytest.raises(ValueError, match="CUDA tensor"):
        quantize(x, "e4m3", 8, backend="cuda")
    with pytest.raises(ValueError, match="backend"):
        quantize(x, "e4m3", 8, backend="triton")
    assert torch.equal(quantize(x, "e4m3", 8), quantize_reference(x, "e4m3", 8))
    if not torch.cuda.is_available():
        from training.quant.kernel import load_extension
        with pytest.raises(RuntimeError, match="CUDA"):
            load_extension()


def test_kernel_choice_is_checked_before_it_reaches_the_kernel():
    from training.quant.kernel import KERNELS, check_kernel, kernel_from_env

    assert KERNELS == ("square", "generic")
    assert kernel_from_env({}) == "square"
    assert kernel_from_env({"BAYESFP_FQ_KERNEL": ""}) == "square"
    assert kernel_from_env({"BAYESFP_FQ_KERNEL": " generic "}) == "generic"
    assert kernel_from_env({"BAYESFP_FQ_KERNEL": "square"}) == "square"
    for bad in ("5", "0", "Square", "tile", 1):
        with pytest.raises(ValueError, match="kernel must be one of"):
            check_kernel(bad)
    with pytest.raises(ValueError, match="BAYESFP_FQ_KERNEL"):
        kernel_from_env({"BAYESFP_FQ_KERNEL": "5"})


def all_formats():
    """Every format of the spec: E 1..8, M 0..22, each convention that allows it."""
    out = []
    for ebits in range(1, 9):
        for mbits in range(0, 23):
            for convention in ("finite", "ieee", "fn"):
                if (convention == "ieee" and ebits < 2) or (convention == "fn" and
                                                            ebits + mbits < 2):
                    continue
                out.append(FPFormat(ebits, mbits, convention))
    return out


def largest_finite_factor(maxv):
    """The largest float32 f with float32(maxv * f) finite, by stepping float32 values in numpy."""
    m = np.float32(maxv)
    f = np.float32(FP32_MAX) / m
    with np.errstate(over="ignore"):
        while np.isinf(m * f):
            f = np.nextafter(f, np.float32(0))
        while np.isfinite(m * np.nextafter(f, np.float32(np.inf))):
            f = np.nextafter(f, np.float32(np.inf))
    return f


@pytest.mark.parametrize("gran,dim", [("tensor", -1), ("channel", -1), (2, -1), ("channel", 0)])
def test_fp32_scale_keeps_the_float32_maximum_finite(gran, dim):
    # each group holds +-FLT_MAX and one small value. The de-scale factor is 1 / S capped at the
    # largest float32 that keeps max_value finite (1 / S rounds up past it for most formats):
    # the group max comes back finite, within an ulp or two of FLT_MAX
    x = np.array([[FP32_MAX, 1.0], [-FP32_MAX, 0.5]], dtype=np.float32)
    if dim == 0:
        x = np.ascontiguousarray(x.T)
    formats = all_formats()
    assert len(formats) == 528
    overflowed = 0
    for fmt in formats:
        got = quantize_reference(torch.from_numpy(x), fmt, gran, dim=dim, scale="fp32").numpy()
        assert np.isfinite(got).all(), fmt.name
        emin, maxv = grid_constants(fmt.ebits, fmt.mbits, fmt.convention)
        s = np.float32(maxv) / np.float32(FP32_MAX)  # the scale of every group here
        with np.errstate(over="ignore"):
            overflowed += bool(np.isinf(np.float32(maxv) * (np.float32(1) / s)))
        inv = min(np.float32(1) / s, largest_finite_factor(maxv))
        big = fq_oracle(np.float32(FP32_MAX) * s, fmt.ebits, fmt.mbits, fmt.convention) * inv
        assert np.float32(FP32_MAX) * np.float32(1 - 2.0**-22) <= big <= np.float32(FP32_MAX)
        small = fq_oracle(np.float32([1.0, 0.5]) * s, fmt.ebits, fmt.mbits, fmt.convention) * inv
        flat = got if dim == -1 else got.T
        assert same_bits(flat[:, 0], [big, -big]).all(), fmt.name
        assert same_bits(flat[:, 1], small).all(), fmt.name
    assert overflowed > 300  # the uncapped de-scale factor overflows for most formats
