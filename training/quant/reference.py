"""Pure-torch fake-quant: the definition of the semantics, on CPU and GPU.

``x_q = Q(x * S) * min(1 / S, L)`` computed in float32, where ``S`` is one scale per group, ``Q``
rounds a float32 value onto the ExMy grid of an :class:`~training.quant.spec.FPFormat` and ``L``
caps the de-scale factor (below). Every step is a correctly rounded float32 operation or exact
integer bit manipulation, so the CUDA kernel (``csrc/format.cuh``, ``csrc/kernels.cuh``)
performs the same operations in the same order and must agree bit for bit.

Scale (per group, from the absmax ``a`` of its finite elements):

- ``"fp32"``: ``S = min(max_value / a, FLT_MAX)`` (IEEE float32 division);
- ``"pow2"``: ``S = 2**k``, ``k = clamp(max_exponent - floor(log2 a), -126, 127)`` (the OCP MX
  rule: the group max lands in the top binade ``[2**emax, 2**(emax+1))`` and may saturate);
- an all-zero (or all non-finite) group gets ``S = 1``.

De-scaling multiplies by the float32 reciprocal ``1 / S`` (one IEEE division per group, not per
element: the kernel stays memory-bound). It equals a division by ``S`` exactly for power-of-two
scales and to within one float32 ulp otherwise, below the output dtype's rounding. For a group
whose absmax is within an ulp of FLT_MAX, ``1 / S`` can round up far enough that
``max_value * (1 / S)`` overflows to Inf; the factor is therefore capped at
``L = fmt.descale_limit`` (:class:`~training.quant.spec.FPFormat`), the largest float32 whose
product with ``max_value`` is finite, so finite input never de-scales to Inf (the cap changes
no other group: any larger factor overflows).
"""

import torch

from training.quant.config import SCALE_MODES, check_granularity
from training.quant.philox import random_bits, seed_state
from training.quant.spec import FP32_MAX, FPFormat, parse_format

FLOAT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def output_dtype(dtype: torch.dtype, fmt: FPFormat) -> torch.dtype:
    """Output dtype of fake-quant: the input dtype, except float32 for bfloat16 with M > 7."""
    if dtype not in FLOAT_DTYPES:
        raise ValueError(f"x: dtype must be float32, bfloat16 or float16, got {dtype}")
    if dtype == torch.bfloat16 and fmt.mbits > 7:
        return torch.float32
    return dtype


def _pow2(k: int) -> float:
    assert -126 <= k <= 127
    return 2.0**k


def round_to_grid(y: torch.Tensor, fmt: FPFormat, rbits: torch.Tensor | None = None):
    """Round float32 values onto the grid of ``fmt`` (no scaling).

    Parameters
    ----------
    y : torch.Tensor
        float32, any shape.
    fmt : FPFormat
    rbits : torch.Tensor, optional
        int64 random words in [0, 2**32), shape of ``y``; required for stochastic rounding.

    Returns
    -------
    torch.Tensor
        float32, shape of ``y``: values of the grid, +-``max_value`` on saturation, Inf/NaN as
        the spec says for overflow and NaN inputs.
    """
    assert y.dtype == torch.float32
    m, emin = fmt.mbits, fmt.emin
    u = y.view(torch.int32) & 0x7FFFFFFF
    e = (u >> 23) - 127
    sub = e < emin

    # Normal range: integer rounding of the float32 bit pattern at bit sh = 23 - M.
    sh = 23 - m
    mask = (1 << sh) - 1
    if fmt.rounding == "nearest_even":
        lsb = 1 if m == 0 else (u >> sh) & 1
        inc = (1 << (sh - 1)) - 1 + lsb
    elif fmt.rounding == "half_away":
        inc = 1 << (sh - 1)
    else:
        inc = (rbits & mask).to(torch.int32)
    qn = ((u + inc) & ~mask).view(torch.float32)

    # Subnormal range: fixed quantum 2**(emin - M); t counts quanta.
    a = (u.view(torch.float32) * _pow2(-emin)) * _pow2(m)
    if not fmt.subnormals:
        r = torch.zeros_like(a)
    elif fmt.rounding == "nearest_even":
        r = torch.round(a)
    else:
        fl = torch.floor(a)
        frac = a - fl
        if fmt.rounding == "half_away":
            r = fl + (frac >= 0.5).float()
        else:
            uniform = (rbits >> 8).float() * 2.0**-24
            r = fl + (frac > uniform).float()
    qs = (r * _pow2(-m)) * _pow2(emin)

    q = torch.where(sub, qs, qn)
    maxv = fmt.max_value
    if fmt.saturate:
        over = torch.tensor(maxv, dtype=torch.float32, device=y.device)
    else:
        over = torch.tensor(float("nan") if fmt.convention == "fn" else float("inf"),
                            dtype=torch.float32, device=y.device)
    q = torch.where(q > maxv, over, q)
    q = torch.copysign(q, y)
    return torch.where(torch.isnan(y), y, q)


