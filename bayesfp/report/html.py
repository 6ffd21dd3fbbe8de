"""Assemble a fit report: one self-contained ``index.html`` plus its figures as files.

The page needs nothing from outside: figures are base64 PNG ``data:`` URIs, tables are HTML,
the style sheet is inline, and there is no script. It reads on a laptop screen (a 1100 px
column with a table of contents, every table in a horizontal scroll container; on a phone the
margins shrink) and opens offline.
"""

import base64
import contextlib
import datetime
import gc
import html
import io
import os
import shutil
import signal
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from bayesfp.bayes.io import fit_info, fit_table, load_fit
from bayesfp.errors import BayesfpInputError
from bayesfp.report import sections as S

# Resolution of the PNG figures: a 10-inch figure fills the 1000 px column at 100 dpi.
DPI = 100

CSS = """
:root { --fg: #1d2329; --muted: #5b6670; --line: #d9dee3; --bg: #ffffff; --soft: #f4f6f8; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--soft); color: var(--fg);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 40px 60px; background: var(--bg);
  min-height: 100vh; }
h1 { font-size: 26px; margin: 8px 0 4px; }
h2 { font-size: 21px; margin: 36px 0 10px; padding-top: 10px; border-top: 2px solid var(--line); }
h3 { font-size: 16px; margin: 24px 0 8px; }
p { margin: 8px 0; }
.meta { color: var(--muted); font-size: 13px; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 13px;
  background: var(--soft); padding: 1px 4px; border-radius: 3px; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 20px; margin: 16px 0; }
nav.toc h2 { border: 0; margin: 4px 0; padding: 0; font-size: 16px; }
nav.toc ol { margin: 4px 0; padding-left: 22px; columns: 2; }
nav.toc a { color: #1f5fa0; text-decoration: none; }
.verdict { border-radius: 6px; padding: 12px 16px; margin: 14px 0; border: 2px solid; }
.verdict.pass { background: #eaf6ec; border-color: #2e8b47; }
.verdict.pass strong { color: #1e6b34; }
.verdict.fail { background: #fdecea; border-color: #c62828; color: #8e1b1b; }
.verdict.fail strong { color: #c62828; font-size: 17px; }
.verdict.warn { background: #fff7e0; border-color: #c98a00; }
.verdict .head { font-size: 17px; }
.verdict .answer p { margin: 6px 0; }
.verdict h3 { margin: 10px 0 4px; font-size: 15px; }
.verdict ul { margin: 6px 0; }
.warnings li { color: #8a5300; }
.notice { font-weight: 600; color: #8a5300; }
.table-wrap { overflow-x: auto; margin: 8px 0 14px; }
table.data { border-collapse: collapse; font-size: 13px; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: 3px 10px;
  text-align: right; vertical-align: top; }
table.data thead th { border-bottom: 2px solid #9aa5b1; background: var(--soft); }
table.data tbody th { text-align: left; font-weight: 600; }
table.data td:only-of-type { text-align: left; }
figure { margin: 12px 0 20px; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.side { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.side figure { flex: 1 1 560px; margin-top: 0; min-width: 0; }
.side .table-wrap { flex: 0 1 auto; min-width: 0; max-width: 100%; }
footer { margin-top: 40px; color: var(--muted); font-size: 12px; }
@media (max-width: 700px) {
  main { padding: 12px 12px 40px; }
  nav.toc ol { columns: 1; }
  .verdict { padding: 10px; }
}
"""


# Seconds a figure may take in a worker before it is stopped and drawn in the report's process.
WORKER_TIMEOUT_S = 120.0


