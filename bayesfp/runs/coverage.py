"""What a run table covers, measured against the requirements of a scaling-law data set.

A fit of the precision laws needs runs that vary N, D, E, M and B far enough apart, baselines in
high precision at every (N, D), repeated seeds to know the noise, and post-training quantization
losses for Kumar et al.'s delta_PTQ. :func:`coverage` counts each of these in a validated run
table and says whether it meets :class:`Requirements` (by default those of the data set that
ships with bayesfp, ``docs/dataset.md``). Pure pandas: no I/O.

Units: ``N`` non-embedding parameters, ``D`` training tokens, ``epochs`` passes over the corpus.
"""

from dataclasses import dataclass, field

import pandas as pd

from bayesfp import dims
from bayesfp.runs import schema

ALL_SIX = frozenset(dims.OPERANDS)


@dataclass(frozen=True)
class Requirements:
    """Thresholds a run table must meet; the defaults are those of the shipped data set."""

    min_finished: int = 400
    min_n_sizes: int = 5
    min_n_span: float = 10.0  # largest N / smallest N
    min_d_values: int = 4
    min_d_span: float = 8.0  # largest D / smallest D
    max_epochs: float = 2.05  # "about 2 epochs" of the corpus at most
    exponents: tuple = (1, 2, 3, 4, 5)  # every E in this list trained
    mantissas: tuple = (0, 1, 2, 3, 4, 5, 6)  # every M in this list trained
    formats: tuple = ("e1m0", "e1m1", "e2m1", "e2m2", "e3m2", "e3m3", "e4m3", "e5m2")
    blocks: tuple = (32, 128, 512)
    granularity_words: tuple = dims.GRANULARITY_WORDS
    operand_sets: tuple = (tuple(dims.PAPER_OPERANDS), tuple(dims.OPERANDS),
                           *((o,) for o in dims.OPERANDS))
    min_repeated_fraction: float = 0.10  # configurations trained with >= 2 seeds


@dataclass(frozen=True)
class Check:
    """One requirement: what was asked, what the table has, whether it is met."""

    name: str
    required: str
    found: str
    met: bool
    missing: list = field(default_factory=list)


def _fmt_n(x: float) -> str:
    for unit, div in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def _operand_key(s: str) -> frozenset:
    return frozenset(str(s).split("+"))


def config_key(df: pd.DataFrame) -> pd.Series:
    """One text key per run naming its configuration without the seed (N, D, format, B, operands,
    convention, rounding where present)."""
    cols = [dims.N, dims.D, schema.FORMAT, dims.B, schema.OPERANDS]
    cols += [c for c in ("convention", "rounding") if c in df]
    return df[cols].astype(object).fillna("").astype(str).agg("|".join, axis=1)


