"""ExMy floating-point formats: one frozen spec from which every constant is derived.

A format has a sign bit, ``ebits`` exponent bits and ``mbits`` mantissa bits, bias
``2**(ebits-1) - 1`` and (by default) subnormals. Three conventions decide which codes are numbers:

``finite``
    Every code is a finite number, no Inf or NaN (the convention of Sun et al. 2025 and of the
    OCP fp4/fp6 types): ``max = 2**(2**E - 1 - bias) * (2 - 2**-M)``. E2M1 max 6, E3M2 28,
    E2M3 7.5, E4M3 480, E5M2 114688.
``ieee``
    The top exponent code is reserved for Inf/NaN: ``max = 2**(2**E - 2 - bias) * (2 - 2**-M)``
    (E5M2 57344, as float8_e5m2; E8M7 is bfloat16, E5M10 float16). Needs E >= 2.
``fn``
    Only the all-ones code is NaN (float8_e4m3fn): ``max = 2**(2**E - 1 - bias) * (2 - 2**(1-M))``
    (E4M3 448); for M = 0 the top exponent holds only the NaN code, so ``max = 2**(emax - 1)``.

Rounding: ``nearest_even`` (IEEE round-to-nearest-even, the default), ``half_away`` (ties away
from zero, what QPyTorch's ``float_quantize`` does) and ``stochastic`` (rounds up with probability
equal to the discarded fraction; random bits from a seeded Philox4x32-10 stream).

Edge cases, decided once here and implemented identically by the torch reference and the CUDA
kernel (values are computed in float32):

- **M = 0 ties.** Both neighbours of a tie between two powers of two have significand 1, so "even"
  means the larger one (integer significand 2): 1.5 -> 2, 3 -> 4, as ml_dtypes float8_e8m0fnu.
  In the subnormal range the candidates are 0 and ``2**emin``, and the tie goes to 0.
- **E = 8.** For the ``finite`` and ``fn`` conventions the top binade ``[2**128, ...)`` lies beyond
  float32 (and bfloat16). The cast then saturates at ``max_value = 2**127 * (2 - 2**-M)``, the
  largest grid value float32 holds; ``max_normal`` still reports the format's own maximum.
- **Overflow.** A value whose rounded magnitude exceeds ``max_value`` saturates to +-``max_value``
  when ``saturate`` is true (default). Otherwise it becomes +-Inf, or NaN for ``fn`` (matching
  ml_dtypes float8_e5m2 and float8_e4m3fn); ``finite`` has no Inf code and still returns +-Inf as
  an overflow marker.
- **Non-finite inputs.** NaN stays NaN (ml_dtypes maps it to -0.0 for fp4/fp6; we keep it visible).
  +-Inf is an overflow like any other: +-``max_value`` when saturating, as ml_dtypes fp4/fp6 do.
  Non-finite elements are ignored when a group's absmax is computed.
- **Flush.** ``subnormals=False`` flushes every magnitude below ``min_normal`` to a signed zero.
- **M > 7 in bfloat16.** Such grids are not representable in bfloat16, so a bfloat16 input with
  ``mbits > 7`` gives a float32 output (see :func:`training.quant.reference.output_dtype`).

E = 1 formats are integer-like: their grid is uniform with spacing ``2**(1-M)`` up to
``4 - 2**(1-M)``. E = 0 is not supported.
"""

import math
import re
from dataclasses import dataclass

from bayesfp.runs.schema import CONVENTIONS, ROUNDINGS  # the run table's names

MAX_EBITS = 8
MAX_MBITS = 22  # float32 holds 23 mantissa bits; the kernel's integer rounding needs one spare
FP32_MAX = float.fromhex("0x1.fffffep+127")
FP32_OVERFLOW = 2.0**128 - 2.0**103  # float32 rounding gives Inf from here up (FLT_MAX + ulp / 2)


