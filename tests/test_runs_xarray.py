"""xarray views of a run table: the run dataset and the design grid."""

import io
import itertools

import numpy as np
import pandas as pd
import pytest

from bayesfp.runs import to_grid, to_xarray

GOOD = """\
run_id,N,D,E,M,B,operands,loss,status,seed,ptq_loss_e2m1
r1,85000000,1e9,4,3,128,w+w_bwd+x_bwd,3.51,ok,0,3.9
r2,85000000,2e9,4,3,channel,w,3.42,ok,0,
r3,154000000,2e9,8,7,none,none,3.20,ok,1,
r4,154000000,2e9,2,1,32,dy2,,diverged,1,
r5,154000000,4e9,2,1,tensor,dy2,7.9,failed,2,
"""


def table():
    return pd.read_csv(io.StringIO(GOOD), dtype={"B": "str"})


def test_dataset_along_run():
    ds = to_xarray(table())
    assert ds.sizes == {"run": 5}
    assert list(ds["run"].values) == ["r1", "r2", "r3", "r4", "r5"]
    assert set(ds.data_vars) == {"loss", "ptq_loss_e2m1"}
    for name in ("N", "D", "E", "M", "P", "B", "block", "operands", "status", "seed", "format"):
        assert name in ds.coords and ds[name].dims == ("run",)
    assert list(ds["P"].values) == [8, 8, 16, 4, 4]
    np.testing.assert_array_equal(ds["block"].values, [128.0, np.nan, np.nan, 32.0, np.nan])
    assert ds["loss"].attrs["units"] == "nats/token"
    assert ds["N"].attrs["units"] == "non-embedding parameters"
    assert float(ds["loss"].sel(run="r2")) == 3.42
    assert np.isnan(float(ds["loss"].sel(run="r4")))


def test_grid_dims_coords_and_cells():
    grid = to_grid(table())
    assert grid.dims == ("N", "D", "format", "B", "operands", "seed")
    assert list(grid["N"].values) == [85_000_000, 154_000_000]
    assert list(grid["D"].values) == [1e9, 2e9]  # the failed run's D=4e9 is not an ok run
    assert list(grid["format"].values) == ["e4m3", "bf16"]  # ordered by bits
    assert list(grid["P"].values) == [8, 16] and list(grid["E"].values) == [4, 8]
    assert list(grid["B"].values) == ["128", "channel", "none"]
    np.testing.assert_array_equal(grid["block"].values, [128.0, np.nan, np.nan])
    assert list(grid["operands"].values) == ["none", "w", "w+w_bwd+x_bwd"]
    assert list(grid["seed"].values) == [0, 1]
    cell = dict(N=85_000_000, D=1e9, format="e4m3", B="128", operands="w+w_bwd+x_bwd", seed=0)
    assert float(grid.sel(cell)) == 3.51
    cell = dict(N=85_000_000, D=2e9, format="e4m3", B="channel", operands="w", seed=0)
    assert float(grid.sel(cell)) == 3.42
    cell = dict(N=154_000_000, D=2e9, format="bf16", B="none", operands="none", seed=1)
    assert float(grid.sel(cell)) == 3.20
    assert int(np.isfinite(grid.values).sum()) == 3
    assert grid.size == 2 * 2 * 2 * 3 * 3 * 2


def test_grid_with_all_runs_and_other_var():
    grid = to_grid(table(), only_ok=False)
    assert list(grid["format"].values) == ["e2m1", "e4m3", "bf16"]
    assert list(grid["B"].values) == ["32", "128", "tensor", "channel", "none"]
    assert int(np.isfinite(grid.values).sum()) == 4  # r4 diverged with no loss
    ptq = to_grid(table(), var="ptq_loss_e2m1")
    assert int(np.isfinite(ptq.values).sum()) == 1 and np.nanmax(ptq.values) == 3.9


def test_full_factorial_grid_has_no_holes():
    rows = []
    for k, (n, d, seed) in enumerate(itertools.product([1e6, 4e6], [1e8, 2e8, 4e8], [0, 1])):
        loss = 2.0 + 1e3 / n**0.3 + 1e3 / d**0.3
        rows.append(dict(run_id=f"g{k}", N=int(n), D=d, E=4, M=3, B="64", operands="w",
                         loss=loss, status="ok", seed=seed))
    grid = to_grid(pd.DataFrame(rows))
    assert grid.shape == (2, 3, 1, 1, 1, 2)
    want = 2.0 + 1e3 / np.array([1e6, 4e6])[:, None] ** 0.3 + 1e3 / np.array([1e8, 2e8, 4e8]) ** 0.3
    np.testing.assert_allclose(grid.values[:, :, 0, 0, 0, 0], want, rtol=0, atol=0)
    np.testing.assert_allclose(grid.values[:, :, 0, 0, 0, 1], want, rtol=0, atol=0)


def test_grid_rejects_two_runs_in_one_cell_and_bad_var():
    df = table()
    extra = df.iloc[[0]].assign(run_id="r1b", group="other")
    with pytest.raises(ValueError, match="r1, r1b share one grid cell"):
        to_grid(pd.concat([df, extra], ignore_index=True))
    with pytest.raises(ValueError, match="var 'status' is not a numeric"):
        to_grid(df, var="status")
    with pytest.raises(ValueError, match="var 'nope' is not a column"):
        to_grid(df, var="nope")
