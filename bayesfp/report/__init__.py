"""Self-contained HTML reports of Bayesian fits, and the figures in them.

``write_report(fit, out_dir)`` (:mod:`bayesfp.report.html`) writes ``index.html`` with every
figure embedded as base64 PNG and every table as HTML, plus the figures as PNG and SVG files.
The figures are also library functions returning matplotlib figures
(:mod:`bayesfp.report.figures`), and the numbers behind them are in
:mod:`bayesfp.report.quantities` (importing that one does not import matplotlib).
"""

__all__ = ["write_report"]


def __getattr__(name):
    if name == "write_report":
        from bayesfp.report.html import write_report

        return write_report
    raise AttributeError(f"module 'bayesfp.report' has no attribute {name!r}")
