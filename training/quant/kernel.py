"""The CUDA fake-quant kernel: lazy JIT build and ``torch.library`` custom ops.

Nothing is compiled at import. The first CUDA call builds ``csrc/*.cu`` with
``torch.utils.cpp_extension.load`` (ninja, ``-O3 --fmad=false``, no fast-math) into a build
directory of the project, ``<repo>/.torch_extensions/<name>`` (or ``$BAYESFP_EXTENSIONS_DIR``),
and later processes load the cached build. A build killed half-way leaves torch's ``lock`` file
behind, which would make every later load wait forever; the build therefore runs under an outer
``fcntl.flock`` and removes a stale ``lock`` while holding it. Set ``TORCH_CUDA_ARCH_LIST`` (e.g.
``9.0``) to compile for one architecture only.

Two kernel sets compute the same values (``csrc/launch.cuh``): ``square`` (the default), whose
``square_kernel`` takes block-wise column groups and pairs of 2-D 16-bit tensors whose shape
tiles, and ``generic``, the kernels that take every other shape and, chosen, those too.
:func:`set_kernel` picks one for the process; ``$BAYESFP_FQ_KERNEL`` (``square`` or ``generic``)
sets it when the extension loads.

The ops ``bayesfp::fake_quant`` and ``bayesfp::fake_quant_pair`` have fake implementations, so
they trace under ``torch.compile`` and can be captured in CUDA graphs (no host syncs; scratch
memory comes from the caching allocator).
"""

import fcntl
import os
import re
from pathlib import Path
from typing import Optional

import torch

from training.quant.spec import ROUNDINGS, FPFormat

CSRC = Path(__file__).resolve().parent / "csrc"
SOURCES = ("bindings.cpp", "fakequant.cu", "fq_f32.cu", "fq_f16.cu", "fq_bf16.cu", "fq_bf16_f32.cu")
KERNELS = ("square", "generic")
KERNEL_ENV = "BAYESFP_FQ_KERNEL"
NVCC_FLAGS = ("-O3", "--fmad=false", "-std=c++17")
_EXTENSION = None


def build_directory() -> Path:
    """Where the extension is built and cached (one folder per torch / CUDA version)."""
    root = os.environ.get("BAYESFP_EXTENSIONS_DIR")
    base = Path(root) if root else Path(__file__).resolve().parents[2] / ".torch_extensions"
    tag = re.sub(r"[^A-Za-z0-9]+", "_", f"torch{torch.__version__}_cu{torch.version.cuda}")
    return base / f"bayesfp_fakequant_{tag}"


def cuda_available() -> bool:
    """Whether a CUDA device is present (the kernel may still fail to build)."""
    return torch.cuda.is_available()


def load_extension(verbose: bool = False):
    """Build (first time) and load the CUDA extension; cached for the process.

    Raises
    ------
    RuntimeError
        Without a CUDA device or CUDA toolchain.
    ValueError
        When ``$BAYESFP_FQ_KERNEL`` names no kernel set.
    """
    global _EXTENSION
    if _EXTENSION is not None:
        return _EXTENSION
    if not torch.cuda.is_available() or torch.version.cuda is None:
        raise RuntimeError("the fake-quant CUDA kernel needs a CUDA device and a CUDA build of "
                           "torch; use backend='reference' on this machine")
    from torch.utils.cpp_extension import load

    choice = kernel_from_env(os.environ)
    build_dir = build_directory()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir.with_name(build_dir.name + ".flock"), "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        try:
            stale = build_dir / "lock"
            if stale.exists():  # left by a build that was killed: nobody else holds our flock
                stale.unlink()
            _EXTENSION = load(
                name="bayesfp_fakequant",
                sources=[str(CSRC / s) for s in SOURCES],
                extra_cflags=["-O3", "-std=c++17"],
                extra_cuda_cflags=list(NVCC_FLAGS),
                build_directory=str(build_dir),
                verbose=verbose,
            )
        finally:
            fcntl.flock(guard, fcntl.LOCK_UN)
    _EXTENSION.set_kernel(choice)
    return _EXTENSION


def kernel_from_env(environ) -> str:
    """The kernel set named by ``$BAYESFP_FQ_KERNEL`` in ``environ``: unset or empty is ``square``.

    Raises
    ------
    ValueError
        For a name other than those of :data:`KERNELS`.
    """
    return check_kernel(environ.get(KERNEL_ENV, "").strip() or KERNELS[0])


def check_kernel(name) -> str:
    """``name`` if it is one of :data:`KERNELS`, else a ValueError."""
    if name not in KERNELS:
        raise ValueError(f"kernel must be one of {KERNELS}, got {name!r} "
                         f"(${KERNEL_ENV} or set_kernel)")
    return name


def set_kernel(name: str) -> None:
    """Use the kernel set ``name`` (``square`` or ``generic``) for every later launch.

    Both compute the same values; graphs captured before keep the kernels they were captured
    with.
    """
    load_extension().set_kernel(check_kernel(name))


def kernel_name() -> str:
    """The kernel set in use, ``square`` or ``generic``."""
    return str(load_extension().get_kernel())


def fmt_code(fmt: FPFormat) -> list:
    """The integer description of a format that the kernel reads."""
    return [fmt.mbits, fmt.emin, fmt.max_exponent, ROUNDINGS.index(fmt.rounding),
            int(fmt.subnormals), int(fmt.saturate), int(fmt.convention == "fn")]


def granularity_code(granularity) -> int:
    """0 for None (no scaling), -1 tensor, -2 channel, B for blocks."""
    return {None: 0, "tensor": -1, "channel": -2}.get(granularity, granularity)


@torch.library.custom_op("bayesfp::fake_quant", mutates_args=())
def fake_quant_op(x: torch.Tensor, code: list[int], maxv: float, granularity: int, dim: int,
                  pow2: bool, seed: Optional[torch.Tensor], stream: int,
                  out_fp32: bool) -> torch.Tensor:
    """CUDA fake-quant of ``x`` (see :func:`training.quant.reference.quantize_reference`)."""
    return load_extension().fake_quant(x, code, maxv, granularity, dim, pow2, seed, stream,
                                       out_fp32)


@fake_quant_op.register_fake
def _fake_quant_meta(x, code, maxv, granularity, dim, pow2, seed, stream, out_fp32):
    return x.new_empty(x.shape, dtype=torch.float32 if out_fp32 else x.dtype)


@torch.library.custom_op("bayesfp::fake_quant_pair", mutates_args=())
def fake_quant_pair_op(x: torch.Tensor, code_a: list[int], maxv_a: float, block_a: int,
                       pow2_a: bool, stream_a: int, code_b: list[int], maxv_b: float,
                       block_b: int, pow2_b: bool, stream_b: int, seed: Optional[torch.Tensor],
                       out_fp32: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """CUDA fake-quant of a 2-D ``x`` in blocks along dim 1 (a) and along dim 0 (b)."""
    a, b = load_extension().fake_quant_pair(x, code_a, maxv_a, block_a, pow2_a, stream_a, code_b,
                                            maxv_b, block_b, pow2_b, stream_b, seed, out_fp32)
    return a, b


@fake_quant_pair_op.register_fake
def _fake_quant_pair_meta(x, code_a, maxv_a, block_a, pow2_a, stream_a, code_b, maxv_b, block_b,
                          pow2_b, stream_b, seed, out_fp32):
    dtype = torch.float32 if out_fp32 else x.dtype
    return x.new_empty(x.shape, dtype=dtype), x.new_empty(x.shape, dtype=dtype)
