"""The ``bayesfp`` command: the Typer app with one subcommand per module, and error handling.

Bad input ends a command with one red ``error: ...`` line on stderr (a run table error lists its
problems below it) and exit status 2, never a traceback: that is a
:class:`bayesfp.errors.BayesfpInputError` (raised by bayesfp's own checks) or an ``OSError``
(files). Any other exception comes from a library underneath and is a bug: it is printed as
``internal error (...)`` with a request to report it, exit status 1. ``BAYESFP_DEBUG=1`` shows
the traceback instead. A fit that fails its diagnostics gate also exits with status 1.

Adding a subcommand: a module ``bayesfp/cli/NAME.py`` with a function whose docstring is its
``--help`` text and whose parameters use the shared options of :mod:`bayesfp.cli.options`,
registered in :data:`COMMANDS` below.
"""

import os
import sys

import typer

from bayesfp.cli.calibrate import calibrate_command
from bayesfp.cli.decide import decide_command
from bayesfp.cli.fit import fit_command
from bayesfp.cli.pipeline import pipeline_command
from bayesfp.cli.report import report_command
from bayesfp.cli.runs import runs_command
from bayesfp.console import err_console
from bayesfp.errors import BayesfpInputError

# Exit statuses: bad user input (as a usage error), a bug (an error from a library underneath).
EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1

COMMANDS = {"runs": runs_command, "fit": fit_command, "report": report_command,
            "decide": decide_command, "pipeline": pipeline_command,
            "calibrate": calibrate_command}

app = typer.Typer(
    name="bayesfp",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root():
    """Bayesian precision scaling laws: which floating-point format (E, M, B) to train in."""


for _name, _command in COMMANDS.items():
    app.command(_name)(_command)


def _error_lines(exc) -> list[str]:
    """The lines of an error's message, the first one fit for ``error: ...``."""
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return [f"{exc.filename}: {exc.strerror}"]
    text = str(exc).strip()
    return text.splitlines() if text else [type(exc).__name__]


def _print_error(exc, prefix: str) -> None:
    lines = _error_lines(exc)
    options = {"markup": False, "highlight": False, "soft_wrap": True}
    err_console.print(f"{prefix}: {lines[0]}", style="bold red", **options)
    for line in lines[1:]:
        err_console.print(line, style="red", **options)


def main(argv=None):
    """Run the ``bayesfp`` command line and exit.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; ``sys.argv[1:]`` when None.

    Notes
    -----
    Exits with status 0 on success, 2 on bad input (one ``error:`` line on stderr, no
    traceback) or a usage error, 1 on an internal error or a failed diagnostics gate.
    """
    try:
        app(args=argv, prog_name="bayesfp")
    except (BayesfpInputError, OSError) as exc:
        if os.environ.get("BAYESFP_DEBUG") == "1":
            raise
        _print_error(exc, "error")
        sys.exit(EXIT_USER_ERROR)
    except Exception as exc:  # noqa: BLE001 - anything else is a bug, said as such
        if os.environ.get("BAYESFP_DEBUG") == "1":
            raise
        _print_error(exc, f"internal error ({type(exc).__name__})")
        err_console.print("this is a bug in bayesfp, not a problem with your input: please "
                          "report it with the output of the same command run with "
                          "BAYESFP_DEBUG=1", style="red", markup=False, highlight=False,
                          soft_wrap=True)
        sys.exit(EXIT_INTERNAL_ERROR)
