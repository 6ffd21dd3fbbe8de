"""The decision problem: candidate training formats, the cost model and what is fixed.

A user states the situation (a compute budget, or a fixed model size N and/or token count D),
the candidate formats (exponent bits E, mantissa bits M, block size B) and what they care
about: final loss (nats/token) alone, or loss plus a price per unit of cost. Nothing here reads
a posterior; :mod:`bayesfp.decide.analysis` evaluates the problem on posterior draws.

Cost models (both have the form ``cost = c_f * N * D`` with a constant ``c_f`` per format):

- :class:`FlopCost`: ``C = k (P + b) N D`` FLOPs (Sun et al.: k = 6/16, b = 0; BF16 counts as
  P = 16, so it costs the usual ``6 N D``).
- :class:`ThroughputCost`: GPU-hours from measured training throughput per format,
  ``hours = D / (3600 tokens_per_s(N))``; a throughput measured at model size ``N_ref`` is scaled
  as ``tokens_per_s(N) = tokens_per_s * N_ref / N`` (compute-bound training).
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp import defaults
from bayesfp.dims import PAPER_OPERANDS
from bayesfp.errors import BayesfpInputError

DEFAULT_FORMATS = defaults.FORMATS
DEFAULT_BLOCK = defaults.BLOCK
DEFAULT_OPERANDS = "+".join(PAPER_OPERANDS)
SUN_K = 6.0 / 16.0

# eXmY with an optional code convention (docs/formats.md): the laws see only E and M, so
# e4m3 (finite, max 480) and e4m3fn (hardware FP8, max 448) are the same candidate bits.
_EM = re.compile(r"^(?:fp\d+_)?e(\d+)m(\d+)(?:_?(finite|fn|ieee))?$")
# Unquantized formats: (E, M) of the format the run actually trains in, no penalty.
_UNQUANTIZED = {"bf16": (8, 7), "fp32": (8, 23)}


@dataclass(frozen=True)
class Format:
    """One candidate training format.

    Parameters
    ----------
    name : str
        Label (``e4m3``, ``bf16``; ``e4m3/32`` when the block differs from the default).
    E, M : int
        Exponent and mantissa bits (sign extra).
    B : str
        Block size as run tables write it: ``"128"``, ``"channel"``, ``"tensor"``, or ``"none"``
        for an unquantized format.
    operands : str
        The GEMM operands quantized (``none`` for an unquantized format).
    """

    name: str
    E: int
    M: int
    B: str = str(DEFAULT_BLOCK)
    operands: str = DEFAULT_OPERANDS

    @property
    def P(self) -> int:
        """Total bits ``1 + E + M`` (16 for BF16), the bits the cost model charges."""
        return 1 + self.E + self.M

    @property
    def quantized(self) -> bool:
        return self.operands != "none"

    def run_row(self, N: float, D: float) -> dict:
        """A run-table row (N, D, E, M, B, operands) for this format."""
        return {"N": float(N), "D": float(D), "E": self.E, "M": self.M, "B": self.B,
                "operands": self.operands}


def _block_word(block) -> str:
    s = str(block).strip().lower()
    if s in ("channel", "tensor"):
        return s
    try:
        v = float(s)
    except ValueError:
        raise BayesfpInputError(
            f"block: expected a positive integer, channel or tensor, got {block!r}"
            ) from None
    if v <= 0 or v != int(v):
        raise BayesfpInputError(
            f"block: expected a positive integer, channel or tensor, got {block!r}")
    return str(int(v))


def parse_format(spec, block=DEFAULT_BLOCK, operands: str = DEFAULT_OPERANDS) -> Format:
    """One format from a name or a tuple.

    Parameters
    ----------
    spec : str or tuple
        ``e4m3`` / ``E4M3`` / ``fp8_e4m3``, with an optional block ``e4m3/32`` or
        ``e4m3/channel``; ``bf16`` (unquantized, no penalty) or ``fp32``; or a tuple
        ``(E, M)`` / ``(E, M, B)``.
    block : int or str
        Block size when the spec does not give one.
    operands : str
        Operands quantized (default: the set Sun et al. fitted, ``w+w_bwd+x_bwd``).

    Returns
    -------
    Format
    """
    if isinstance(spec, Format):
        return spec
    if isinstance(spec, (tuple, list)):
        if len(spec) not in (2, 3):
            raise BayesfpInputError(f"formats: a format tuple is (E, M) or (E, M, B), got {spec!r}")
        e, m = int(spec[0]), int(spec[1])
        b = _block_word(spec[2] if len(spec) == 3 else block)
        if e < 1 or m < 0:
            raise BayesfpInputError(f"formats: need E >= 1 and M >= 0, got {spec!r}")
        default = b == _block_word(block)
        return Format(f"e{e}m{m}" + ("" if default else f"/{b}"), e, m, b, operands)
    text = str(spec).strip().lower()
    name, _, b = text.partition("/")
    if name in _UNQUANTIZED:
        if b:
            raise BayesfpInputError(
                f"formats: {name} is unquantized and takes no block, got {spec!r}")
        e, m = _UNQUANTIZED[name]
        return Format(name, e, m, "none", "none")
    hit = _EM.match(name)
    if hit is None:
        raise BayesfpInputError(f"formats: unknown format {spec!r} (use e.g. e2m1, e4m3, e4m3fn, "
                                "e4m3/32, fp8_e4m3, bf16)")
    e, m = int(hit.group(1)), int(hit.group(2))
    if e < 1:
        raise BayesfpInputError(f"formats: need at least one exponent bit, got {spec!r}")
    if e > 8 or m > 23:
        raise BayesfpInputError(f"formats: at most 8 exponent and 23 mantissa bits, got {spec!r}")
    bw = _block_word(b if b else block)
    conv = hit.group(3) if hit.group(3) not in (None, "finite") else ""
    label = f"e{e}m{m}{conv}" + (f"/{bw}" if b else "")
    return Format(label, e, m, bw, operands)


def parse_formats(specs, block=DEFAULT_BLOCK, operands: str = DEFAULT_OPERANDS) -> list[Format]:
    """Candidate formats from a comma-separated string or a sequence of specs.

    Examples
    --------
    >>> [f.name for f in parse_formats("e2m1,e3m2,e4m3,bf16")]
    ['e2m1', 'e3m2', 'e4m3', 'bf16']
    >>> parse_formats("fp8_e4m3/32")[0].B
    '32'
    """
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    out = [parse_format(s, block, operands) for s in specs]
    if not out:
        raise BayesfpInputError("formats: give at least one candidate format")
    names = [f.name for f in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BayesfpInputError(f"formats: {', '.join(dup)} listed twice")
    return out


# ---------------------------------------------------------------------------------------------
# Cost models
# ---------------------------------------------------------------------------------------------


# FLOP cost models: proportional to the format's bits, or the same for every format.
COST_MODELS = ("bits", "flat")


@dataclass(frozen=True)
class FlopCost:
    """Training compute ``C = k (P + b) N D`` FLOPs (``per_bit``), or ``C = k (16 + b) N D``
    for every format (compute that does not depend on the format, as on hardware without
    faster low-precision arithmetic).

    Parameters
    ----------
    k : float
        FLOPs per parameter, token and bit (Sun et al.: 6/16, so BF16 costs ``6 N D``).
    b : float
        Bits added to P (fixed overhead of the high-precision parts; Sun et al.: 0).
    per_bit : bool
        Cost proportional to the format's bits P (default); False: every format costs as BF16.
    """

    k: float = SUN_K
    b: float = 0.0
    per_bit: bool = True
    unit: str = "FLOPs"
    scales_with_N: bool = True

    def __post_init__(self):
        if not self.k > 0:
            raise BayesfpInputError(f"k: must be positive, got {self.k}")

    def rate(self, fmt: Format) -> float:
        """Cost per parameter per token, ``k (P + b)`` (FLOPs; P = 16 unless ``per_bit``)."""
        r = self.k * ((fmt.P if self.per_bit else 16) + self.b)
        if not r > 0:
            raise BayesfpInputError(f"b: k (P + b) must be positive for {fmt.name}, got {r}")
        return r

    def cost(self, fmt: Format, N, D):
        """FLOPs of a run of N parameters on D tokens."""
        return self.rate(fmt) * np.asarray(N, dtype=float) * np.asarray(D, dtype=float)


@dataclass(frozen=True)
class ThroughputCost:
    """GPU-hours from measured training throughput per format.

    Parameters
    ----------
    tokens_per_s : mapping
        Format name -> measured tokens/s.
    N_ref : mapping, optional
        Format name -> model size (non-embedding parameters) the throughput was measured at.
        Throughput is then scaled as ``tokens_per_s * N_ref / N``; without it the throughput
        is taken as the same at every N, which only makes sense at a fixed N.
    """

    tokens_per_s: Mapping[str, float]
    N_ref: Mapping[str, float] | None = None
    unit: str = "GPU-hours"
    scales_with_N: bool = field(init=False, default=False)

    def __post_init__(self):
        object.__setattr__(self, "scales_with_N", self.N_ref is not None)
        for name, v in self.tokens_per_s.items():
            if not (np.isfinite(v) and v > 0):
                raise BayesfpInputError(
                    f"throughput: tokens_per_s of {name!r} must be positive, got {v}")

    def _tps(self, fmt: Format) -> float:
        if fmt.name not in self.tokens_per_s:
            raise BayesfpInputError(f"throughput: no tokens_per_s for format {fmt.name!r} "
                                    f"(table has {', '.join(sorted(self.tokens_per_s))})")
        return float(self.tokens_per_s[fmt.name])

    def rate(self, fmt: Format) -> float:
        """GPU-hours per parameter per token (needs ``N_ref``)."""
        if self.N_ref is None:
            raise BayesfpInputError(
                "throughput: column N (model size the throughput was measured at) "
                "is needed to trade N against D at a budget")
        return 1.0 / (3600.0 * self._tps(fmt) * float(self.N_ref[fmt.name]))

    def cost(self, fmt: Format, N, D):
        """GPU-hours of a run of N parameters on D tokens."""
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        if self.N_ref is None:
            return D / (3600.0 * self._tps(fmt)) + 0.0 * N
        return self.rate(fmt) * N * D


def read_throughput(path) -> ThroughputCost:
    """Read a throughput table: CSV with columns ``format, tokens_per_s`` and optionally ``N``.

    Format names are parsed like ``--formats`` (``fp8_e4m3`` and ``e4m3`` are the same).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file or directory", str(path))
    df = pd.read_csv(path)
    for col in ("format", "tokens_per_s"):
        if col not in df:
            raise BayesfpInputError(f"throughput: {path} has no column {col!r} "
                                    "(need format, tokens_per_s and optionally N)")
    tps, nref = {}, {}
    for _, row in df.iterrows():
        name = parse_format(row["format"]).name
        if name in tps:
            raise BayesfpInputError(f"throughput: format {name!r} appears twice in {path}")
        tps[name] = float(row["tokens_per_s"])
        if "N" in df:
            n = float(row["N"])
            if not (np.isfinite(n) and n > 0):
                raise BayesfpInputError(
                    f"throughput: N of {name!r} must be positive, got {row['N']}")
            nref[name] = n
    return ThroughputCost(tps, nref if "N" in df else None)


