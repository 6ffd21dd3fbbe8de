"""Independent float64 numpy oracles for the fake-quant tests (no code under test imported)."""

import numpy as np

FP32_MAX = float(np.finfo(np.float32).max)


def grid_constants(ebits: int, mbits: int, convention: str = "finite"):
    """(emin, maxv) of a format, written from the definitions, with the float32 cap for E = 8."""
    bias = 2 ** (ebits - 1) - 1
    emin = 1 - bias
    top = 2**ebits - 1 - bias
    if convention == "finite":
        maxv = 2.0**top * (2 - 2.0**-mbits)
    elif convention == "ieee":
        maxv = 2.0 ** (top - 1) * (2 - 2.0**-mbits)
    elif mbits == 0:  # fn, M = 0
        maxv = 2.0 ** (top - 1)
    else:  # fn
        maxv = 2.0**top * (2 - 2.0 ** (1 - mbits))
    if maxv > FP32_MAX:
        maxv = 2.0**127 * (2 - 2.0**-mbits)
    return emin, maxv


def fq_oracle(x, ebits: int, mbits: int, convention: str = "finite", rounding: str = "rne"):
    """Round float32 values onto the ExMy grid in float64; saturating; NaN stays NaN.

    rounding: "rne" (ties to even; M = 0 ties go to significand 2) or "away" (ties away from 0).
    """
    x = np.asarray(x, dtype=np.float32).astype(np.float64)
    emin, maxv = grid_constants(ebits, mbits, convention)
    a = np.abs(x)
    _, k = np.frexp(a)  # a = m * 2**k, m in [0.5, 1)
    e = np.maximum(k - 1, emin)
    quantum = np.ldexp(1.0, e - mbits)
    t = a / quantum
    if rounding == "rne":
        r = np.round(t)
    else:
        r = np.floor(t + 0.5)
    q = np.minimum(r * quantum, maxv)
    q = np.where(np.isinf(a), maxv, q)
    out = np.copysign(q, x)
    return np.where(np.isnan(x), np.nan, out).astype(np.float32)


def same_bits(a, b) -> np.ndarray:
    """Elementwise: identical float32 bit patterns, or both NaN."""
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    return (a.view(np.uint32) == b.view(np.uint32)) | (np.isnan(a) & np.isnan(b))


def random_float32(n: int, seed: int = 0) -> np.ndarray:
    """Finite float32 values: random bit patterns (all binades, subnormals, +-0) and normals."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2**32, size=n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    bits = bits[np.isfinite(bits)]
    extra = np.concatenate([rng.normal(0, 1, n // 4), rng.normal(0, 1e-3, n // 8),
                            rng.normal(0, 300, n // 8), [0.0, -0.0]]).astype(np.float32)
    return np.concatenate([bits, extra])
