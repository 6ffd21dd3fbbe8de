"""Grid files: expansion counts, include/exclude, collapsing duplicates, stable run ids, errors,
and the shipped grids (the real one checked against the design it promises)."""

import dataclasses
import json
import math
import re
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("torch")

from training.config import NOT_IN_ID, TrainConfig, resolve  # noqa: E402
from training.model import SIZES  # noqa: E402
from training.record import run_id  # noqa: E402
from training.sweep.grid import FIELDS, expand, load_grid, point_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "training/data/sample"
BASE = {"model": "test", "seq_len": 64, "data": SAMPLE, "ptq_formats": ""}


def grid(**parts):
    return {"fixed": dict(BASE), **parts}


def test_product_include_exclude_counts():
    g = grid(axes={"tokens": [4096, 8192], "format": ["e4m3", "e2m1", "e3m2"],
                   "granularity": [32, "channel", "tensor"]},
             include=[{"format": "bf16", "tokens": [4096, 8192]},
                      {"format": "e4m3", "tokens": 4096, "granularity": "32",
                       "operands": ["x", "all"]}],
             exclude=[{"format": "e2m1", "granularity": ["channel", "tensor"]},
                      {"format": "E3M2", "granularity": 32, "tokens": 8192}])
    plan = expand(g)
    # axes 2*3*3 = 18, minus e2m1 channel/tensor (4) and e3m2 B32 at 8192 (1) = 13; plus 2 + 2
    assert plan.n_points == 17 and len(plan.runs) == 17
    fmts = Counter(r.resolved.format for r in plan.runs)
    assert fmts == {"e4m3": 8, "e2m1": 2, "e3m2": 5, "bf16": 2}
    ops = Counter(r.resolved.operands for r in plan.runs)
    assert ops["x"] == 1 and ops["x+w+dy+w_bwd+dy2+x_bwd"] == 1 and ops["none"] == 2
    assert not any(r.resolved.format == "e2m1" and r.resolved.granularity != "32"
                   for r in plan.runs)
    # file order: axes in key order first, then the includes
    assert [r.resolved.format for r in plan.runs[:3]] == ["e4m3"] * 3
    assert plan.runs[-1].resolved.operands == "x+w+dy+w_bwd+dy2+x_bwd"


def test_duplicates_collapse():
    g = grid(axes={"format": ["bf16", "e4m3"], "granularity": [32, "channel", "none"],
                   "operands": ["w+w_bwd+x_bwd", "x_bwd+w+W_BWD"], "tokens": [4096, 4100]},
             exclude=[{"format": "e4m3", "granularity": "none"}])
    plan = expand(g)
    # bf16: every granularity/operands/tokens-rounding variant is one baseline; e4m3: 2 blocks
    assert len(plan.runs) == 3
    assert plan.n_points == 2 * 3 * 2 * 2 - 4 and plan.n_duplicates == plan.n_points - 3
    base = [r for r in plan.runs if not r.quantized]
    assert len(base) == 1 and base[0].resolved.operands == "none" and base[0].D == 4096


def test_ids_are_the_trainers_and_stable():
    plan = expand(grid(axes={"format": ["bf16", "e4m3"], "granularity": ["32"]}))
    again = expand(grid(axes={"granularity": ["32"], "format": ["e4m3", "bf16"]}))
    assert {r.run_id for r in plan.runs} == {r.run_id for r in again.runs}
    for r in plan.runs:
        assert r.run_id == run_id(resolve(r.config, False), r.corpus_hash)
        assert len(r.run_id) == 12


# one valid change of every field that enters the id
CHANGES = {
    "model": "100k", "seq_len": 32, "batch_size": 4, "tokens": 8192, "lr": 0.01,
    "min_lr_frac": 0.2, "warmup_frac": 0.1, "weight_decay": 0.2, "beta1": 0.8, "beta2": 0.9,
    "grad_clip": 0.5, "seed": 3, "format": "e3m2", "granularity": "channel", "operands": "all",
    "convention": "ieee", "rounding": "stochastic", "quant_head": True, "eval_tokens": 1024,
    "eval_points": 2, "ptq_formats": "e2m1", "ptq_granularity": "tensor", "check_every": 7,
    "diverge_margin": 2.0, "train_pool": 100_000,
}


def test_any_field_change_gives_a_new_id():
    assert set(CHANGES) == set(FIELDS) - set(NOT_IN_ID), "a field is missing from CHANGES"
    point = BASE | {"format": "e4m3", "granularity": "32", "tokens": 4096}
    ref = expand(grid(axes={"format": "e4m3", "granularity": "32", "tokens": 4096})).runs[0]
    seen = {ref.run_id}
    for key, value in CHANGES.items():
        run = expand({"fixed": point, "axes": {key: [value]}}).runs[0]
        assert run.run_id not in seen, key
        seen.add(run.run_id)
    for key, value in {"device": "cpu", "cuda_graph": False, "group": "x", "backend": "reference",
                       "out": "r.json", "data": str(ROOT / SAMPLE)}.items():
        assert expand({"fixed": point, "axes": {key: [value]}}).runs[0].run_id == ref.run_id, key


