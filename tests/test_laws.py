"""The law library against published check values and independent expressions."""

import numpy as np
import pytest
import xarray as xr
from scipy.optimize import minimize_scalar

from bayesfp.laws import (
    CHINCHILLA_HOFFMANN,
    KUMAR_2024,
    LAWS,
    SUN_2025,
    best_split,
    block_log2,
    chinchilla_optimal,
    compute_optimal,
    critical_data_size,
    critical_data_size_ptq,
    get_law,
    optimal_split_continuous,
)


def sig3(x):
    return float(f"{x:.3g}")


# laws.md: N = 1e9, B = 128: BF16 (E8M7) 1730T tokens, FP8 E4M3 27.3T, FP4 E2M1 0.393T.
@pytest.mark.parametrize("E,M,tokens", [(8, 7, 1730e12), (4, 3, 27.3e12), (2, 1, 0.393e12)])
def test_sun_critical_data_size_check_values(E, M, tokens):
    got = critical_data_size(SUN_2025, N=1e9, E=E, M=M, log2B=np.log2(128))
    assert sig3(got) == sig3(tokens)


def test_sun_dcrit_is_the_minimum_of_the_loss_in_D():
    law = get_law("sun")
    x = dict(N=np.array([1e9]), E=np.array([4.0]), M=np.array([3.0]), log2B=np.array([7.0]))

    def loss_at(logD):
        return float(law.loss(SUN_2025, dict(x, D=np.array([np.exp(logD)])))[0])

    res = minimize_scalar(loss_at, bounds=(np.log(1e10), np.log(1e16)), method="bounded",
                          options={"xatol": 1e-10})
    assert np.exp(res.x) == pytest.approx(27.33e12, rel=1e-3)


# Sun et al.'s optimal-layout table, written by hand from the paper.
PAPER_LAYOUT = {4: (2, 1), 5: (2, 2), 6: (3, 2), 7: (3, 3), 8: (4, 3), 9: (4, 4), 10: (5, 4),
                11: (5, 5), 12: (6, 5), 16: (8, 7)}


@pytest.mark.parametrize("P", sorted(PAPER_LAYOUT))
def test_optimal_layout_table(P):
    e, m = best_split(SUN_2025, P)
    assert (int(e), int(m)) == PAPER_LAYOUT[P]
    E_opt, M_opt = optimal_split_continuous(SUN_2025, P)
    assert E_opt + M_opt == pytest.approx(P - 1)
    # rounding the continuous optimum gives the same table
    assert (round(float(E_opt)), P - 1 - round(float(E_opt))) == PAPER_LAYOUT[P]


def test_best_split_is_direct_evaluation_of_the_loss():
    law = get_law("sun")
    for P in range(3, 13):
        losses = {}
        for E in range(1, min(8, P - 1) + 1):
            M = P - 1 - E
            x = dict(N=np.array([1e8]), D=np.array([1e10]), E=np.array([E]), M=np.array([M]),
                     log2B=np.array([5.0]))
            losses[(E, M)] = float(law.loss(SUN_2025, x)[0])
        e, m = best_split(SUN_2025, P)
        assert min(losses, key=losses.get) == (int(e), int(m))


# laws.md: compute-optimal P from a direct numerical minimisation.
@pytest.mark.parametrize("C,P", [(1e21, 4.19), (1e23, 4.72), (1e25, 5.31), (1e27, 5.98),
                                 (1e29, 6.73), (1e31, 7.58)])
def test_compute_optimal_precision_check_values(C, P):
    r = compute_optimal(SUN_2025, C, "sun", k=6 / 16, b=0, log2B=7.0)
    assert round(float(r["P"]), 2) == P
    assert float(r["N"] * r["D"] * r["P"]) * 6 / 16 == pytest.approx(C, rel=1e-9)


def test_compute_optimal_vectorised_over_draws():
    draws = {k: np.full(5, v) for k, v in SUN_2025.items()}
    draws["nu"] = np.linspace(2.5, 3.5, 5)
    r = compute_optimal(draws, 1e21)
    assert r["P"].shape == (5,)
    single = compute_optimal(dict(SUN_2025, nu=3.0), 1e21)
    assert float(r["P"][2]) == pytest.approx(float(single["P"]), rel=1e-6)


def test_chinchilla_compute_optimal_matches_brute_force():
    law = get_law("chinchilla")
    C = 5.76e23   # Chinchilla's budget
    N_opt, D_opt = chinchilla_optimal(CHINCHILLA_HOFFMANN, C)
    Ns = np.exp(np.linspace(np.log(1e9), np.log(1e12), 200_001))
    L = law.loss(CHINCHILLA_HOFFMANN, {"N": Ns, "D": C / (6 * Ns)})
    assert float(N_opt) == pytest.approx(Ns[np.argmin(L)], rel=1e-3)
    assert float(D_opt) == pytest.approx(C / (6 * float(N_opt)))


