"""The fit report: structure of the page, embedded figures, no external references, and the
numbers behind it."""

import base64
import html
import re
import time
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from report_fit import DECISION, rendered, small_fit

from bayesfp.report import quantities as q
from bayesfp.report.sections import SECTIONS, table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Collect(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if "id" in a:
            self.ids.add(a["id"])


def _parse(text):
    p = _Collect()
    p.feed(text)
    return p


@pytest.mark.slow
def test_report_structure_and_embedded_images():
    path = rendered()
    text = path.read_text(encoding="utf-8")
    page = _parse(text)
    # every section present, in order, and linked from the table of contents
    for anchor, _ in SECTIONS:
        assert anchor in page.ids
        assert f'href="#{anchor}"' in text
    starts = [text.index(f'<section id="{a}"') for a, _ in SECTIONS]
    assert starts == sorted(starts)
    # the verdict comes before the first section
    assert text.index('id="verdict"') < starts[0]
    # every image embedded as a decodable, non-trivial PNG
    imgs = [a for t, a in page.tags if t == "img"]
    assert len(imgs) >= 10
    for a in imgs:
        src = a["src"]
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1], validate=True)
        assert png[:8] == PNG_MAGIC
        assert len(png) > 5000
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert 300 <= width <= 1200 and height >= 150
        assert a.get("alt")
    # no external references of any kind
    assert "http://" not in text and "https://" not in text
    for tag, a in page.tags:
        for key in ("src", "href"):
            v = a.get(key)
            if v is None:
                continue
            assert v.startswith(("data:", "#")), (tag, key, v[:40])
        assert tag not in ("script", "link", "iframe")
    assert not re.search(r"url\(", text)
    # figures written as files too
    figs = sorted((path.parent / "figures").glob("*.png"))
    assert len(figs) == len(imgs)
    assert len(list((path.parent / "figures").glob("*.svg"))) == len(figs)


@pytest.mark.slow
def test_report_content_of_a_failing_fit():
    text = rendered().read_text(encoding="utf-8")
    fit = small_fit()
    from bayesfp.bayes.io import fit_info

    gate = fit_info(fit)["gate"]
    # 2 x 150 draws cannot reach ESS 400: the gate fails and the page says so at the top
    assert not gate["passed"]
    assert 'class="verdict fail"' in text
    assert "FAILED the diagnostics gate" in text
    for line in gate["failures"]:
        assert html.escape(line.split(" (")[0]) in text
    # data summary counts the diverged runs
    ndiv = int((fit["fit_data"]["status"].values == "diverged").sum())
    assert ndiv > 0 and f"{ndiv} diverged" in text
    # the paper's table and the published constants are shown
    assert "Sun et al." in text and "published" in text
    # the decision dict is rendered: its choice, candidates, EVPI and next runs
    assert "choose <strong>E4M3</strong>" in text
    assert "evpi" in text and "e3m2 N=1e9 D=1e11" in text
    assert "2.88 to 2.94" in text
    # held-out check was not requested
    assert "Not run." in text