class FigureSink:
    """Render figures to PNG once: embed the bytes as base64 and write them (and SVG) to files.

    ``sink(fig, name, caption)`` takes a figure or a function without arguments that makes
    one. Figures are made and drawn by up to ``workers`` forked processes while this one goes
    on with the report (``None``: :func:`default_workers`; 0, or a system without ``fork``:
    here, one after another). A call returns the figure's HTML with a placeholder for the
    image; :meth:`resolve` waits for the drawings and puts them in. A figure that fails in a
    worker is made again here, so that its error is raised here.
    """

    def __init__(self, fig_dir: Path | None, svg: bool = False, dpi: int = DPI,
                 workers: int | None = None):
        self.fig_dir, self.svg, self.dpi = fig_dir, svg, dpi
        self.written: list[Path] = []
        if fig_dir is not None:
            fig_dir.mkdir(parents=True, exist_ok=True)
        self.workers = default_workers() if workers is None else max(0, int(workers))
        self._tmp: Path | None = None
        self._jobs: list[dict] = []  # in call order: name, fig, png, pid
        self._queue: list[dict] = []  # not started yet
        self._running: dict[int, dict] = {}  # pid -> job
        self._frozen = False

    def __call__(self, fig, name: str, caption: str) -> str:
        i = len(self._jobs)
        job = {"name": name, "fig": fig, "png": None, "pid": None, "index": i,
               "key": f"\0figure-{i}\0"}
        self._jobs.append(job)
        if self.workers:
            self._queue.append(job)
            self._reap(block=False)
            self._start()
        else:
            self._draw_here(job)
        cap = html.escape(caption)
        return (f'<figure id="fig-{html.escape(name)}"><img src="data:image/png;base64,'
                f'{job["key"]}" alt="{cap}"><figcaption>{cap}</figcaption></figure>')

    def resolve(self, page: str) -> str:
        """``page`` with every figure's image in place, once all are drawn (and written)."""
        try:
            while self._queue or self._running:
                self._reap(block=False)
                self._start()
                if self._queue:  # every worker busy: draw the last waiting figure here
                    self._draw_here(self._queue.pop())
                elif self._running:
                    self._reap(block=True)
        finally:
            self.close()
        for job in self._jobs:
            if job["png"] is None:  # a worker failed (or was stopped): draw it here
                self._draw_here(job)
            if self.fig_dir is not None:
                path = self.fig_dir / f"{job['name']}.png"
                if job["pid"] is None:
                    path.write_bytes(job["png"])
                self.written.append(path)
                if self.svg:
                    self.written.append(self.fig_dir / f"{job['name']}.svg")
            page = page.replace(job["key"], base64.b64encode(job["png"]).decode("ascii"), 1)
            job["fig"] = None
        self._jobs = []
        return page

    @staticmethod
    def _wait(pid: int, job: dict) -> tuple[int, int]:
        """``os.waitpid(pid, 0)``, but a worker past ``WORKER_TIMEOUT_S`` since its start is
        killed (its status then fails, so the figure is drawn here)."""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return done, status
            if time.monotonic() - job["started"] > WORKER_TIMEOUT_S:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                return os.waitpid(pid, 0)
            time.sleep(0.005)

    def close(self) -> None:
        """Stop the workers still drawing (after an error or an interrupt) and wait for them."""
        for pid in list(self._running):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            self._running.pop(pid)["pid"] = None
        self._queue = []
        if self._frozen:
            gc.unfreeze()
            self._frozen = False
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def _png_path(self, job) -> Path:
        if self.fig_dir is not None:
            return self.fig_dir / f"{job['name']}.png"
        if self._tmp is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="bayesfp-figures-"))
        return self._tmp / f"{job['index']}.png"

    def _render(self, fig, name: str) -> bytes:
        """Draw ``fig`` (made first if it is a function): its PNG bytes (and its SVG file,
        when asked for)."""
        if callable(fig):
            fig = fig()
        _freeze_ticks(fig)
        _layout_once(fig)
        buf = io.BytesIO()
        # zlib level 3: a third faster to encode than the default 6, 1% larger
        fig.savefig(buf, format="png", dpi=self.dpi, pil_kwargs={"compress_level": 3})
        if self.svg and self.fig_dir is not None:
            # Fixed ids and no date, so a regenerated report differs only where it changed.
            import matplotlib as mpl

            with mpl.rc_context({"svg.hashsalt": name}):
                fig.savefig(self.fig_dir / f"{name}.svg", format="svg", metadata={"Date": None})
        return buf.getvalue()

    def _draw_here(self, job) -> None:
        job["png"], job["pid"] = self._render(job["fig"], job["name"]), None

    def _start(self) -> None:
        """Fork workers for the waiting figures, as many as may run."""
        while self._queue and len(self._running) < self.workers:
            job = self._queue.pop(0)
            job["path"] = self._png_path(job)
            if not self._frozen:
                # the collector leaves the objects made so far alone until close(): scanning
                # them would write to memory that this process shares with its workers, and
                # each page written while a worker runs is copied
                gc.freeze()
                self._frozen = True
            with warnings.catch_warnings():  # BLAS's idle threads: the worker only draws
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # the worker: draw, write, leave without Python's exit handlers
                code = 1
                try:
                    gc.disable()  # short-lived: a collection would copy the parent's pages
                    job["path"].write_bytes(self._render(job["fig"], job["name"]))
                    code = 0
                finally:
                    os._exit(code)
            job["pid"], job["started"] = pid, time.monotonic()
            self._running[pid] = job

    def _reap(self, block: bool) -> None:
        """Collect the workers that have finished (with ``block``: at least the oldest). A
        worker still drawing after ``WORKER_TIMEOUT_S`` is stopped and its figure drawn here
        (a process forked from one with threads can, rarely, hang on a lock it inherited)."""
        for pid in list(self._running):
            if block:
                done, status = self._wait(pid, self._running[pid])
            else:
                done, status = os.waitpid(pid, os.WNOHANG)
            block = False
            if done == 0:
                continue
            job = self._running.pop(pid)
            if os.waitstatus_to_exitcode(status) == 0:
                job["png"] = job["path"].read_bytes()
            else:
                job["pid"] = None