def test_sun_loss_against_hand_formula():
    n, a, d, b, eps, g, dl, nu = (SUN_2025[k] for k in
                                  ("n", "alpha", "d", "beta", "eps", "gamma", "delta", "nu"))
    N, D, E, M, B = 85e6, 20e9, 3, 2, 32
    hand = (n / N ** a + d / D ** b + eps
            + (D ** b / N ** a) * np.log2(B) / (g * (E + 0.5) ** dl * (M + 0.5) ** nu))
    got = get_law("sun").loss(SUN_2025, dict(N=N, D=D, E=E, M=M, log2B=np.log2(B)))
    assert float(got) == pytest.approx(hand, rel=1e-12)


def test_kumar_loss_against_hand_formula_and_high_precision_limit():
    p = dict(KUMAR_2024)
    N, D, Pw, Pa, Pkv = 110e6, 13e9, 4.0, 8.0, 16.0
    neff = N
    for P, g, o in ((Pw, "gamma_w", "n_w"), (Pa, "gamma_a", "n_a"), (Pkv, "gamma_kv", "n_kv")):
        neff *= 1 - np.exp(-(P - p[o]) / p[g])
    hand = p["n"] * neff ** -p["alpha"] + p["d"] * D ** -p["beta"] + p["eps"]
    x = dict(N=N, D=D, P_w=Pw, P_a=Pa, P_kv=Pkv)
    assert float(get_law("kumar").loss(p, x)) == pytest.approx(hand, rel=1e-12)
    big = dict(N=N, D=D, P_w=200.0, P_a=200.0, P_kv=200.0)
    chin = get_law("chinchilla").loss(p, dict(N=N, D=D))
    assert float(get_law("kumar").loss(p, big)) == pytest.approx(float(chin), rel=1e-12)


def test_kumar_ptq_critical_data_size_is_the_minimum():
    p = dict(KUMAR_2024, gamma_post=1.0)
    law = get_law("kumar_ptq")
    N, Ppost = 30e6, 4.0
    D_crit = float(critical_data_size_ptq(p, N, Ppost))
    x = dict(N=np.array([N]), P_w=np.array([16.0]), P_a=np.array([16.0]),
             P_kv=np.array([16.0]), P_post=np.array([Ppost]))

    def loss_at(logD):
        return float(law.loss(p, dict(x, D=np.array([np.exp(logD)])))[0])

    res = minimize_scalar(loss_at, bounds=(np.log(1e6), np.log(1e16)), method="bounded",
                          options={"xatol": 1e-10})
    assert np.exp(res.x) == pytest.approx(D_crit, rel=1e-3)


@pytest.mark.parametrize("name", sorted(LAWS))
def test_numpy_and_pytensor_give_the_same_loss(name):
    import pytensor
    import pytensor.tensor as pt

    from bayesfp.laws import PUBLISHED

    law = get_law(name)
    params = {k: v for k, v in PUBLISHED[name].items() if k in law.param_names}
    if name == "kumar_ptq":
        params["gamma_post"] = 1.3
    rng = np.random.default_rng(0)
    x = dict(N=rng.uniform(1e6, 1e9, 7), D=rng.uniform(1e8, 1e11, 7), E=rng.integers(1, 6, 7),
             M=rng.integers(0, 6, 7), log2B=rng.uniform(0, 9, 7), P_w=rng.uniform(4, 16, 7),
             P_a=rng.uniform(4, 16, 7), P_kv=np.full(7, 16.0), P_post=rng.uniform(3, 8, 7))
    x = {k: np.asarray(v, dtype=float) for k, v in x.items() if k in law.inputs}
    sym = {k: pt.dvector(k) for k in x}
    logp = {("log_" + k) if law.param(k).positive else k: np.log(v) if law.param(k).positive else v
            for k, v in params.items()}
    f = pytensor.function(list(sym.values()), law.loss(logp, sym, xp=pt))
    np.testing.assert_allclose(f(*x.values()), law.loss(params, x), rtol=1e-12)


def test_xarray_parameters_broadcast_over_runs():
    post = xr.Dataset({k: xr.DataArray(np.full((2, 3), v), dims=("chain", "draw"))
                       for k, v in SUN_2025.items()})
    x = dict(N=np.array([1e8, 2e8]), D=np.array([1e10, 1e10]), E=np.array([4, 2]),
             M=np.array([3, 1]), log2B=np.array([7.0, 7.0]))
    out = get_law("sun").loss(post, x)
    assert out.dims == ("chain", "draw", "run") and out.shape == (2, 3, 2)
    ref = get_law("sun").loss(SUN_2025, x)
    np.testing.assert_allclose(out.isel(chain=1, draw=2).values, ref)


def test_block_log2():
    np.testing.assert_allclose(block_log2(["32", 128, "channel", "none"]),
                               [5.0, 7.0, 13.1567, 0.0])
    with pytest.raises(ValueError, match="tensor"):
        block_log2(["tensor"])
    assert block_log2(["tensor"], tensor_log2b=20.0)[0] == 20.0
    with pytest.raises(ValueError, match="granularity"):
        block_log2(["rowwise"])


def test_unknown_law_and_missing_parameter_are_clear_errors():
    with pytest.raises(ValueError, match="unknown law"):
        get_law("kaplan")
    with pytest.raises(ValueError, match="gamma"):
        get_law("sun").loss({k: v for k, v in SUN_2025.items() if k != "gamma"},
                            dict(N=1e8, D=1e9, E=4, M=3, log2B=7.0))