@pytest.mark.slow
def test_report_without_decision_says_so(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.report import sections as S

    ctx = S.Context(tree=small_fit(), name="fit", runs=q.fit_table(small_fit()))
    body = S.decision(ctx, lambda *a: "")
    assert "No decision analysis was run." in body
    assert "--decision" in body


@pytest.mark.slow
def test_batched_compute_optimal_matches_per_budget():
    """The report puts all budgets through one search; it must equal one search per budget."""
    from bayesfp.bayes import derived as dv

    fit = q.thin(small_fit(), 40)
    tab = q.compute_optimal_table(fit, budgets=(1e21, 1e25), max_draws=40, prob=0.5)
    ref = dv.compute_optimal_precision(fit, [1e21, 1e25], k=q.COST_K)
    for i, c in enumerate((1e21, 1e25)):
        p = np.asarray(ref["P"].isel(C=i).values).ravel()
        assert tab.loc[i, "C"] == c
        assert tab.loc[i, "P"] == pytest.approx(np.median(p), rel=1e-6)
        assert tab.loc[i, "P_hi"] == pytest.approx(np.quantile(p, 0.75), rel=1e-6)


@pytest.mark.slow
def test_prior_draws_follow_stored_priors():
    fit = small_fit()
    pr = q.prior_draws(fit, n=20000, seed=1)
    from bayesfp.bayes.io import fit_info
    from bayesfp.bayes.priors import priors_from_json

    priors = priors_from_json(fit_info(fit)["priors"])
    for name in ("log_level", "k_N", "a_Q"):
        v = pr[name].values.ravel()
        assert v.mean() == pytest.approx(priors[name].mu, abs=0.05 * priors[name].sigma + 0.02)
        assert v.std() == pytest.approx(priors[name].sigma, rel=0.05)
    # law coefficients are induced: eps = exp(log_level) / (1 + e^k_N + e^k_D)
    eps = np.exp(pr["log_level"]) / (1 + np.exp(pr["k_N"]) + np.exp(pr["k_D"]))
    np.testing.assert_allclose(pr["eps"].values, eps.values, rtol=1e-10)


def test_as_decision_accepts_dicts_and_objects():
    d = q.as_decision(DECISION)
    assert list(d.candidates.index) == ["E2M1", "E4M3"]
    assert d.scalars == {"evpi": 0.0015}
    assert d.choice == "E4M3" and d.situation["budget"] == 1e21
    assert d.next_runs.index[0] == "e3m2 N=1e9 D=1e11"

    class Result:
        def __init__(self):
            self.candidates = pd.DataFrame({"candidate": ["a", "b"], "p_best": [0.3, 0.7]})
            self.evpi = 0.01

    r = q.as_decision(Result())
    assert list(r.candidates.index) == ["a", "b"] and r.scalars["evpi"] == 0.01
    with pytest.raises(ValueError, match="candidates"):
        q.as_decision({"evpi": 1.0})
    with pytest.raises(ValueError, match="empty"):
        q.as_decision({"candidates": []})


def test_tables_escape_text():
    df = pd.DataFrame({"x": ["<script>alert(1)</script>"], "y": [1.23456]},
                      index=pd.Index(["a&b"], name="k"))
    out = table(df)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "a&amp;b" in out and "1.23" in out and "1.2346" not in out


def test_thin_keeps_at_most_the_requested_draws():
    import xarray as xr

    post = xr.Dataset({"a": (("chain", "draw"), np.arange(4000.0).reshape(4, 1000))})
    ll = xr.Dataset({"l": (("chain", "draw", "run"), np.zeros((4, 1000, 3)))})
    obs = xr.Dataset({"l": ("run", np.zeros(3))})
    tree = xr.DataTree.from_dict({"posterior": post, "log_likelihood": ll,
                                  "observed_data": obs})
    tree.attrs["x"] = "y"
    th = q.thin(tree, 1000)
    assert th["posterior"].sizes["draw"] == 250
    assert th["log_likelihood"].sizes["draw"] == 250
    assert th["observed_data"].sizes["run"] == 3
    assert th.attrs["x"] == "y"
    assert q.thin(tree, 4000) is tree


@pytest.mark.slow
def test_new_runs_leave_out_tensor_wise_runs_and_say_so():
    import matplotlib

    matplotlib.use("Agg")

    from bayesfp.laws import SUN_2025
    from bayesfp.report import sections as S
    from bayesfp.simulate import run_grid, simulate_runs

    grid = run_grid(N=(300e6,), D=(20e9,), formats=((2, 1), (4, 3)), blocks=(128,), seeds=(0,))
    new = simulate_runs(grid, SUN_2025, sigma=0.01, seed=5)
    ok_quant = new[(new["operands"] != "none") & (new["status"] == "ok")]
    tensor = ok_quant.head(2).assign(B="tensor", run_id=["t0", "t1"])
    new = pd.concat([new.astype({"B": object}), tensor], ignore_index=True)
    ctx = S.Context(tree=small_fit(), name="fit", runs=q.fit_table(small_fit()), new_runs=new)
    body = S._new_runs(ctx, lambda *a: "")
    assert "2 tensor-wise runs of the given table are not predicted" in body
    n_pred = int((new["status"] == "ok").sum()) - 2
    assert f"{n_pred} runs of the given table are not in the fit" in body


@pytest.mark.slow
def test_heavy_tails_and_influential_runs_point_to_robust():
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.report import sections as S

    tree = small_fit().copy()
    # a tenth of the runs 25% above their fitted loss: far outside any 99% interval
    data = tree["fit_data"].to_dataset()
    idx = np.flatnonzero(data["status"].values == "ok")[::10]
    loss = data["loss"].values.copy()
    loss[idx] *= 1.25
    tree["fit_data"] = tree["fit_data"].to_dataset().assign(loss=("run", loss))
    ctx = S.Context(tree=tree, name="fit", runs=q.fit_table(tree))
    S.fit_quality(ctx, lambda *a: "")
    text = " ".join(ctx.warnings)
    assert "outside their 99% predictive intervals" in text
    assert "--robust" in text
    # the unmodified fit does not raise it
    ctx = S.Context(tree=small_fit(), name="fit", runs=q.fit_table(small_fit()))
    S.fit_quality(ctx, lambda *a: "")
    assert not any("99% predictive" in w for w in ctx.warnings)


def test_loo_pit_values_match_arviz():
    from arviz_stats.loo import loo_pit

    tree = q.thin(small_fit())
    ours = q.loo_pit_values(tree)["log_loss"]
    theirs = loo_pit(q.loo_pit_tree(tree), pareto_pit=True)["log_loss"]
    assert list(ours["run"].values) == list(theirs["run"].values)
    np.testing.assert_allclose(ours.values, theirs.values, rtol=0, atol=1e-12)
    assert ((ours.values > 0) & (ours.values < 1)).all()


def test_psis_loo_matches_arviz():
    import arviz as az

    from bayesfp.bayes.compare import PARETO_K_MAX, loo

    tree = small_fit()
    ours = loo(tree)
    res = az.loo(tree)
    k = np.asarray(res.pareto_k)
    runs = tree["log_likelihood"]["run"].values
    bad = [str(r) for r, kk in zip(runs, k, strict=True) if kk > PARETO_K_MAX]
    theirs = {"elpd": float(res.elpd), "se": float(res.se), "p_loo": float(res.p),
              "pareto_k_max": float(np.max(k)), "n_bad_k": len(bad), "bad_runs": bad,
              "warning": bool(res.warning)}
    assert ours.keys() == theirs.keys()
    for key in ("elpd", "se", "p_loo", "pareto_k_max"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-9, abs=1e-9), key
    for key in ("n_bad_k", "bad_runs", "warning"):
        assert ours[key] == theirs[key], key


def test_one_pass_intervals_and_coverage_match_per_level_quantiles():
    from bayesfp.bayes.compare import coverage
    from bayesfp.bayes.derived import SAMPLE_DIMS, central_intervals, predict_loss

    tree = q.thin(small_fit())
    runs = q.fit_table(tree, fitted_only=True)
    pred = predict_loss(tree, runs, noise=True, seed=0)
    obs = runs["loss"].to_numpy(dtype=float)
    levels = (0.5, 0.9, 0.99)
    got = central_intervals(pred, levels)
    want = {}
    for p in levels:
        lo = pred.quantile((1 - p) / 2, dim=SAMPLE_DIMS).values
        hi = pred.quantile(1 - (1 - p) / 2, dim=SAMPLE_DIMS).values
        assert (got[p][0].values == lo).all() and (got[p][1].values == hi).all()
        want[p] = float(((obs >= lo) & (obs <= hi)).mean())
    assert coverage(pred, obs, levels) == want


@pytest.mark.slow
def test_figures_drawn_by_workers_are_the_ones_drawn_here(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.report import html as H
    from bayesfp.report import sections as S

    tree = small_fit()
    pages = {}
    for workers in (0, 1, 2):
        ctx = S.Context(tree=tree, name="fit", runs=q.fit_table(tree),
                        decision=q.as_decision(DECISION))
        sink = H.FigureSink(tmp_path / f"w{workers}", workers=workers)
        page = H.render(ctx, sink, "fit")
        pages[workers] = re.sub(r"generated [^<]* by", "generated by", page)
        assert "\0" not in page
        files = sorted(p.name for p in (tmp_path / f"w{workers}").glob("*.png"))
        assert len(files) == len(re.findall("<img ", page)) >= 10
    assert pages[0] == pages[1] == pages[2]


def test_a_figure_that_fails_in_a_worker_raises_here(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.report import html as H

    def broken():
        raise RuntimeError("no figure")

    sink = H.FigureSink(tmp_path, workers=1)
    page = sink(broken, "broken", "a caption")
    with pytest.raises(RuntimeError, match="no figure"):
        sink.resolve(page)
    sink.close()


def test_a_worker_past_its_time_limit_is_stopped_and_the_figure_drawn_here(tmp_path,
                                                                            monkeypatch):
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bayesfp.report import html as H

    parent = os.getpid()

    def slow_in_a_worker():
        if os.getpid() != parent:  # the forked worker hangs
            time.sleep(60)
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        return fig

    monkeypatch.setattr(H, "WORKER_TIMEOUT_S", 0.5)
    sink = H.FigureSink(tmp_path, workers=1)
    page = sink(slow_in_a_worker, "slow", "a caption")
    t0 = time.monotonic()
    page = sink.resolve(page)
    assert time.monotonic() - t0 < 20
    png = (tmp_path / "slow.png").read_bytes()
    assert png.startswith(b"\x89PNG") and "\0" not in page


def test_answer_tables_use_every_posterior_draw():
    # the shipped fit has 8000 draws, the report's figures 1000: the critical-data-size and
    # split tables must still give the numbers of the whole posterior, as `bayesfp fit` does
    from pathlib import Path

    from bayesfp.bayes import derived as dv
    from bayesfp.bayes.io import load_fit
    from bayesfp.report import sections as S

    tree = load_fit(Path(__file__).resolve().parents[1] / "models" / "runs_sun.nc")
    n = tree["posterior"].sizes["chain"] * tree["posterior"].sizes["draw"]
    ctx = S.Context(tree=tree, name="fit", runs=q.fit_table(tree))
    assert ctx.thinned["posterior"].sizes["draw"] * ctx.thinned["posterior"].sizes["chain"] < n
    S.answers(ctx, lambda *a, **k: "")
    probs = dv.split_probabilities(tree, P=q.SPLIT_BITS, group=ctx.group)
    best = dv.best_splits(probs)
    st = ctx.facts["splits"]
    assert list(st["best"]) == list(best["format"])
    np.testing.assert_allclose(st["p_best"], best["probability"], rtol=0, atol=1e-12)
    # probabilities are counts over all n draws
    assert np.allclose(st["p_best"] * n, np.round(st["p_best"] * n), atol=1e-6)
    dct = ctx.facts["d_crit"]
    for _, r in dct.iterrows():
        e, m = (int(x) for x in r["format"][1:].split("M"))
        draws = dv.d_crit(tree, [r["N"]], [(e, m)], log2B=7.0, group=ctx.group).values
        assert draws.size == n
        assert r["median"] == pytest.approx(float(np.median(draws)), rel=1e-9)