@pytest.mark.parametrize("g, message", [
    ({"fixed": BASE, "axes": {"format": ["e4m3"]}, "sweep": 1}, "grid: unknown key 'sweep'"),
    (grid(axes={"fromat": ["e4m3"]}), "axes: unknown config key 'fromat'"),
    (grid(axes={"tokens": ["many"]}), "axes: tokens: expected int, got str"),
    (grid(axes={"seed": [1.5]}), "axes: seed: expected int, got float"),
    (grid(axes={"format": []}), "axes: format: empty list"),
    ({"fixed": BASE | {"seed": [1, 2]}, "axes": {"format": "bf16"}},
     "fixed: seed: expected one"),
    (grid(), "grid: empty (no axes and no include)"),
    (grid(axes={"format": ["e4m3"]}, exclude=[{"format": "e4m3"}]),
     "grid: empty (every point is excluded)"),
    (grid(axes={"format": ["e4m3"], "granularity": ["none"]}),
     "axes: granularity: 'none' with format"),
    (grid(axes={"format": ["e9m3"]}), "axes: format: format 'e9m3' out of range"),
    (grid(axes={"granularity": ["48"], "format": "e4m3"}), "axes: granularity: block size 48"),
    (grid(include=[{"tokens": 64}]), "include 1: tokens: 64 is less than one step"),
    (grid(include="x"), "include: expected an array of tables"),
])
def test_errors_name_the_key(g, message):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        expand(g)


def test_load_grid_files(tmp_path):
    (tmp_path / "g.json").write_text(json.dumps(grid(axes={"format": ["bf16"]})))
    assert len(expand(load_grid(tmp_path / "g.json")).runs) == 1
    (tmp_path / "g.toml").write_text('[axes]\nformat = ["bf16"\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        load_grid(tmp_path / "g.toml")
    (tmp_path / "g.yaml").write_text("")
    with pytest.raises(ValueError, match="must end in .toml or .json"):
        load_grid(tmp_path / "g.yaml")
    with pytest.raises(ValueError, match="file not found"):
        load_grid(tmp_path / "none.toml")


def test_cli_bad_grid_is_one_line(tmp_path, capsys):
    from training.cli import main

    (tmp_path / "g.toml").write_text('[axes]\nformat = ["e4m3"]\nfromat = ["x"]\n')
    with pytest.raises(SystemExit) as exc:
        main(["sweep", str(tmp_path / "g.toml"), "--out", str(tmp_path / "r.jsonl")])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: axes: unknown config key 'fromat'"


def test_cpu_test_grid():
    plan = expand(load_grid(ROOT / "grids" / "cpu-test.toml"))
    assert len(plan.runs) == 17 and plan.n_duplicates == 2
    assert all(r.resolved.model == "test" for r in plan.runs)


def test_real_grid_design():
    """grids/fp-h100.toml, expanded on the shipped sample (the corpus is not in CI): the design
    docs/sweeps.md promises."""
    g = load_grid(ROOT / "grids" / "fp-h100.toml")
    assert g["fixed"]["data"] == "data/corpus"
    g["fixed"]["data"] = SAMPLE
    runs = expand(g).runs
    assert len(runs) >= 400
    n = sorted({r.N for r in runs})
    d = sorted({r.D for r in runs})
    assert len(n) >= 5 and n[-1] / n[0] >= 10
    assert len(d) >= 4 and d[-1] / d[0] >= 8
    assert all(x % 16384 == 0 for x in d)
    assert d[-1] / 22_002_559 <= 2.0  # epochs of the corpus's train split
    base = [r for r in runs if not r.quantized]
    assert {(r.N, r.D) for r in base} == {(r.N, r.D) for r in runs}
    assert all(r.resolved.ptq_formats for r in base)
    fmts = {r.resolved.format for r in runs if r.quantized}
    assert {"e2m1", "e2m2", "e3m2", "e3m3", "e4m3", "e5m2", "e1m0", "e1m1"} <= fmts
    em = [tuple(int(x) for x in f[1:].split("m")) for f in fmts]
    assert {e for e, _ in em} >= {1, 2, 3, 4, 5} and {m for _, m in em} >= set(range(7))
    blocks = {r.resolved.granularity for r in runs if r.quantized}
    assert {"32", "128", "channel", "tensor"} <= blocks
    paper = "w+w_bwd+x_bwd"
    assert all(r.resolved.operands == paper for r in runs
               if r.quantized and r.resolved.granularity == "128"
               and r.resolved.model not in ("430k", "1.7m"))
    ops = {r.resolved.operands for r in runs}
    assert {"x", "w", "dy", "w_bwd", "dy2", "x_bwd", "x+w+dy+w_bwd+dy2+x_bwd", paper} <= ops
    configs = Counter(json.dumps(dataclasses.asdict(dataclasses.replace(r.resolved, seed=0)))
                      for r in runs)
    assert sum(c > 1 for c in configs.values()) >= 0.1 * len(configs)
    for r in runs:  # every block size tiles its model's widths
        if r.quantized and r.resolved.granularity.isdigit():
            s = SIZES[r.resolved.model]
            assert math.gcd(s.n_embd, s.n_hidden) % int(r.resolved.granularity) == 0


def test_point_config_rounds_tokens_to_steps():
    cfg = point_config(BASE | {"tokens": 5000, "format": "e4m3", "granularity": 32})  # 512/step
    assert isinstance(cfg, TrainConfig) and cfg.tokens == 4608 and cfg.granularity == "32"
