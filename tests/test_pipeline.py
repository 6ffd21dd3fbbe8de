"""The main job's choices before any fit: the default budget and what it pools over."""

import pandas as pd
import pytest

from bayesfp.errors import BayesfpInputError
from bayesfp.pipeline import default_budget, keep_where, resolve_pool_by
from bayesfp.runs import validate_runs

ROWS = [  # run_id, N, D, E, M, B, operands, loss, status
    ("a", 1_000_000, 2e7, 4, 3, "128", "w", 3.5, "ok"),
    ("b", 2_000_000, 2e7, 4, 3, "128", "w", 3.4, "ok"),
    ("c", 2_000_000, 4e7, 2, 1, "32", "x", 3.6, "ok"),
    ("d", 4_000_000, 8e7, 2, 1, "32", "x", None, "diverged"),
    ("e", 2_000_000, 4e7, 8, 7, "none", "none", 3.3, "ok"),
]


def table(rows=ROWS):
    cols = ("run_id", "N", "D", "E", "M", "B", "operands", "loss", "status")
    df = pd.DataFrame(rows, columns=cols).assign(seed=0)
    df["group"] = ["y" if r[8] == "diverged" else "x" for r in rows]
    return validate_runs(df)[0]


def test_default_budget_is_ten_times_the_largest_ok_run():
    # the largest ok run is c or e: 6 * 2e6 * 4e7 = 4.8e14 FLOPs; the diverged d does not count
    assert default_budget(table()) == pytest.approx(4.8e15)


def test_auto_pools_over_operands_and_decides_for_the_commonest_set():
    assert resolve_pool_by(table(), "auto") == ("operands", "w")
    assert resolve_pool_by(table(), "none") == (None, None)
    assert resolve_pool_by(table(), "B") == ("B", "128")
    one_set = [r for r in ROWS if r[6] != "x"]
    assert resolve_pool_by(table(one_set), "auto") == (None, None)


def test_pool_by_a_missing_column_is_an_input_error():
    with pytest.raises(BayesfpInputError, match="^pool_by: the run table has no column 'cluster'"):
        resolve_pool_by(table(), "cluster")


def test_keep_where_reindexes_the_kept_runs():
    kept = keep_where(table(), ["group=x", "B=128,none"])
    assert list(kept["run_id"]) == ["a", "b", "e"] and list(kept.index) == [0, 1, 2]
    assert len(keep_where(table(), None)) == len(keep_where(table(), [])) == 5
