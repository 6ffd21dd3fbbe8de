"""The ``bayesfp`` command line: one module per subcommand over library functions.

- :mod:`bayesfp.cli.main`: the app, ``main`` and its error handling (exit statuses);
- :mod:`bayesfp.cli.options`: the options the subcommands share;
- :mod:`bayesfp.cli.output`: what the subcommands print;
- :mod:`bayesfp.cli.runs`, :mod:`~bayesfp.cli.fit`, :mod:`~bayesfp.cli.decide`,
  :mod:`~bayesfp.cli.report`, :mod:`~bayesfp.cli.pipeline`: the subcommands.

Everything a subcommand does can be done from Python: :func:`bayesfp.pipeline.run_pipeline`,
:func:`bayesfp.pipeline.fit_bayes`, :func:`bayesfp.fit.fit_point`,
:func:`bayesfp.decide.decision_for_report`, :func:`bayesfp.report.html.write_report`.
"""

from bayesfp.cli.main import app, main

__all__ = ["app", "main"]