def default_workers() -> int:
    """Processes that draw a report's figures beside the one writing it: one fewer than the
    CPUs this process may use, at most 3 (``BAYESFP_REPORT_WORKERS`` overrides it); none
    where ``fork`` is not safe to use (other than Linux)."""
    env = os.environ.get("BAYESFP_REPORT_WORKERS", "").strip()
    if env:
        try:
            return max(0, int(env))
        except ValueError:
            raise BayesfpInputError(f"BAYESFP_REPORT_WORKERS: must be a whole number, got "
                                    f"{env!r}") from None
    if not sys.platform.startswith("linux") or not hasattr(os, "fork"):
        return 0
    return min(3, len(os.sched_getaffinity(0)) - 1)


def _layout_once(fig) -> None:
    """Lay out ``fig`` with its layout engine now and drop the engine: saving it then draws it
    once (matplotlib otherwise draws a figure with a layout engine twice, once without
    output to lay it out), and a second file (the SVG copy) keeps the same layout; constrained
    layout gives the same positions (figure fractions) at any resolution. The PNG is the same
    byte for byte."""
    import matplotlib as mpl

    engine = fig.get_layout_engine()
    if engine is None or not fig.axes:
        return
    try:
        engine.execute(fig)
    except ValueError:  # as Figure.draw: a layout that cannot be made is skipped
        pass
    with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)


def _freeze_ticks(fig) -> None:
    """Fix every axis' ticks at the positions and labels its locator and formatter give now.

    A built figure's limits are settled, so this changes nothing drawn (the PNG is the same
    byte for byte) but spares matplotlib from finding them again in each layout pass and in
    the drawing: a fifth of the time of a report's figures. An axis whose formatter writes an
    offset (``1e9`` at its end) keeps its own.
    """
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullLocator

    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for ticker, set_loc, set_fmt in (
                    (axis.major, axis.set_major_locator, axis.set_major_formatter),
                    (axis.minor, axis.set_minor_locator, axis.set_minor_formatter)):
                if isinstance(ticker.locator, (FixedLocator, NullLocator)):
                    continue
                locs = ticker.locator()
                ticker.formatter.set_locs(locs)
                if ticker.formatter.get_offset():
                    continue
                labels = ticker.formatter.format_ticks(locs)
                set_loc(FixedLocator(locs))
                set_fmt(FixedFormatter(labels))


def _load(fit) -> tuple[xr.DataTree, str, str]:
    """(tree, display name, source) of a fit path or DataTree."""
    if isinstance(fit, xr.DataTree):
        return fit, fit_info(fit)["law"], "in-memory fit"
    path = Path(fit)
    return load_fit(path, predictive=False), path.stem, str(path)


