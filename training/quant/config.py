"""Which GEMM operands of a linear layer are fake-quantized, and how.

Forward ``Y = X W^T`` has operands ``x`` and ``w``; the input gradient ``dX = dY W`` has ``dy`` and
``w_bwd``; the weight gradient ``dW = dY^T X`` has ``dy2`` and ``x_bwd`` (names from
:data:`bayesfp.dims.OPERANDS`). Each can get its own format and granularity, or stay in high
precision (``None``).
"""

from dataclasses import dataclass, fields

from bayesfp.dims import GRANULARITY_WORDS, NO_OPERANDS, OPERANDS
from training.quant.spec import FPFormat, parse_format

SCALE_MODES = ("fp32", "pow2")


def check_granularity(granularity):
    """Validate a granularity: ``"tensor"``, ``"channel"``, a block size ``B >= 1`` or ``None``.

    ``None`` means no scaling at all (a plain cast). Returns the value unchanged.
    """
    if granularity is None or granularity in GRANULARITY_WORDS:
        return granularity
    if isinstance(granularity, bool) or not isinstance(granularity, int) or granularity < 1:
        raise ValueError(f"granularity must be 'tensor', 'channel' or a block size >= 1, "
                         f"got {granularity!r}")
    return granularity


@dataclass(frozen=True)
class OperandQuant:
    """How one GEMM operand is fake-quantized.

    Parameters
    ----------
    fmt : FPFormat or str
        Element format (a string is parsed with :func:`~training.quant.spec.parse_format`).
    granularity : "tensor", "channel" or int
        One scale per tensor, per row along the reduction dim, or per block of B consecutive
        elements along the reduction dim.
    scale : {"fp32", "pow2"}
        Scale ``S = max / absmax`` in float32, or its power-of-two (E8M0, MX-style) version.
    """

    fmt: FPFormat
    granularity: object
    scale: str = "fp32"

    def __post_init__(self):
        object.__setattr__(self, "fmt", parse_format(self.fmt))
        if self.granularity is None:
            raise ValueError("granularity must be 'tensor', 'channel' or a block size, not None")
        check_granularity(self.granularity)
        if self.scale not in SCALE_MODES:
            raise ValueError(f"scale must be one of {SCALE_MODES}, got {self.scale!r}")


@dataclass(frozen=True)
class LinearQuantConfig:
    """Per-operand quantization of one linear layer; ``None`` keeps an operand in high precision."""

    x: OperandQuant | None = None
    w: OperandQuant | None = None
    dy: OperandQuant | None = None
    w_bwd: OperandQuant | None = None
    dy2: OperandQuant | None = None
    x_bwd: OperandQuant | None = None

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and not isinstance(value, OperandQuant):
                raise ValueError(f"{f.name} must be an OperandQuant or None, got {value!r}")

    @classmethod
    def none(cls) -> "LinearQuantConfig":
        """All six operands in high precision."""
        return cls()

    @classmethod
    def from_spec(cls, fmt, granularity, operands, scale: str = "fp32") -> "LinearQuantConfig":
        """One format and granularity for a set of operands.

        Parameters
        ----------
        fmt : FPFormat or str
        granularity : "tensor", "channel" or int
        operands : str or iterable of str
            ``"w+w_bwd+x_bwd"``, ``"all"``, ``"none"`` or names from ``OPERANDS``.
        scale : {"fp32", "pow2"}
        """
        names = parse_operands(operands)
        quant = OperandQuant(parse_format(fmt), granularity, scale) if names else None
        return cls(**{name: quant for name in names})

    @property
    def active(self) -> tuple:
        """Names of the quantized operands."""
        return tuple(name for name in OPERANDS if getattr(self, name) is not None)


def parse_operands(operands) -> tuple:
    """Operand names from ``"x+w"``, ``"all"``, ``"none"`` or an iterable of names."""
    if isinstance(operands, str):
        text = operands.strip()
        if text == "all":
            return OPERANDS
        if text in (NO_OPERANDS, ""):
            return ()
        operands = text.split("+")
    names = tuple(name.strip() for name in operands)
    for name in names:
        if name not in OPERANDS:
            raise ValueError(f"operands: unknown operand {name!r}; choose from {OPERANDS}")
    return tuple(name for name in OPERANDS if name in names)
