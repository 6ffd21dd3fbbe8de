"""Figures of the raw runs: the plotted points are the seed means computed by hand."""

import numpy as np
import pandas as pd
import pytest

from bayesfp.report.data_figures import loss_vs_tokens, penalty_vs_bits
from bayesfp.runs import validate_runs


def _runs():
    rows = []
    for N in (1e6, 4e6):
        for D in (1e7, 2e7, 4e7):
            base = 5.0 - 0.2 * np.log2(N / 1e6) - 0.3 * np.log2(D / 1e7)
            for seed, noise in ((0, -0.01), (1, 0.01)):
                rows.append(dict(N=N, D=D, E=8, M=7, B="none", operands="none", seed=seed,
                                 loss=base + noise))
            for (E, M), pen in (((2, 1), 0.05), ((4, 3), 0.01), ((1, 0), 0.5)):
                rows.append(dict(N=N, D=D, E=E, M=M, B="128", operands="w+w_bwd+x_bwd", seed=0,
                                 loss=base + pen))
            # another block size and operand set, which the default figures leave out
            rows.append(dict(N=N, D=D, E=2, M=1, B="32", operands="w+w_bwd+x_bwd", seed=0,
                             loss=base + 9))
            rows.append(dict(N=N, D=D, E=2, M=1, B="128", operands="x", seed=0, loss=base + 9))
    df = pd.DataFrame(rows)
    df["status"] = "ok"
    df.loc[0, "status"] = "diverged"  # a diverged run is not drawn
    df["run_id"] = [f"r{i}" for i in range(len(df))]
    return validate_runs(df)[0]


def _lines(ax):
    """The data line of each labelled series (plain lines and error-bar containers)."""
    out = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    out.update({c.get_label(): c.lines[0] for c in ax.containers})
    return out


def test_loss_vs_tokens_points_are_seed_means():
    df = _runs()
    fig = loss_vs_tokens(df)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["N = 1.00M", "N = 4.00M"]
    lines = _lines(axes[1])
    assert set(lines) == {"e1m0", "e2m1", "e4m3", "bf16"}
    bf = lines["bf16"].get_ydata()
    expect = [5.0 - 0.4 - 0.3 * k for k in range(3)]  # the seeds' noise cancels
    np.testing.assert_allclose(bf, expect, atol=1e-12)
    np.testing.assert_allclose(lines["e2m1"].get_ydata(), np.array(expect) + 0.05, atol=1e-12)
    # at N = 1M, D = 1e7 one bf16 seed diverged: the point is the other seed alone
    assert _lines(axes[0])["bf16"].get_ydata()[0] == pytest.approx(5.0 + 0.01)


def test_penalty_vs_bits_is_loss_above_baseline():
    fig = penalty_vs_bits(_runs())
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["E = 1", "E = 2", "E = 4"]
    pen = {ax.get_title(): _lines(ax)["N = 4.00M"].get_ydata()[0] for ax in axes}
    assert pen == pytest.approx({"E = 1": 0.5, "E = 2": 0.05, "E = 4": 0.01}, abs=1e-12)


def test_no_runs_is_a_clear_error():
    df = _runs()
    with pytest.raises(ValueError, match="no quantized runs"):
        penalty_vs_bits(df, block=512)
