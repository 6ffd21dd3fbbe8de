"""Write the simulated demo run table that ships as the default data (bayesfp/data/demo_runs.csv).

The losses come from the Sun et al. (2025) law with its published constants (Table 2) on a grid
like the paper's: N in {41, 85, 154, 679}M, D in {10, 20, 50, 100}B tokens, nine (E, M) formats,
block sizes {32, 128, 512}, the paper's quantized operands (w, w_bwd, x_bwd), BF16 baselines,
plus a sub-grid with all six operands quantized whose precision sensitivity is truly higher
(log gamma lower by 0.7) so that pooling by operands has something to find. Noise: 1% on the
loss (log-normal), a second seed on 10% of the configurations, and a few of the 4-bit-or-less
runs marked diverged. Every simulated run says so in its ``source`` column.

Usage: python scripts/make_demo_data.py [OUT.csv]
"""

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from bayesfp.laws import SUN_2025
from bayesfp.simulate import (
    PAPER_BLOCKS,
    PAPER_D,
    PAPER_FORMATS,
    PAPER_N,
    run_grid,
    simulate_runs,
)

ALL6 = "x+w+dy+w_bwd+dy2+x_bwd"


def main(out: Path) -> None:
    main_grid = run_grid(PAPER_N, PAPER_D, PAPER_FORMATS, PAPER_BLOCKS)
    sub = run_grid(PAPER_N, PAPER_D, ((2, 1), (3, 2), (4, 3)), (128,), operands=(ALL6,),
                   baselines=False)
    grid = pd.concat([main_grid, sub], ignore_index=True)
    rng = np.random.default_rng(1)
    rep = grid.sample(frac=0.10, random_state=rng).assign(seed=1)
    rep["run_id"] = rep["run_id"] + "-s1"
    grid = pd.concat([grid, rep], ignore_index=True)
    df = simulate_runs(grid, SUN_2025, law="sun", sigma=0.01, seed=2,
                       group_offsets={ALL6: -0.7}, diverge={"max_P": 4, "rate": 0.1})
    df["source"] = "simulated: Sun et al. 2025 law, published constants, 1% noise"
    df = df.drop(columns=["loss_true"])
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    df.to_csv(tmp, index=False, float_format="%.6g")
    tmp.replace(out)
    print(f"wrote {len(df)} runs ({(df.status != 'ok').sum()} diverged) to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else
         Path(__file__).resolve().parents[1] / "bayesfp" / "data" / "demo_runs.csv")
