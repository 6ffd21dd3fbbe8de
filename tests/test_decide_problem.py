"""The decision problem: format names, cost models and the errors bad input gets."""

import numpy as np
import pytest

from bayesfp.decide.problem import (
    FlopCost,
    ThroughputCost,
    make_problem,
    parse_format,
    parse_formats,
    read_throughput,
)


def test_named_formats():
    fmts = parse_formats("e2m1, E3M2,fp8_e4m3,bf16")
    assert [f.name for f in fmts] == ["e2m1", "e3m2", "e4m3", "bf16"]
    assert [(f.E, f.M, f.P) for f in fmts] == [(2, 1, 4), (3, 2, 6), (4, 3, 8), (8, 7, 16)]
    assert [f.B for f in fmts] == ["128", "128", "128", "none"]
    assert fmts[-1].operands == "none" and not fmts[-1].quantized
    assert fmts[0].operands == "w+w_bwd+x_bwd"


def test_blocks_and_tuples():
    assert parse_format("e4m3/32").B == "32"
    assert parse_format("e4m3/channel").B == "channel"
    assert parse_format("e4m3", block="channel").B == "channel"
    f = parse_format((3, 2, 512))
    assert (f.E, f.M, f.B, f.name) == (3, 2, "512", "e3m2/512")
    assert parse_format((3, 2)).name == "e3m2"


@pytest.mark.parametrize("spec, key", [
    ("e9", "formats"), ("int8", "formats"), ("e0m3", "formats"), ("bf16/32", "formats"),
    ("e4m3/0", "block"), ("e4m3/abc", "block"), ("e2m1,e2m1", "formats"), ("", "formats"),
])
def test_bad_formats_name_the_key(spec, key):
    with pytest.raises(ValueError, match=f"^{key}:"):
        parse_formats(spec)


def test_flop_cost_is_sun_et_al():
    cost = FlopCost()
    bf16, e4m3 = parse_formats("bf16,e4m3")
    assert cost.cost(bf16, 1e9, 1e10) == pytest.approx(6 * 1e9 * 1e10)
    assert cost.cost(e4m3, 1e9, 1e10) == pytest.approx(6 * 8 / 16 * 1e9 * 1e10)
    assert FlopCost(k=1.0, b=2.0).cost(e4m3, 2.0, 3.0) == pytest.approx(10 * 6)


def test_throughput_cost_in_gpu_hours(tmp_path):
    csv = tmp_path / "tp.csv"
    csv.write_text("format,tokens_per_s,N\nbf16,1000,1e8\nfp8_e4m3,2000,1e8\n")
    cost = read_throughput(csv)
    bf16, e4m3 = parse_formats("bf16,e4m3")
    # 3.6e9 tokens at 1000 tokens/s is one hour at N = 1e8; twice the model, twice the time.
    assert cost.cost(bf16, 1e8, 3.6e9) == pytest.approx(1000.0)
    assert cost.cost(bf16, 2e8, 3.6e6) == pytest.approx(2.0)
    assert cost.cost(e4m3, 1e8, 3.6e6) == pytest.approx(0.5)
    flat = ThroughputCost({"bf16": 1000.0})
    assert flat.cost(bf16, 5e9, 3.6e6) == pytest.approx(1.0)


def test_situations():
    assert make_problem(budget=1e21).mode == "budget"
    assert make_problem(budget=1e21, N=1e9).mode == "budget_N"
    assert make_problem(budget=1e21, D=1e11).mode == "budget_D"
    p = make_problem(N=1e9, D=1e11, price=1e-21)
    assert p.mode == "fixed" and p.price == 1e-21


@pytest.mark.parametrize("kw, key", [
    (dict(), "budget"),
    (dict(N=1e9), "budget"),
    (dict(D=1e9), "budget"),
    (dict(budget=-1e21), "budget"),
    (dict(budget=0), "budget"),
    (dict(budget=float("inf")), "budget"),
    (dict(budget="lots"), "budget"),
    (dict(budget=1e21, N=1e9, D=1e10), "budget"),
    (dict(N=-5, D=1e9), "N"),
    (dict(budget=1e21, D=0), "D"),
    (dict(budget=1e21, price=-1.0), "price"),
    (dict(budget=1e21, formats="e4m3,fp7"), "formats"),
    (dict(budget=1e21, k=0), "k"),
    (dict(budget=1e21, throughput={"bf16": 100.0}), "throughput"),
    (dict(N=1e9, D=1e10, throughput={"e4m3": 100.0}), "throughput"),
])
def test_bad_problems_raise_one_line_value_errors(kw, key):
    with pytest.raises(ValueError, match=f"^{key}:") as exc:
        make_problem(**kw)
    assert "\n" not in str(exc.value)


def test_throughput_csv_needs_its_columns(tmp_path):
    csv = tmp_path / "tp.csv"
    csv.write_text("format,speed\nbf16,1\n")
    with pytest.raises(ValueError, match="^throughput:"):
        read_throughput(csv)
    with pytest.raises(FileNotFoundError):
        read_throughput(tmp_path / "missing.csv")


def test_fixed_n_with_throughput_needs_no_reference_size():
    p = make_problem("e4m3,bf16", budget=10.0, N=1e8,
                     throughput={"e4m3": 2000.0, "bf16": 1000.0})
    assert p.cost.unit == "GPU-hours"
    assert np.isclose(p.cost.cost(p.formats[0], 1e8, 7.2e7), 10.0)


def test_flat_cost_charges_every_format_as_bf16():
    from bayesfp.decide.problem import make_problem

    bits = make_problem("e2m1,e4m3,bf16", budget=1e20)
    flat = make_problem("e2m1,e4m3,bf16", budget=1e20, cost="flat")
    # 6/16 FLOPs per parameter, token and bit: 1.5, 3 and 6 per bit width; flat: 6 for all
    assert [bits.cost.rate(f) for f in bits.formats] == [1.5, 3.0, 6.0]
    assert [flat.cost.rate(f) for f in flat.formats] == [6.0, 6.0, 6.0]
