"""Front functions: validate arguments, then run the CUDA kernel or the torch reference."""

import warnings

import torch

from training.quant import kernel
from training.quant.config import SCALE_MODES, OperandQuant, check_granularity
from training.quant.philox import seed_state
from training.quant.reference import output_dtype, quantize_reference
from training.quant.spec import parse_format

BACKENDS = ("auto", "cuda", "reference")
_AUTO_FAILED = False


def _use_cuda(x: torch.Tensor, backend: str) -> bool:
    global _AUTO_FAILED
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "reference":
        return False
    if backend == "cuda":
        if not x.is_cuda:
            raise ValueError("backend 'cuda' needs a CUDA tensor; use 'reference' or 'auto'")
        kernel.load_extension()
        return True
    if not x.is_cuda or _AUTO_FAILED:
        return False
    try:
        kernel.load_extension()
    except Exception as err:  # a missing toolchain must not stop training on the reference
        _AUTO_FAILED = True
        warnings.warn(f"fake-quant CUDA kernel unavailable ({err}); using the torch reference",
                      RuntimeWarning, stacklevel=3)
        return False
    return True


def _check_block(x: torch.Tensor, granularity, dim: int):
    if isinstance(granularity, int) and x.dim() > 0:
        n = x.shape[dim]
        if n % granularity:
            raise ValueError(f"granularity: block size {granularity} does not divide the size "
                             f"{n} of dim {dim}")


def _seed_tensor(seed, x, fmt):
    if fmt.rounding != "stochastic":
        return None
    if seed is None:
        raise ValueError("seed: stochastic rounding needs a seed (int or [seed, step] tensor)")
    return seed_state(seed, x.device).contiguous()


def quantize(x: torch.Tensor, fmt, granularity, dim: int = -1, scale: str = "fp32", seed=None,
             stream: int = 0, backend: str = "auto") -> torch.Tensor:
    """Fake-quantize ``x`` (semantics of :func:`~training.quant.reference.quantize_reference`).

    Parameters
    ----------
    x : torch.Tensor
        float32, bfloat16 or float16.
    fmt : FPFormat or str
    granularity : "tensor", "channel", int or None
    dim : int
        Reduction dim.
    scale : {"fp32", "pow2"}
    seed : int or torch.Tensor, optional
        For stochastic rounding. Inside CUDA-graph capture pass an int64 ``[seed, step]`` CUDA
        tensor (an int seed is copied to the device on every call).
    stream : int
        Random stream 0..15.
    backend : {"auto", "cuda", "reference"}
        ``auto`` runs the kernel for CUDA tensors when it builds, the reference otherwise.

    Returns
    -------
    torch.Tensor
        Shape of ``x``, dtype of ``x`` (float32 for bfloat16 with M > 7), contiguous.
    """
    fmt = parse_format(fmt)
    check_granularity(granularity)
    if scale not in SCALE_MODES:
        raise ValueError(f"scale must be one of {SCALE_MODES}, got {scale!r}")
    if x.dim() > 0 and not -x.dim() <= dim < x.dim():
        raise ValueError(f"dim {dim} is out of range for a tensor with {x.dim()} dims")
    if not 0 <= stream < 16:
        raise ValueError(f"stream must be in 0..15, got {stream}")
    out_dtype = output_dtype(x.dtype, fmt)
    _check_block(x, granularity, dim)
    if not _use_cuda(x, backend):
        return quantize_reference(x, fmt, granularity, dim, scale, seed, stream)
    return kernel.fake_quant_op(x, kernel.fmt_code(fmt), fmt.max_value,
                                kernel.granularity_code(granularity), dim, scale == "pow2",
                                _seed_tensor(seed, x, fmt), stream,
                                out_dtype == torch.float32 and x.dtype != torch.float32)


def quantize_operand(x: torch.Tensor, q: OperandQuant | None, dim: int, seed=None,
                     stream: int = 0, backend: str = "auto") -> torch.Tensor:
    """Fake-quantize a GEMM operand with its :class:`OperandQuant`; ``None`` returns ``x``."""
    if q is None:
        return x
    return quantize(x, q.fmt, q.granularity, dim, q.scale, seed, stream, backend)


def quantize_pair(x: torch.Tensor, qa: OperandQuant | None, qb: OperandQuant | None, seed=None,
                  streams=(0, 1), backend: str = "auto"):
    """Fake-quantize a 2-D ``x`` twice: along dim 1 with ``qa`` and along dim 0 with ``qb``.

    When both are block-wise and the kernel runs, ``x`` is read once (one tile kernel writes both
    results). Identical deterministic tensor-wise configs share one result.

    Returns
    -------
    tuple of torch.Tensor
        ``(x_a, x_b)``; an operand whose config is None is ``x`` itself.
    """
    assert x.dim() == 2
    if qa is None or qb is None:
        return (quantize_operand(x, qa, 1, seed, streams[0], backend),
                quantize_operand(x, qb, 0, seed, streams[1], backend))
    if (qa == qb and qa.granularity == "tensor" and qa.fmt.rounding != "stochastic"):
        xa = quantize_operand(x, qa, 1, seed, streams[0], backend)
        return xa, xa
    both_blocks = isinstance(qa.granularity, int) and isinstance(qb.granularity, int)
    if both_blocks and _use_cuda(x, backend):
        _check_block(x, qa.granularity, 1)
        _check_block(x, qb.granularity, 0)
        da, db = output_dtype(x.dtype, qa.fmt), output_dtype(x.dtype, qb.fmt)
        if da == db:
            return kernel.fake_quant_pair_op(
                x, kernel.fmt_code(qa.fmt), qa.fmt.max_value, qa.granularity, qa.scale == "pow2",
                streams[0], kernel.fmt_code(qb.fmt), qb.fmt.max_value, qb.granularity,
                qb.scale == "pow2", streams[1], _pair_seed(seed, x, qa, qb),
                da == torch.float32 and x.dtype != torch.float32)
    return (quantize_operand(x, qa, 1, seed, streams[0], backend),
            quantize_operand(x, qb, 0, seed, streams[1], backend))


def _pair_seed(seed, x, qa, qb):
    if "stochastic" not in (qa.fmt.rounding, qb.fmt.rounding):
        return None
    if seed is None:
        raise ValueError("seed: stochastic rounding needs a seed (int or [seed, step] tensor)")
    return seed_state(seed, x.device).contiguous()
