"""The run table schema: one row per training run, column names, types and allowed values.

``docs/runs.md`` describes every column for people; this module holds the same facts for code.
Units: ``N`` non-embedding parameters (count), ``D`` training tokens (count), ``E``/``M``
exponent/mantissa bits, ``P = 1 + E + M`` total bits, ``B`` elements sharing one scale factor,
``loss`` final validation loss in nats/token.
"""

from bayesfp import dims

RUN_ID = "run_id"
STATUS = "status"
SEED = "seed"
OPERANDS = "operands"
FORMAT = "format"

# Required columns, in the order a validated table puts them.
REQUIRED = (RUN_ID, dims.N, dims.D, dims.E, dims.M, dims.B, OPERANDS, dims.LOSS, STATUS, SEED)

# What each required column holds, the check ``validate_runs`` applies to it:
#   "id"        text, present and unique;
#   "count"     integer > 0;           "bits"   integer >= 0;        "int"   integer;
#   "positive"  finite number > 0;     "loss"   number, finite and > 0 on ok runs (nats/token);
#   "block"     a block size > 0 or a word of B_WORDS;
#   "operands"  "+"-joined names of dims.OPERANDS, or "none";
#   "status"    one of STATUSES.
REQUIRED_KINDS = {
    RUN_ID: "id", dims.N: "count", dims.D: "positive", dims.E: "bits", dims.M: "bits",
    dims.B: "block", OPERANDS: "operands", dims.LOSS: "loss", STATUS: "status", SEED: "int",
}

# Columns validation adds: P = 1 + E + M (bits), the block size as nullable Int64 (NA for the
# granularity words), the granularity word and whether any operand was quantized.
BLOCK = "block"
GRANULARITY = "granularity"
QUANTIZED = "quantized"
DERIVED = (dims.P, BLOCK, GRANULARITY, QUANTIZED)

STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"
STATUSES = (STATUS_OK, STATUS_DIVERGED, STATUS_FAILED)

# Values of ``B`` and ``granularity``. ``none`` marks a run where no operand was quantized.
NONE = dims.NO_OPERANDS
GRANULARITY_BLOCK = "block"
B_WORDS = (*dims.GRANULARITY_WORDS, NONE)
GRANULARITIES = (GRANULARITY_BLOCK, *dims.GRANULARITY_WORDS, NONE)

CONVENTIONS = ("finite", "ieee", "fn")
ROUNDINGS = ("nearest_even", "half_away", "stochastic")

# Optional known columns and their kinds: "str" (text, may be missing), "float" (number, may be
# missing), "int" (integer, may be missing). ``config`` must also parse as JSON, ``convention``
# and ``rounding`` must take one of the values above.
OPTIONAL = {
    "convention": "str",
    "rounding": "str",
    FORMAT: "str",
    "epochs": "float",
    "diverged_step": "int",
    "reason": "str",
    "tokens_per_s": "float",
    "wall_s": "float",
    "gpu": "str",
    "torch_version": "str",
    "cuda_version": "str",
    "code_rev": "str",
    "corpus_hash": "str",
    "config": "str",
    dims.GROUP: "str",
}
ALLOWED = {"convention": CONVENTIONS, "rounding": ROUNDINGS}

# Post-training-quantization losses, one column per target format: ``ptq_loss_<fmt>`` (float).
PTQ_PREFIX = "ptq_loss_"

# Columns read as text from CSV, so that "007" or "2.10" keep their spelling.
TEXT_COLUMNS = (RUN_ID, dims.B, OPERANDS, STATUS) + tuple(
    k for k, kind in OPTIONAL.items() if kind == "str"
)

# The unquantized baseline format: E8M7 with no operand quantized is written "bf16".
BF16_E, BF16_M = 8, 7
BF16 = "bf16"


def format_name(e, m, quantized):
    """Return the default format name of a run.

    Parameters
    ----------
    e, m : int
        Exponent and mantissa bits.
    quantized : bool
        Whether any GEMM operand was quantized.

    Returns
    -------
    str
        ``"bf16"`` for an unquantized E8M7 run, else ``"e{E}m{M}"``.
    """
    if not quantized and (e, m) == (BF16_E, BF16_M):
        return BF16
    return f"e{e}m{m}"


def canonical_operands(text):
    """Parse a ``+``-joined operand set into canonical form.

    Parameters
    ----------
    text : str
        For example ``"W+x_bwd"`` or ``"none"``; case and spaces around names are ignored.

    Returns
    -------
    canonical : str or None
        The names lower case, without repeats, in the order of ``bayesfp.dims.OPERANDS``, joined
        by ``+`` (``"w+x_bwd"``), or ``"none"``; None when a name is unknown.
    unknown : list of str
        The names that are not operands (empty when ``canonical`` is not None).
    """
    parts = [p.strip().lower() for p in str(text).split("+")]
    if parts == [NONE]:
        return NONE, []
    unknown = [p for p in parts if p not in dims.OPERANDS]
    if unknown:
        return None, unknown
    return "+".join(op for op in dims.OPERANDS if op in parts), []


def is_ptq_column(column):
    """Return True for a ``ptq_loss_<fmt>`` column name."""
    return isinstance(column, str) and column.startswith(PTQ_PREFIX)


def column_order(columns):
    """Return the canonical column order of a validated table.

    Required columns first, then the derived ones, the optional known ones, the
    ``ptq_loss_<fmt>`` columns and last the free provenance columns, each group in a fixed order
    (free columns keep their input order).

    Parameters
    ----------
    columns : iterable of str

    Returns
    -------
    list of str
    """
    columns = list(columns)
    present = set(columns)
    known = [*REQUIRED, *DERIVED, *OPTIONAL]
    order = [c for c in known if c in present]
    order += sorted(c for c in columns if is_ptq_column(c))
    order += [c for c in columns if c not in known and not is_ptq_column(c)]
    assert len(order) == len(columns)
    return order


def b_sort_key(b):
    """Sort key for canonical ``B`` values: block sizes ascending, then channel, tensor, none."""
    if b.isdigit():
        return (0, int(b), b)
    return (1, B_WORDS.index(b), b)


def operands_sort_key(ops):
    """Sort key for canonical operand sets: none first, then by size and position in OPERANDS."""
    if ops == NONE:
        return (0, ())
    names = ops.split("+")
    return (len(names), tuple(dims.OPERANDS.index(n) for n in names))