# ---------------------------------------------------------------------------------------------
# The problem
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionProblem:
    """What is decided and how it is scored.

    Exactly one of the situations:

    - ``budget`` alone: every format spends the budget, N and D re-optimised per format;
    - ``budget`` and ``N``: D follows from the budget per format;
    - ``budget`` and ``D``: N follows from the budget per format;
    - ``N`` and ``D``: every format trains the same model on the same tokens.

    Utility of a choice is ``-(loss + price * cost)``: loss in nats/token, cost in the cost
    model's unit (FLOPs or GPU-hours), ``price`` in nats/token per unit of cost.

    Parameters
    ----------
    formats : list of Format
    cost : FlopCost or ThroughputCost
    budget : float, optional
        FLOPs (or GPU-hours with a throughput cost model).
    N, D : float, optional
        Fixed non-embedding parameters / training tokens.
    price : float
        Loss (nats/token) the user would trade for one unit of cost; 0 means final loss only.
    """

    formats: tuple
    cost: FlopCost | ThroughputCost = FlopCost()
    budget: float | None = None
    N: float | None = None
    D: float | None = None
    price: float = 0.0

    @property
    def mode(self) -> str:
        """``budget``, ``budget_N``, ``budget_D`` or ``fixed``."""
        if self.budget is None:
            return "fixed"
        if self.N is not None:
            return "budget_N"
        if self.D is not None:
            return "budget_D"
        return "budget"