def coverage(df: pd.DataFrame, req: Requirements = Requirements()) -> list:
    """Measure a validated run table against ``req``.

    Parameters
    ----------
    df : pandas.DataFrame
        The output of :func:`bayesfp.runs.validate_runs` (columns ``N``, ``D``, ``E``, ``M``,
        ``B``, ``block``, ``granularity``, ``operands``, ``format``, ``status``, ``seed``;
        optionally ``epochs`` and ``ptq_loss_<format>`` columns).
    req : Requirements

    Returns
    -------
    list of Check
        One per requirement, in a fixed order. Only finished (``ok``) runs count.
    """
    ok = df[df[schema.STATUS] == schema.STATUS_OK]
    checks = []

    def add(name, required, found, met, missing=()):
        checks.append(Check(name, required, found, bool(met), sorted(missing, key=str)))

    add("finished runs", f">= {req.min_finished}", f"{len(ok)} (of {len(df)})",
        len(ok) >= req.min_finished)

    ns = sorted(ok[dims.N].unique())
    n_span = ns[-1] / ns[0] if ns else 0.0
    add("model sizes N", f">= {req.min_n_sizes} values spanning >= {req.min_n_span:g}x",
        f"{len(ns)} values, {_fmt_n(ns[0]) if ns else '-'}..{_fmt_n(ns[-1]) if ns else '-'} "
        f"({n_span:.1f}x)", len(ns) >= req.min_n_sizes and n_span >= req.min_n_span)

    ds = sorted(ok[dims.D].unique())
    d_span = ds[-1] / ds[0] if ds else 0.0
    add("token counts D", f">= {req.min_d_values} values spanning >= {req.min_d_span:g}x",
        f"{len(ds)} values, {_fmt_n(ds[0]) if ds else '-'}..{_fmt_n(ds[-1]) if ds else '-'} "
        f"({d_span:.1f}x)", len(ds) >= req.min_d_values and d_span >= req.min_d_span)

    if "epochs" in ok and ok["epochs"].notna().all() and len(ok):
        most = float(ok["epochs"].max())
        add("epochs recorded", f"every run, <= {req.max_epochs:g}", f"max {most:.2f}",
            most <= req.max_epochs)
    else:
        n_missing = int(ok["epochs"].isna().sum()) if "epochs" in ok else len(ok)
        add("epochs recorded", f"every run, <= {req.max_epochs:g}",
            f"missing for {n_missing} runs", False)

    quant = ok[ok[schema.QUANTIZED]]
    base = ok[~ok[schema.QUANTIZED]]
    need = set(map(tuple, quant[[dims.N, dims.D]].drop_duplicates().to_numpy().tolist()))
    have = set(map(tuple, base[[dims.N, dims.D]].drop_duplicates().to_numpy().tolist()))
    lacking = [f"N={_fmt_n(n)} D={_fmt_n(d)}" for n, d in sorted(need - have)]
    add("high-precision baselines", "at every (N, D) of the quantized runs",
        f"{len(need & have)} of {len(need)} (N, D)", not lacking and need, lacking)

    es = set(quant[dims.E].astype(int))
    ms = set(quant[dims.M].astype(int))
    lack_e = [f"E{e}" for e in req.exponents if e not in es]
    lack_m = [f"M{m}" for m in req.mantissas if m not in ms]
    add("exponent and mantissa bits",
        f"E {min(req.exponents)}..{max(req.exponents)}, M {min(req.mantissas)}.."
        f"{max(req.mantissas)}",
        f"E {sorted(es)}, M {sorted(ms)}", not lack_e and not lack_m, lack_e + lack_m)

    fmts = set(quant[schema.FORMAT].astype(str))
    lack_f = [f for f in req.formats if f not in fmts]
    add("formats", ", ".join(req.formats), f"{len(fmts)} formats", not lack_f, lack_f)

    blocks = set(quant[schema.BLOCK].dropna().astype(int))
    words = set(quant[schema.GRANULARITY].astype(str))
    lack_g = [f"block {b}" for b in req.blocks if b not in blocks]
    lack_g += [w for w in req.granularity_words if w not in words]
    found_g = [f"block {b}" for b in sorted(blocks)] + sorted(words & set(dims.GRANULARITY_WORDS))
    add("scaling granularity", ", ".join([f"block {b}" for b in req.blocks]
                                         + list(req.granularity_words)),
        ", ".join(found_g), not lack_g, lack_g)

    sets = set(quant[schema.OPERANDS].map(_operand_key))
    lack_o = ["+".join(s) for s in req.operand_sets if frozenset(s) not in sets]
    add("quantized operand sets", f"{len(req.operand_sets)} sets (paper's, all six, each alone)",
        f"{len(sets)} sets", not lack_o, lack_o)

    keys = config_key(ok)
    seeds = ok.groupby(keys)[schema.SEED].nunique()
    frac = float((seeds >= 2).mean()) if len(seeds) else 0.0
    add("repeated seeds", f">= {req.min_repeated_fraction:.0%} of configurations",
        f"{int((seeds >= 2).sum())} of {len(seeds)} configurations ({frac:.1%})",
        frac >= req.min_repeated_fraction)

    ptq_cols = [c for c in ok.columns if str(c).startswith("ptq_loss_")]
    if ptq_cols and len(base):
        has = base[ptq_cols].notna().any(axis=1)
        add("PTQ losses", "every high-precision run", f"{int(has.sum())} of {len(base)} runs",
            bool(has.all()), list(base.loc[~has, schema.RUN_ID].astype(str)))
    else:
        add("PTQ losses", "every high-precision run", "no ptq_loss_* column"
            if not ptq_cols else "no high-precision runs", False)
    return checks


def unmet(checks: list) -> list:
    """The checks that are not met."""
    return [c for c in checks if not c.met]