def _extra(extra_fits) -> dict:
    if not extra_fits:
        return {}
    items = extra_fits.items() if isinstance(extra_fits, Mapping) else \
        [(None, f) for f in extra_fits]
    out = {}
    for name, f in items:
        tree, default, _ = _load(f)
        key = str(name or default)
        while key in out:
            key += "'"
        out[key] = tree
    return out


def _runs(runs, tree: xr.DataTree) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The fit's own run table, and the given table's runs that are not in the fit."""
    table = fit_table(tree)
    if runs is None:
        return table, None
    if not isinstance(runs, pd.DataFrame):
        from bayesfp.runs import read_runs

        runs = read_runs(runs)
    known = set(table["run_id"].astype(str))
    new = runs[~runs["run_id"].astype(str).isin(known)].reset_index(drop=True)
    return table, new


def _calibration(calibration, tree: xr.DataTree) -> pd.DataFrame | None:
    """The calibration table of a fit's model, read and checked against the fit."""
    if calibration is None:
        return None
    from bayesfp.bayes.calibrate import check_calibration, read_calibration

    table = read_calibration(calibration)
    where = "the calibration table" if isinstance(calibration, pd.DataFrame) else \
        str(calibration)
    check_calibration(table, fit_info(tree), where)
    return table


def render(ctx: S.Context, sink, source: str) -> str:
    """The whole page as a string."""
    bodies = []
    for i, (anchor, title) in enumerate(S.SECTIONS, start=1):
        body = S.BUILDERS[anchor](ctx, sink)
        bodies.append(f'<section id="{anchor}"><h2>{i}. {html.escape(title)}</h2>{body}'
                      "</section>")
    toc = "".join(f'<li><a href="#{a}">{html.escape(t)}</a></li>' for a, t in S.SECTIONS)
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    info = ctx.info
    choice = getattr(ctx.decision, "choice", "") if ctx.decision is not None else ""
    title = (f"Train in {choice.upper()}: {ctx.law.name} fit of {info['n_runs']} runs"
             if choice else f"bayesfp report: {ctx.law.name} fit of {info['n_runs']} runs")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>"
        f"<header><h1>{html.escape(title)}</h1>"
        f'<p class="meta">{html.escape(source)} &middot; {info["n_runs"]} runs fitted &middot; '
        f"generated {when} by bayesfp {html.escape(str(info.get('bayesfp_version', '')))}</p>"
        f"</header>{S.verdict(ctx)}"
        f'<nav class="toc"><h2>Contents</h2><ol>{toc}</ol></nav>'
        + "".join(bodies)
        + '<footer>Intervals are 90% (HDI for coefficients and D_crit, central elsewhere). '
        "Figures are also in the figures/ folder next to this page.</footer>"
        "</main></body></html>\n")
    resolve = getattr(sink, "resolve", None)
    return resolve(page) if resolve is not None else page