@dataclass(frozen=True)
class FPFormat:
    """A sign + ``ebits`` + ``mbits`` floating-point format and how values are cast into it.

    Parameters
    ----------
    ebits : int
        Exponent bits E, 1..8.
    mbits : int
        Explicit mantissa bits M, 0..22.
    convention : {"finite", "ieee", "fn"}
        Which codes are Inf/NaN (see the module docstring).
    rounding : {"nearest_even", "half_away", "stochastic"}
        Rounding of values between two grid points.
    subnormals : bool
        Keep subnormals (True) or flush magnitudes below ``min_normal`` to zero.
    saturate : bool
        Clamp overflow to +-``max_value`` (True) or return Inf/NaN.
    """

    ebits: int
    mbits: int
    convention: str = "finite"
    rounding: str = "nearest_even"
    subnormals: bool = True
    saturate: bool = True

    def __post_init__(self):
        if not isinstance(self.ebits, int) or not 1 <= self.ebits <= MAX_EBITS:
            raise ValueError(f"ebits must be an int in 1..{MAX_EBITS}, got {self.ebits!r}")
        if not isinstance(self.mbits, int) or not 0 <= self.mbits <= MAX_MBITS:
            raise ValueError(f"mbits must be an int in 0..{MAX_MBITS}, got {self.mbits!r}")
        if self.convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {CONVENTIONS}, got {self.convention!r}")
        if self.rounding not in ROUNDINGS:
            raise ValueError(f"rounding must be one of {ROUNDINGS}, got {self.rounding!r}")
        if self.convention == "ieee" and self.ebits < 2:
            raise ValueError("convention 'ieee' needs ebits >= 2 (E=1 would hold no normal number)")
        if self.convention == "fn" and self.ebits + self.mbits < 2:
            raise ValueError("convention 'fn' needs ebits + mbits >= 2 (E1M0fn holds only 0)")

    # ---- exponent range -------------------------------------------------------------------
    @property
    def bias(self) -> int:
        """Exponent bias, ``2**(E-1) - 1``."""
        return 2 ** (self.ebits - 1) - 1

    @property
    def emin(self) -> int:
        """Unbiased exponent of the smallest normal number, ``1 - bias``."""
        return 1 - self.bias

    @property
    def emax(self) -> int:
        """Unbiased exponent of the largest finite code's binade."""
        top = 2**self.ebits - 1 - self.bias
        if self.convention == "ieee" or (self.convention == "fn" and self.mbits == 0):
            return top - 1
        return top

    # ---- special codes --------------------------------------------------------------------
    @property
    def has_inf(self) -> bool:
        """Whether the format has Inf codes (only ``ieee``)."""
        return self.convention == "ieee"

    @property
    def has_nan(self) -> bool:
        """Whether the format has NaN codes (``ieee`` and ``fn``)."""
        return self.convention != "finite"

    # ---- magnitudes -------------------------------------------------------------------------
    @property
    def max_normal(self) -> float:
        """Largest finite value of the format (may exceed float32 for E = 8)."""
        if self.convention == "fn" and self.mbits > 0:
            return 2.0**self.emax * (2.0 - 2.0 ** (1 - self.mbits))
        return 2.0**self.emax * (2.0 - 2.0**-self.mbits)

    @property
    def max_value(self) -> float:
        """Saturation value of the float32 cast: ``max_normal`` capped at the float32 range."""
        if self.max_normal <= FP32_MAX:
            return self.max_normal
        return 2.0**127 * (2.0 - 2.0**-self.mbits)

    @property
    def max_exponent(self) -> int:
        """``floor(log2(max_value))``, the element exponent used for power-of-two scales."""
        return min(self.emax, 127)

    @property
    def descale_limit(self) -> float:
        """Largest float32 ``L`` whose float32 product with ``max_value`` is finite.

        The cap of the de-scale factor ``1 / S`` (see :mod:`training.quant.reference`). The
        product of two float32 values is exact in float64, and float32 rounding gives Inf from
        ``FP32_OVERFLOW = 2**128 - 2**103`` up.
        """
        maxv = self.max_value
        f = _float32_floor(min(FP32_OVERFLOW / maxv, FP32_MAX))
        while f * maxv >= FP32_OVERFLOW:
            f = _float32_step(f, up=False)
        while f < FP32_MAX and _float32_step(f, up=True) * maxv < FP32_OVERFLOW:
            f = _float32_step(f, up=True)
        return f

    @property
    def min_normal(self) -> float:
        """Smallest positive normal value, ``2**emin``."""
        return 2.0**self.emin

    @property
    def min_subnormal(self) -> float:
        """Smallest positive value, ``2**(emin - M)`` (``min_normal`` when flushing)."""
        if not self.subnormals:
            return self.min_normal
        return 2.0 ** (self.emin - self.mbits)

    @property
    def bits(self) -> int:
        """Total bits P = 1 + E + M."""
        return 1 + self.ebits + self.mbits

    @property
    def name(self) -> str:
        """Short name, e.g. ``e4m3`` (``finite``), ``e4m3fn``, ``e5m2ieee``."""
        suffix = {"finite": "", "ieee": "ieee", "fn": "fn"}[self.convention]
        return f"e{self.ebits}m{self.mbits}{suffix}"

    def with_rounding(self, rounding: str) -> "FPFormat":
        """The same format with another rounding mode."""
        return FPFormat(self.ebits, self.mbits, self.convention, rounding, self.subnormals,
                        self.saturate)


