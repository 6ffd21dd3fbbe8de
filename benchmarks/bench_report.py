"""Time reports: ``write_report`` of a fresh demo fit, or the whole ``bayesfp report`` command.

    python benchmarks/bench_report.py              # fit once (not timed), report 3 times
    python benchmarks/bench_report.py --fit fit.nc --repeats 5
    python benchmarks/bench_report.py --cli models/runs_sun.nc \\
        --decision reports/runs/decision.json --baseline HEAD~3 --repeats 5

Without ``--cli`` it prints the wall and CPU time of each ``write_report`` call (the figure
workers' included) and the medians (CPU time is the better measure on a shared machine); the
fit is made with the default sampler settings (4 chains x 1000 draws) unless ``--fit`` names
one.

With ``--cli FIT`` it times the whole command ``bayesfp report FIT -o TMP --no-svg`` (Python's
start, the imports and loading the fit included) in a fresh process per repeat, wall time and
the CPU time of the process and of the processes it forks to draw figures (user + system;
``--workers N`` sets how many may draw beside it, 0: none). ``--baseline REV`` runs the same
command with the ``bayesfp`` package of git revision REV (``git archive``) first on
``PYTHONPATH``, alternating with the working tree's in every repeat, so that both see the same
load; it prints both medians and their ratio.

With ``--parts FIT`` it renders the report once in this process (PNG only, every figure made
and drawn here, no worker processes) with the report's functions wrapped in CPU timers and
prints where the time went: imports, reading the fit, building and drawing the figures,
PSIS-LOO, the LOO-PIT figure, the compute-optimal search and the rest.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

ROOT = Path(__file__).resolve().parent.parent


def _write_report(args) -> None:
    from bayesfp.bayes.io import load_fit, save_fit
    from bayesfp.bayes.models import model_for
    from bayesfp.datasets import default_runs_path
    from bayesfp.report.html import write_report
    from bayesfp.runs import read_runs

    tmp = Path(tempfile.mkdtemp(prefix="bench-report-"))
    if args.fit is None:
        t0 = time.perf_counter()
        fit = model_for("sun", read_runs(default_runs_path())).fit()
        args.fit = save_fit(fit, tmp / "demo_sun.nc")
        print(f"fit (not timed): {time.perf_counter() - t0:.1f} s")
    tree = load_fit(args.fit)
    post = tree["posterior"]
    print(f"fit: {post.sizes['chain']} chains x {post.sizes['draw']} draws, "
          f"{tree['log_likelihood'].sizes['run']} runs")
    times, cpu = [], []
    for i in range(args.repeats):
        t0, c0 = time.perf_counter(), _cpu()
        write_report(args.fit, tmp / f"report{i}", svg=args.svg)
        times.append(time.perf_counter() - t0)
        cpu.append(_cpu() - c0)
        print(f"report {i + 1}: {times[-1]:.1f} s wall, {cpu[-1]:.1f} s CPU")
    print(f"median of {len(times)}: {statistics.median(times):.1f} s wall, "
          f"{statistics.median(cpu):.1f} s CPU (svg={args.svg})")


def _cpu() -> float:
    """CPU seconds of this process and of its finished child processes (the figure workers)."""
    import resource

    own, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                  resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _run(cmd: list[str], pythonpath: str | None,
         workers: int | None = None) -> tuple[float, float]:
    """Wall and CPU seconds (user + system, the processes it forks included) of one command in
    a fresh process; ``workers``: ``BAYESFP_REPORT_WORKERS`` for it."""
    env = dict(os.environ)
    if workers is not None:
        env["BAYESFP_REPORT_WORKERS"] = str(workers)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath + os.pathsep + env.get("PYTHONPATH", "")
    t0 = time.perf_counter()
    # run outside the checkout: python -m puts the working folder first on sys.path
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            cwd=tempfile.gettempdir())
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if proc.returncode not in (0, 3):  # 3: the fit failed its gate, the report is written
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    return wall, usage.ru_utime + usage.ru_stime


def _cli(args) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-report-cli-"))
    trees = {"current": str(ROOT)}
    if args.baseline:
        base = tmp / "baseline"
        base.mkdir()
        archive = subprocess.run(["git", "archive", args.baseline, "bayesfp"], cwd=ROOT,
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(base)], input=archive, check=True)
        trees = {f"baseline {args.baseline}": str(base), "current": str(ROOT)}
    res = {k: ([], []) for k in trees}
    for i in range(args.repeats):
        for name, path in trees.items():
            cmd = [sys.executable, "-m", "bayesfp.cli", "report", str(args.cli.resolve()), "-o",
                   str(tmp / f"report-{i}-{len(res[name][0])}"),
                   "--svg" if args.svg else "--no-svg"]
            if args.decision:
                cmd += ["--decision", str(args.decision.resolve())]
            wall, cpu = _run(cmd, path, args.workers)
            res[name][0].append(wall)
            res[name][1].append(cpu)
            print(f"{name} {i + 1}: {wall:.1f} s wall, {cpu:.1f} s CPU", flush=True)
    med = {k: (statistics.median(w), statistics.median(c)) for k, (w, c) in res.items()}
    for name, (w, c) in med.items():
        print(f"{name}: median of {args.repeats}: {w:.1f} s wall, {c:.1f} s CPU "
              f"(svg={args.svg})")
    if args.baseline:
        (bw, bc), (cw, cc) = med[next(iter(med))], med["current"]
        print(f"current / baseline: {cw / bw:.2f} wall, {cc / bc:.2f} CPU")


def _parts(args) -> None:
    """CPU seconds of each part of one report (see the module docstring)."""
    t0 = time.process_time()
    acc: dict[str, float] = {}

    def add(key, dt):
        acc[key] = acc.get(key, 0.0) + dt

    import arviz  # noqa: F401  (imported by the report; counted with the other imports)

    import bayesfp.cli.main  # noqa: F401
    from bayesfp.jsonfile import read_json
    from bayesfp.report import figures as F
    from bayesfp.report import html as H
    from bayesfp.report import quantities as q
    from bayesfp.report import sections as S

    add("imports", time.process_time() - t0)
    t = time.process_time()
    tree = H.load_fit(args.parts, predictive=False)
    add("reading the fit", time.process_time() - t)
    dec = read_json(args.decision, "decision") if args.decision else None

    def timed(mod, name, key):
        f = getattr(mod, name)

        def wrapper(*a, **k):
            t = time.process_time()
            try:
                return f(*a, **k)
            finally:
                add(key, time.process_time() - t)
        setattr(mod, name, wrapper)

    timed(S, "loo", "PSIS-LOO")
    timed(q, "compute_optimal_table", "compute-optimal search")
    for name in ("rank_plot", "energy_plot", "prior_posterior", "published_forest", "ppc_plot",
                 "residual_plot", "loss_vs_data", "d_crit_vs_n", "split_heatmap",
                 "compute_optimal_plot", "decision_plot"):
        timed(F, name, "building the figures")
    timed(F, "loo_pit_plot", "LOO-PIT figure")
    # every figure drawn in this process, one after another, so that its time is counted
    os.environ["BAYESFP_REPORT_WORKERS"] = "0"
    if hasattr(H.FigureSink, "_draw_here"):
        draw = H.FigureSink._render

        def render(self, fig, name):  # the figure is made (timed above) before it is drawn
            fig = fig() if callable(fig) else fig
            t = time.process_time()
            try:
                return draw(self, fig, name)
            finally:
                add("drawing the PNGs", time.process_time() - t)
        H.FigureSink._render = render
    else:
        timed(H.FigureSink, "__call__", "drawing the PNGs")
    t = time.process_time()
    H.write_report(tree, Path(tempfile.mkdtemp(prefix="bench-report-parts-")) / "report",
                   decision=dec, svg=False)
    inside = sum(v for k, v in acc.items() if k not in ("imports", "reading the fit"))
    add("the rest of the report", time.process_time() - t - inside)
    for key, v in acc.items():
        print(f"{v:6.2f} s  {key}")
    print(f"{time.process_time() - t0:6.2f} s  CPU in all (after Python's start)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, help="a saved fit (.nc); default: fit the demo runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--svg", action="store_true", help="also write SVG files (default: PNG)")
    ap.add_argument("--cli", type=Path, metavar="FIT",
                    help="time the whole bayesfp report command on this fit")
    ap.add_argument("--decision", type=Path, help="with --cli: a decision JSON for the report")
    ap.add_argument("--baseline", metavar="REV",
                    help="with --cli: also time the bayesfp package of this git revision")
    ap.add_argument("--workers", type=int, metavar="N",
                    help="with --cli: processes that draw the figures beside the report's "
                         "(BAYESFP_REPORT_WORKERS; default: one fewer than the CPUs, 0: none)")
    ap.add_argument("--parts", type=Path, metavar="FIT",
                    help="CPU time of each part of one report of this fit")
    args = ap.parse_args()
    if args.parts is not None:
        _parts(args)
    elif args.cli is not None:
        _cli(args)
    else:
        _write_report(args)


if __name__ == "__main__":
    main()
