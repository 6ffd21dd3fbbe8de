"""``bayesfp decide`` end to end on a real Bayesian fit of simulated runs with known truth, and
the refusal of bad input by ``decision_for_report`` before the fit is read."""

import json

import numpy as np
import pytest

from bayesfp.bayes.io import save_fit
from bayesfp.bayes.models import model_for
from bayesfp.cli import main
from bayesfp.decide.analysis import decide
from bayesfp.decide.draws import PosteriorDraws, draws_from_fit
from bayesfp.decide.problem import make_problem
from bayesfp.decide.summary import decision_for_report
from bayesfp.errors import BayesfpInputError
from bayesfp.laws import SUN_2025
from bayesfp.simulate import PAPER_BLOCKS, PAPER_D, PAPER_FORMATS, PAPER_N, run_grid, simulate_runs

# The runs and sampler of tests/test_bayes_fit.py (same model, so the compiled sampler is
# shared within one test session): Sun's constants with a 5x larger penalty, 0.5% noise.
TRUTH = dict(SUN_2025, gamma=SUN_2025["gamma"] / 5.0)
FORMATS = "e2m1,e3m2,e4m3,bf16"


@pytest.fixture(scope="module")
def fit_path(tmp_path_factory):
    grid = run_grid(PAPER_N, PAPER_D, PAPER_FORMATS, PAPER_BLOCKS)
    runs = simulate_runs(grid, TRUTH, "sun", sigma=0.005, seed=1,
                         diverge={"max_P": 4, "rate": 0.3})
    fit = model_for("sun", runs, sampler=dict(draws=500, tune=700, seed=2)).fit()
    return save_fit(fit, tmp_path_factory.mktemp("decide") / "fit.nc")


def _truth_choice(problem):
    truth = PosteriorDraws("sun", {k: np.array([v]) for k, v in TRUTH.items()}, [0.005])
    return decide(truth, problem).choice.name


@pytest.mark.slow
@pytest.mark.parametrize("situation", [dict(budget=1e20, N=1e8), dict(N=1.5e8, D=1e11)])
def test_decide_command_picks_the_true_best(fit_path, tmp_path, capsys, situation):
    out = tmp_path / "decision.json"
    args = [a for key, value in situation.items() for a in (f"--{key}", str(value))]
    with pytest.raises(SystemExit) as exc:
        main(["decide", str(fit_path), "--formats", FORMATS, "-o", str(out), "--seed", "3", *args])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "Bayes-optimal choice" in text and "What to run next" in text
    res = json.loads(out.read_text())
    assert res["choice"] == _truth_choice(make_problem(FORMATS, **situation))
    pb = [c["p_best"] for c in res["candidates"]]
    assert sum(pb) == pytest.approx(1.0)
    regrets = {c["format"]: c["regret"] for c in res["candidates"]}
    assert regrets[res["choice"]] == pytest.approx(min(regrets.values()))
    assert res["evpi"] == pytest.approx(regrets[res["choice"]])
    ranks = res["next_runs"]
    assert [r["rank"] for r in ranks] == list(range(1, len(ranks) + 1))
    assert all(a["evsi_per_cost"] >= b["evsi_per_cost"] for a, b in zip(ranks, ranks[1:]))
    assert res["fit"]["gate_passed"]


@pytest.mark.slow
def test_budget_decision_for_report(fit_path):
    res = decision_for_report(fit_path, budget=1e21, formats=FORMATS, next_runs=None)
    assert res["situation"]["mode"] == "budget"
    assert res["choice"] == _truth_choice(make_problem(FORMATS, budget=1e21))
    assert res["next_runs"] is None
    for c in res["candidates"]:
        lo, hi = c["N_interval"]
        assert lo <= c["N"] <= hi
        assert c["cost"] == pytest.approx(1e21)
    assert res["evpi_allocation"] >= res["evpi"]
    assert any("extrapolated" in n for n in res["notes"])
    json.dumps(res)  # built-in types only


@pytest.mark.slow
def test_draws_from_fit_match_the_posterior(fit_path):
    draws = draws_from_fit(fit_path, thin=2)
    assert draws.size == 4 * 500 // 2
    assert set(draws.params) >= {"log_n", "alpha", "log_d", "beta", "eps", "log_gamma"}
    assert np.median(np.exp(draws.params["log_gamma"])) == pytest.approx(TRUTH["gamma"],
                                                                        rel=0.5)
    assert np.median(draws.sigma) == pytest.approx(0.005, rel=0.2)


@pytest.mark.parametrize("kw, key", [
    (dict(budget=1e21, formats="e2m1,fp5"), "formats"),
    (dict(), "budget"),
    (dict(N=1e9), "budget"),
    (dict(budget=-1.0), "budget"),
    (dict(budget=1e21, hdi_prob=1.0), "hdi_prob"),
])
def test_bad_input_is_an_input_error_before_loading(tmp_path, kw, key):
    with pytest.raises(BayesfpInputError, match=f"^{key}:"):
        decision_for_report(tmp_path / "absent.nc", **kw)


def test_missing_fit_file(tmp_path, capsys):
    with pytest.raises(FileNotFoundError):
        decision_for_report(tmp_path / "absent.nc", budget=1e21)
    with pytest.raises(SystemExit) as exc:
        main(["decide", str(tmp_path / "absent.nc"), "--budget", "1e21"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {tmp_path / 'absent.nc'}: No such file or directory"]
