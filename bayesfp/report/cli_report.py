"""The body of ``bayesfp report FIT.nc [--runs RUNS] [--compare OTHER.nc ...] -o reports/NAME/``.

``cli.py`` calls::

    report_command(fit_path, out_dir, runs=None, compare=(), decision=None, holdout=False,
                   svg=True) -> int

It writes ``out_dir/index.html`` (self-contained) and ``out_dir/figures/``, prints where, and
returns 0, or 1 when the fit failed its diagnostics gate (the report is still written and says
so in red at the top). Bad input raises ``ValueError``/``OSError`` for ``main``.
"""

import json
from pathlib import Path

from bayesfp.console import console, err_console

EXIT_OK = 0
EXIT_GATE_FAILED = 1


def read_decision(path) -> dict:
    """A decision analysis saved as JSON (the file ``bayesfp decide`` writes)."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"decision: {path} is not valid JSON ({exc.msg}, line {exc.lineno})") \
            from None


def report_command(fit_path, out_dir, runs=None, compare=(), decision=None,
                   holdout: bool = False, svg: bool = True) -> int:
    """Write the HTML report of a fit.

    Parameters
    ----------
    fit_path : path
        Fit written by ``bayesfp fit --method bayes`` (.nc).
    out_dir : path
        Report folder (``index.html`` and ``figures/``).
    runs : path, optional
        Run table to check the fit against (its runs not in the fit are predicted).
    compare : sequence of paths
        Other fits of the same runs for the PSIS-LOO comparison.
    decision : path, optional
        JSON of a decision analysis.
    holdout : bool
        Run the held-out extrapolation check (one more fit).
    svg : bool
        Also write the figures as SVG.

    Returns
    -------
    int
        0 if the fit passed the diagnostics gate, 1 if not.
    """
    import matplotlib

    matplotlib.use("Agg")
    from bayesfp.bayes.io import fit_info, load_fit
    from bayesfp.report.html import write_report

    tree = load_fit(fit_path)
    dec = read_decision(decision) if decision is not None else None
    path = write_report(tree, out_dir, runs=runs, extra_fits=list(compare or ()) or None,
                        decision=dec, holdout=holdout, svg=svg, source=str(fit_path))
    console.print(f"report written to {path}", highlight=False)
    gate = fit_info(tree)["gate"]
    if not gate["passed"]:
        err_console.print("warning: this fit FAILED the diagnostics gate; the report says so",
                          style="bold red", highlight=False)
        return EXIT_GATE_FAILED
    return EXIT_OK