def _float32_floor(t: float) -> float:
    """The largest float32 value <= ``t`` (a positive float in the float32 normal range)."""
    _, k = math.frexp(t)  # t in [2**(k-1), 2**k): float32 spacing 2**(k-24) there
    ulp = 2.0 ** (k - 24)
    return math.floor(t / ulp) * ulp


def _float32_step(f: float, up: bool) -> float:
    """The float32 neighbour above or below ``f`` (a positive normal float32 value)."""
    m, k = math.frexp(f)  # f = m * 2**k, m in [0.5, 1)
    ulp = 2.0 ** (k - 24)
    if up:
        return f + ulp
    return f - (ulp / 2 if m == 0.5 else ulp)


NAMED_FORMATS = {
    "e2m1": FPFormat(2, 1),
    "e2m3": FPFormat(2, 3),
    "e3m2": FPFormat(3, 2),
    "e3m4": FPFormat(3, 4),
    "e4m3": FPFormat(4, 3),
    "e5m2": FPFormat(5, 2),
    "e4m3fn": FPFormat(4, 3, "fn"),
    "e5m2ieee": FPFormat(5, 2, "ieee"),
    "fp4": FPFormat(2, 1),
    "fp6": FPFormat(3, 2),
    "fp8": FPFormat(4, 3),
    "bf16": FPFormat(8, 7, "ieee"),
    "fp16": FPFormat(5, 10, "ieee"),
}

_PATTERN = re.compile(r"^(?:fp\d+_)?e(\d+)m(\d+)(?:_?(finite|ieee|fn))?$")
_ROUNDING_SUFFIX = {"rne": "nearest_even", "away": "half_away", "sr": "stochastic"}


def parse_format(spec) -> FPFormat:
    """Parse a format name into an :class:`FPFormat`.

    Parameters
    ----------
    spec : str or FPFormat
        ``"e4m3"`` (``finite`` convention), ``"e4m3fn"``, ``"e5m2_ieee"``, ``"fp8_e4m3"``, a named
        format (``"bf16"``, ``"fp16"``, ``"fp4"``, ``"fp6"``, ``"fp8"``), optionally followed by a
        rounding suffix ``":rne"``, ``":away"`` or ``":sr"`` (stochastic). An FPFormat passes
        through.

    Returns
    -------
    FPFormat
    """
    if isinstance(spec, FPFormat):
        return spec
    if not isinstance(spec, str):
        raise ValueError(f"format must be a string such as 'e4m3', got {spec!r}")
    text = spec.strip().lower()
    rounding = "nearest_even"
    if ":" in text:
        text, _, suffix = text.partition(":")
        if suffix not in _ROUNDING_SUFFIX:
            raise ValueError(f"format {spec!r}: rounding suffix must be one of "
                             f"{tuple(_ROUNDING_SUFFIX)}")
        rounding = _ROUNDING_SUFFIX[suffix]
    if text in NAMED_FORMATS:
        return NAMED_FORMATS[text].with_rounding(rounding)
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"format {spec!r} is not a name like 'e4m3', 'e4m3fn' or 'bf16'")
    ebits, mbits, convention = int(match[1]), int(match[2]), match[3] or "finite"
    return FPFormat(ebits, mbits, convention, rounding)
