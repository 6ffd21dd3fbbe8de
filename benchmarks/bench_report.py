"""Time ``write_report`` for a 4 x 1000-draw Sun-law fit of the shipped demo runs.

    python benchmarks/bench_report.py              # fit once (not timed), report 3 times
    python benchmarks/bench_report.py --fit fit.nc --repeats 5

Prints the wall and CPU time of each report and the medians (CPU time is the better measure
on a shared machine); the fit is made with the default sampler
settings (4 chains x 1000 draws) unless ``--fit`` names one.
"""

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fit", type=Path, help="a saved fit (.nc); default: fit the demo runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--svg", action="store_true", help="also write SVG files (default: PNG)")
    args = ap.parse_args()

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
        t0, c0 = time.perf_counter(), time.process_time()
        write_report(args.fit, tmp / f"report{i}", svg=args.svg)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        print(f"report {i + 1}: {times[-1]:.1f} s wall, {cpu[-1]:.1f} s CPU")
    print(f"median of {len(times)}: {statistics.median(times):.1f} s wall, "
          f"{statistics.median(cpu):.1f} s CPU (svg={args.svg})")


if __name__ == "__main__":
    main()