def _positive(name: str, v) -> float | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise BayesfpInputError(f"{name}: expected a number, got {v!r}") from None
    if not (np.isfinite(x) and x > 0):
        raise BayesfpInputError(f"{name}: must be a positive finite number, got {v!r}")
    return x


def make_problem(formats=DEFAULT_FORMATS, budget=None, N=None, D=None, block=DEFAULT_BLOCK,
                 k: float = SUN_K, b: float = 0.0, throughput=None, price: float | None = None,
                 operands: str = DEFAULT_OPERANDS, cost: str = "bits") -> DecisionProblem:
    """Build and check a :class:`DecisionProblem` from user input.

    Parameters
    ----------
    formats : str or sequence
        Candidate formats (see :func:`parse_formats`).
    budget : float, optional
        FLOPs, or GPU-hours when ``throughput`` is given.
    N, D : float, optional
        Fixed non-embedding parameters and/or tokens.
    block : int or str
        Default block size of quantized formats.
    k, b : float
        FLOP cost model ``C = k (P + b) N D``.
    throughput : path, ThroughputCost or mapping, optional
        Measured tokens/s per format (CSV ``format, tokens_per_s[, N]``): costs in GPU-hours.
    price : float, optional
        Loss per unit of cost (nats/token per FLOP or per GPU-hour).
    cost : str
        FLOP cost model: ``bits`` (``k (P + b) N D``, cheaper formats buy more compute) or
        ``flat`` (``k (16 + b) N D`` for every format).

    Raises
    ------
    ValueError
        On unknown formats, a non-positive budget, N or D, or a situation that is not one of
        the four (see :class:`DecisionProblem`).
    """
    fmts = parse_formats(formats, block, operands)
    budget, N, D = _positive("budget", budget), _positive("N", N), _positive("D", D)
    if budget is None and (N is None or D is None):
        raise BayesfpInputError("budget: give a compute budget (--budget), or both N and D")
    if budget is not None and N is not None and D is not None:
        raise BayesfpInputError(
            "budget: with both N and D fixed there is nothing to spend a budget on; "
            "give the budget with N or D, or leave the budget out")
    price = 0.0 if price is None else float(price)
    if not (np.isfinite(price) and price >= 0):
        raise BayesfpInputError(f"price: must be a finite number >= 0, got {price}")
    if cost not in COST_MODELS:
        raise BayesfpInputError(f"cost: unknown cost model {cost!r}; choose "
                                f"{' or '.join(COST_MODELS)}")
    if throughput is None:
        cost = FlopCost(float(k), float(b), per_bit=cost == "bits")
    elif isinstance(throughput, ThroughputCost):
        cost = throughput
    elif isinstance(throughput, Mapping):
        cost = ThroughputCost(dict(throughput))
    else:
        cost = read_throughput(throughput)
    for f in fmts:
        if isinstance(cost, ThroughputCost):
            cost._tps(f)
        else:
            cost.rate(f)
    if budget is not None and N is None and not cost.scales_with_N:
        raise BayesfpInputError(
            "throughput: column N (model size the throughput was measured at) is "
            "needed to trade N against D at a budget; or fix N")
    return DecisionProblem(tuple(fmts), cost, budget, N, D, price)