def write_report(fit_path_or_tree, out_dir, runs=None, extra_fits=None, decision=None,
                 holdout: bool | dict = False, svg: bool = False,
                 source: str | None = None, n_factor: float = S.q.N_FACTOR,
                 c_factor: float = S.q.C_FACTOR, calibration=None) -> Path:
    """Write the report of a fit: ``out_dir/index.html`` and ``out_dir/figures/*.png``.

    Parameters
    ----------
    fit_path_or_tree : path or xarray.DataTree
        A fit (NetCDF written by :func:`bayesfp.bayes.io.save_fit`, or the DataTree).
    out_dir : path
        Folder for ``index.html`` and ``figures/``; created if missing.
    runs : path or pandas.DataFrame, optional
        A run table to check the fit against: its runs that are not in the fit are predicted
        and compared with their losses. The fit's own run table is always used for the rest.
    extra_fits : sequence of paths/DataTrees or mapping name -> path/DataTree, optional
        Other fits of the same runs for the PSIS-LOO comparison table.
    decision : mapping or object, optional
        Result of a decision analysis (``candidates`` with ``expected_loss``, ``p_best``,
        ``regret``; ``evpi``; ``next_runs``), see
        :func:`bayesfp.report.quantities.as_decision`.
    holdout : bool or dict
        ``True`` runs the held-out extrapolation check (one more fit, without the runs at the
        largest N) with :func:`bayesfp.bayes.compare.holdout_check`; a dict is its stored
        result. Without it, a result stored in the fit's attrs (``holdout``) is shown, else the
        report says the check was not run.
    svg : bool
        Also write each figure as SVG.
    source : str, optional
        Where the fit came from, shown under the title (default: its path).
    n_factor, c_factor : float
        How far past the runs the answers go: D_crit up to ``n_factor`` x the largest fitted
        N, compute-optimal precision up to ``c_factor`` x the largest run's compute
        (defaults 10 and 100).
    calibration : path or pandas.DataFrame, optional
        The held-out calibration of the fit's model: a table written by ``bayesfp calibrate
        -o`` (``.csv`` or ``.md``) or the DataFrame of
        :func:`bayesfp.bayes.calibrate.calibrate`. It must record the fit's model settings and
        run count (:func:`bayesfp.bayes.calibrate.check_calibration`); the verdict box states
        its coverage per cut and turns amber for a cut whose 90% intervals hold fewer than 80%
        of its runs.

    Returns
    -------
    pathlib.Path
        The path of ``index.html``.
    """
    for key, v in (("n_factor", n_factor), ("c_factor", c_factor)):
        if not (np.isfinite(v) and 1.0 <= v <= 1e12):
            raise BayesfpInputError(f"{key}: must be a number from 1 to 1e12, got {v}")
    tree, name, where = _load(fit_path_or_tree)
    source = source or where
    cal = _calibration(calibration, tree)
    table, new = _runs(runs, tree)
    extra = _extra(extra_fits)
    if decision is not None:
        from bayesfp.report.quantities import as_decision

        decision = as_decision(decision)
    hold = None
    if isinstance(holdout, Mapping):
        hold = dict(holdout)
    elif holdout:
        hold = run_holdout(tree)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BayesfpInputError(f"out: {out_dir} is a file; give a folder for the report")
    ctx = S.Context(tree=tree, name=name, runs=table, new_runs=new, extra_fits=extra,
                    decision=decision, holdout=hold, n_factor=n_factor, c_factor=c_factor,
                    calibration=cal)
    with _staging(out_dir) as stage:
        sink = FigureSink(stage / "figures", svg=svg)
        try:
            page = render(ctx, sink, source)
        finally:
            sink.close()
        (stage / "index.html").write_text(page, encoding="utf-8")
        _publish(stage, out_dir)
    return out_dir / "index.html"


@contextlib.contextmanager
def _staging(out_dir: Path):
    """A temporary folder beside ``out_dir``, removed on exit; on an error (or SIGINT) the
    folders made for ``out_dir`` are removed too, so nothing partial is left."""
    made = [p for p in (out_dir, *out_dir.parents) if not p.exists()]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        for p in made:
            with contextlib.suppress(OSError):
                p.rmdir()
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out_dir: Path) -> None:
    """Move a finished report from ``stage`` into ``out_dir``: the figures folder replaced as a
    whole, then ``index.html`` (each by a rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = out_dir / "figures"
    if (stage / "figures").exists():
        if figs.exists():
            os.replace(figs, stage / "figures.old")
        os.replace(stage / "figures", figs)
    os.replace(stage / "index.html", out_dir / "index.html")


def run_holdout(tree: xr.DataTree, seed: int = 0) -> dict:
    """The held-out extrapolation check of a fit, refitted with the fit's own settings.

    Priors are the fit's prior source (``default`` or ``published``; a fit whose priors came
    from a previous fit uses ``default``). Returns the dict of
    :func:`bayesfp.bayes.compare.holdout_check` without the refitted tree.
    """
    from bayesfp.bayes.calibrate import model_kw_of
    from bayesfp.bayes.compare import holdout_check

    info = fit_info(tree)
    table = fit_table(tree).drop(columns=["in_fit"])
    model_kw = model_kw_of(info)
    sampler = {k: v for k, v in (info.get("sampler") or {}).items()
               if k in ("draws", "tune", "chains", "cores", "target_accept", "sampler", "seed")}
    res = holdout_check(table, law=info["law"], seed=seed, model_kw=model_kw, sampler=sampler)
    return {k: v for k, v in res.items() if k != "fit"}

