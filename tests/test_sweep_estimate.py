"""Time estimates: the quantized slowdown read from measured throughput, and corrections of an
unmeasured size in one kind by its finished runs in the other."""

import pytest

from training.sweep import estimate
from training.sweep.estimate import Estimator
from training.sweep.grid import expand, load_grid

GRID = """
[fixed]
data = "training/data/sample"
seq_len = 64
tokens = 65536
device = "cuda"

[axes]
model = ["100k", "200k"]
format = ["bf16", "e4m3"]
granularity = ["channel"]
"""


def _runs(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    runs = {(r.resolved.model, r.kind): r for r in expand(load_grid(path)).runs}
    assert set(runs) == {("100k", "bf16"), ("100k", "quant"), ("200k", "bf16"),
                         ("200k", "quant")}
    return runs


def test_quant_slowdown_is_the_median_measured_ratio(tmp_path):
    table = {("430k", "bf16"): 3.0e6, ("430k", "quant"): 2.0e6,  # 1.5x
             ("850k", "bf16"): 2.0e6, ("850k", "quant"): 1.6e6,  # 1.25x
             ("1.7m", "bf16"): 1.0e6}  # no quant measurement: not used
    est = Estimator("gpu", 1, table)
    # median of two values is their mean
    assert est.quant_slowdown() == (pytest.approx(1.375), 2)
    runs = _runs(tmp_path)
    bf, q = est.tokens_per_s(runs[("100k", "bf16")]), est.tokens_per_s(runs[("100k", "quant")])
    assert bf[1] == q[1] == "assumed"
    assert bf[0] / q[0] == pytest.approx(1.375)
    assert any("1.38x slower (median of 2 measured sizes)" in a for a in est.assumptions())
    # without pairs the constant is assumed and said so
    alone = Estimator("gpu", 1, {("1.7m", "bf16"): 1.0e6})
    assert alone.quant_slowdown() == (estimate.QUANT_SLOWDOWN, 0)
    assert any(f"{estimate.QUANT_SLOWDOWN:.2f}x slower (assumed)" in a
               for a in alone.assumptions())


def test_unrun_kind_is_corrected_by_the_same_size(tmp_path):
    runs = _runs(tmp_path)
    est = Estimator("gpu", 1)
    b100, q100, b200 = runs[("100k", "bf16")], runs[("100k", "quant")], runs[("200k", "bf16")]
    est.observe(b100, 3.0 * est.predicted(b100))  # 100k bf16 ran 3x slower than predicted
    est.observe(b200, 0.5 * est.predicted(b200))
    # 100k quant has not run: corrected by 100k bf16 (3x), not by the median of all (1.75x)
    assert est.seconds(q100) == pytest.approx(3.0 * est.predicted(q100))
    # a size with no run at all takes the median of every finished run
    q200 = runs[("200k", "quant")]
    assert est.seconds(q200) == pytest.approx(0.5 * est.predicted(q200))  # its own bf16
    fresh = Estimator("gpu", 1)
    fresh.observe(b100, 3.0 * fresh.predicted(b100))
    fresh.observe(q100, 1.0 * fresh.predicted(q100))
    assert fresh.seconds(q200) == pytest.approx(2.0 * fresh.predicted(q200))


def test_a_run_timed_at_another_packing_corrects_this_one(tmp_path):
    runs = _runs(tmp_path)
    b100 = runs[("100k", "bf16")]
    at8, at2 = Estimator("gpu", 8), Estimator("gpu", 2)
    # a run that took exactly its prediction at 8 per GPU: no correction at 2 per GPU
    at2.observe(b100, at8.predicted(b100), per_device=8)
    assert at2.seconds(b100) == pytest.approx(at2.predicted(b100))
    # 8 per GPU gain no more than 4: a run's share of the GPU is 8 / 2.0 there, 2 / 1.35 here
    assert at8.predicted(b100) - estimate.STARTUP_S["gpu"] == pytest.approx(
        (at2.predicted(b100) - estimate.STARTUP_S["gpu"]) * (8 / 2.0) / (2 / 1.35))
    # without the packing it ran at, the record is read as made at this sweep's: it then
    # predicts the time at 8 per GPU for a run at 2
    naive = Estimator("gpu", 2)
    naive.observe(b100, at8.predicted(b100))
    assert naive.seconds(b100) == pytest.approx(at8.predicted(b100))
    assert at8.predicted(b100) > at2.predicted(b100)