def finite_abs(x: torch.Tensor) -> torch.Tensor:
    """``|x|`` with non-finite elements replaced by 0 (they do not enter a group's absmax)."""
    a = x.abs()
    return torch.where(torch.isfinite(a), a, torch.zeros_like(a))


def group_absmax(xf: torch.Tensor, granularity, dim: int) -> torch.Tensor:
    """Absmax of the finite elements of each group, broadcast back to the shape of ``xf``.

    Parameters
    ----------
    xf : torch.Tensor
        float32.
    granularity : "tensor", "channel" or int
        Whole tensor; all elements along ``dim`` for each index of the other dims; or blocks of
        B consecutive elements along ``dim``.
    dim : int
        Reduction dim of the GEMM operand.
    """
    a = finite_abs(xf)
    if granularity == "tensor":
        return a.amax().expand(xf.shape)
    if granularity == "channel":
        return a.amax(dim=dim, keepdim=True).expand(xf.shape)
    n = xf.shape[dim]
    if n % granularity:
        raise ValueError(f"granularity: block size {granularity} does not divide the size {n} "
                         f"of dim {dim}")
    am = a.movedim(dim, -1)
    lead = am.shape[:-1]
    blocks = am.reshape(*lead, n // granularity, granularity).amax(dim=-1, keepdim=True)
    blocks = blocks.expand(*lead, n // granularity, granularity).reshape(*lead, n)
    return blocks.movedim(-1, dim)


def scale_from_absmax(amax: torch.Tensor, fmt: FPFormat, scale: str = "fp32") -> torch.Tensor:
    """Per-group scale ``S`` (float32) from the group absmax (see the module docstring)."""
    one = torch.ones_like(amax)
    if scale == "fp32":
        maxv = torch.full_like(amax, fmt.max_value)
        s = torch.clamp(maxv / amax, max=FP32_MAX)  # tensor / tensor: IEEE division
    else:
        _, exp = torch.frexp(amax)  # amax = m * 2**exp, m in [0.5, 1)
        k = torch.clamp(fmt.max_exponent - (exp - 1), -126, 127)
        s = ((k + 127) << 23).to(torch.int32).view(torch.float32)
    return torch.where(amax > 0, s, one)


def quantize_reference(x: torch.Tensor, fmt, granularity, dim: int = -1, scale: str = "fp32",
                       seed=None, stream: int = 0) -> torch.Tensor:
    """Fake-quantize ``x``: scale each group, round onto the ExMy grid, de-scale.

    ``x_q = Q(x * S) * (1 / S)`` in float32, rounded to the output dtype.

    Parameters
    ----------
    x : torch.Tensor
        float32, bfloat16 or float16, any shape, CPU or GPU.
    fmt : FPFormat or str
        Target format, e.g. ``"e4m3"``.
    granularity : "tensor", "channel", int or None
        Scaling groups: one per tensor, one per row along ``dim``, blocks of B consecutive
        elements along ``dim`` (B must divide ``x.shape[dim]``), or None for a plain cast
        (``S = 1``).
    dim : int
        The reduction dim (ignored for ``"tensor"`` and None).
    scale : {"fp32", "pow2"}
        Scale rule.
    seed : int or torch.Tensor, optional
        Required for stochastic rounding: an int, or an int64 ``[seed, step]`` tensor.
    stream : int
        Random stream 0..15, to decorrelate operands that share a seed state.

    Returns
    -------
    torch.Tensor
        Shape of ``x``; dtype of ``x`` (float32 for bfloat16 input with M > 7).
    """
    fmt = parse_format(fmt)
    check_granularity(granularity)
    if scale not in SCALE_MODES:
        raise ValueError(f"scale must be one of {SCALE_MODES}, got {scale!r}")
    out_dtype = output_dtype(x.dtype, fmt)
    if x.dim() > 0:
        dim = _check_dim(dim, x.dim())
    xf = x.float()
    if granularity is None:
        s = torch.ones((), dtype=torch.float32, device=x.device)
    else:
        if x.dim() == 0:
            xf = xf.reshape(1)
        s = scale_from_absmax(group_absmax(xf, granularity, dim if x.dim() else 0), fmt, scale)
    rbits = None
    if fmt.rounding == "stochastic":
        if seed is None:
            raise ValueError("seed: stochastic rounding needs a seed (int or [seed, step] tensor)")
        state = seed_state(seed, x.device)
        rbits = random_bits(xf.numel(), state, stream).reshape(xf.shape)
    q = round_to_grid(xf * s, fmt, rbits)
    inv = torch.clamp(torch.ones_like(s) / s, max=fmt.descale_limit)  # once per group
    return (q * inv).reshape(x.shape).to(out_dtype)


def _check_dim(dim: int, ndim: int) -> int:
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim {dim} is out of range for a tensor with {ndim} dims")
    return dim % ndim
