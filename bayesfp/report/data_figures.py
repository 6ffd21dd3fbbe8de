"""Figures of a run table itself, before any fit: what was measured.

Each function takes a validated run table (:func:`bayesfp.runs.validate_runs`) and returns a
:class:`matplotlib.figure.Figure`; nothing is shown or written. Only finished (``ok``) runs are
drawn; repeated seeds are averaged, and their range drawn as a vertical bar. Loss in nats/token.
"""

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from bayesfp import dims
from bayesfp.errors import BayesfpInputError
from bayesfp.report.figures import WIDTH, _finish_panels

PAPER_OPERANDS = "+".join(dims.PAPER_OPERANDS)


def _label_n(n: float, name: str = "") -> str:
    text = f"N = {n / 1e6:.2f}M" if n >= 1e6 else f"N = {n / 1e3:.0f}k"
    return f"{name}: {text}" if name else text


def _size_names(df: pd.DataFrame) -> dict:
    """N -> the model size's name, read from the runs' ``config`` JSON where present."""
    names = {}
    if "config" not in df:
        return names
    for n, cfg in zip(df["N"], df["config"], strict=True):
        try:
            names.setdefault(n, str(json.loads(cfg)["model"]))
        except (TypeError, ValueError, KeyError):
            continue
    return names


def _token_axis(ax, Ds) -> None:
    """Log x axis with one labelled tick per trained D (5M, 10M, ...)."""
    ax.set_xscale("log")
    ax.set_xticks(Ds, [f"{d / 1e6:.0f}M" if d >= 1e6 else f"{d / 1e3:.0f}k" for d in Ds])
    ax.minorticks_off()


def _select(df: pd.DataFrame, block, operands: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The finished runs at one block size and operand set, and the high-precision baselines."""
    ok = df[df["status"] == "ok"]
    ops = ok["operands"].astype(str).map(lambda s: frozenset(s.split("+")))
    quant = ok[(ok["B"].astype(str) == str(block)) & (ops == frozenset(operands.split("+")))]
    base = ok[~ok["quantized"]]
    return quant, base


def _mean_by(df: pd.DataFrame, keys: list) -> pd.DataFrame:
    out = df.groupby(keys, as_index=False)["loss"].agg(["mean", "min", "max", "count"])
    return out.astype({"D": float, "mean": float, "min": float, "max": float})


def _seed_bars(ax, c: pd.DataFrame, **kw) -> None:
    """Seed means against D with a bar over the seeds' range."""
    mean = c["mean"].to_numpy()
    yerr = [mean - c["min"].to_numpy(), c["max"].to_numpy() - mean]
    ax.errorbar(c["D"].to_numpy(), mean, yerr=yerr, ms=3.5, capsize=2, **kw)


def _format_colors(formats: list) -> dict:
    cmap = plt.get_cmap("tab10" if len(formats) <= 10 else "tab20")
    return {f: cmap(i % cmap.N) for i, f in enumerate(formats)}


def _format_order(quant: pd.DataFrame) -> list:
    fm = quant[["format", "P", "E"]].drop_duplicates().sort_values(["P", "E"])
    return list(fm["format"])


def loss_vs_tokens(df: pd.DataFrame, block=128, operands: str = PAPER_OPERANDS,
                   Ns=None) -> Figure:
    """Final validation loss against tokens D, one panel per N, one line per format.

    Formats at block size ``block`` with the operand set ``operands``; the dashed black line is
    the high-precision baseline (BF16). Points are means over seeds; bars span the seeds.
    """
    quant, base = _select(df, block, operands)
    Ns = sorted(set(quant["N"]) | set(base["N"])) if Ns is None else list(Ns)
    if not Ns:
        raise BayesfpInputError("loss_vs_tokens: no finished runs to draw")
    formats = _format_order(quant)
    colors = _format_colors(formats)
    ncol = min(len(Ns), 3)
    nrow = int(np.ceil(len(Ns) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(WIDTH, 3.0 * nrow + 0.6), squeeze=False,
                             layout="constrained")
    qm = _mean_by(quant, ["N", "format", "D"])
    bm = _mean_by(base, ["N", "D"])
    names = _size_names(df)
    Ds = sorted(set(qm["D"]) | set(bm["D"]))
    for ax, n in zip(axes.flat, Ns, strict=False):
        for f in formats:
            c = qm[(qm["N"] == n) & (qm["format"] == f)].sort_values("D")
            if len(c):
                _seed_bars(ax, c, marker="o", lw=1.2, color=colors[f], label=f)
        c = bm[bm["N"] == n].sort_values("D")
        if len(c):
            _seed_bars(ax, c, marker="s", lw=1.5, ls="--", color="k", label="bf16")
        _token_axis(ax, Ds)
        ax.set_xlim(Ds[0] / 1.25, Ds[-1] * 1.25)
        ax.set_title(_label_n(n, names.get(n, "")), fontsize=10)
        ax.set_xlabel("tokens D", fontsize=9)
        ax.set_ylabel("loss (nats/token)", fontsize=9)
        ax.tick_params(labelsize=8)
    return _finish_panels(fig, axes, len(Ns), loc="outside right upper", fontsize=8,
                          title=f"block {block}", title_fontsize=8)


def penalty_vs_bits(df: pd.DataFrame, block=128, operands: str = PAPER_OPERANDS,
                    D=None) -> Figure:
    """Loss above the BF16 baseline at the same (N, D) against total bits P = 1 + E + M.

    One panel per exponent width E, one line per N, at tokens ``D`` (default: the largest D
    with runs). A point per format, the mean over seeds of format and baseline.
    """
    quant, base = _select(df, block, operands)
    if D is None:
        if not len(quant):
            raise BayesfpInputError("penalty_vs_bits: no quantized runs to draw")
        D = float(quant["D"].max())
    quant, base = quant[quant["D"] == D], base[base["D"] == D]
    bm = base.groupby("N")["loss"].mean()
    qm = quant.groupby(["N", "E", "M", "P"], as_index=False)["loss"].mean()
    qm = qm[qm["N"].isin(bm.index)]
    if not len(qm):
        raise BayesfpInputError(
            f"penalty_vs_bits: no quantized runs with a baseline at D = {D:.3g}")
    qm["penalty"] = qm["loss"].to_numpy() - bm.loc[qm["N"]].to_numpy()
    Es = sorted(qm["E"].unique())
    Ns = sorted(qm["N"].unique())
    names = _size_names(df)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, len(Es), figsize=(WIDTH, 3.2), squeeze=False, sharey=True,
                             layout="constrained")
    for ax, e in zip(axes.flat, Es, strict=True):
        for i, n in enumerate(Ns):
            c = qm[(qm["E"] == e) & (qm["N"] == n)].sort_values("P")
            if len(c):
                ax.plot(c["P"], c["penalty"], "o-", ms=4, lw=1.2,
                        color=cmap(i / max(len(Ns) - 1, 1)), label=_label_n(n, names.get(n, "")))
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(f"E = {int(e)}", fontsize=10)
        ax.set_xlabel("bits P = 1 + E + M", fontsize=9)
        ps = sorted(qm.loc[qm["E"] == e, "P"].astype(int).unique())
        ax.set_xticks(ps)
        ax.set_xlim(ps[0] - 0.5, ps[-1] + 0.5)
        ax.tick_params(labelsize=8)
    axes.flat[0].set_ylabel("loss - bf16 loss (nats/token)", fontsize=9)
    fig.suptitle(f"D = {D / 1e6:.0f}M tokens, block {block}", fontsize=10)
    return _finish_panels(fig, axes, len(Es), loc="outside right upper", fontsize=8)
