"""The ``bayesfp`` command: the Typer app with one subcommand per module, and error handling.

Exit statuses: 0 success; 1 internal error; 2 bad input; 3 a fit that failed its diagnostics
gate (everything is still written); 130 interrupted (Ctrl-C, SIGINT).

Bad input ends a command with one red ``error: ...`` line on stderr (a run table error lists its
problems below it) and exit status 2, never a traceback: that is a
:class:`bayesfp.errors.BayesfpInputError` (raised by bayesfp's own checks), an ``OSError``
(files) or a usage error (an unknown option, a missing argument, a value of the wrong type).
Any other exception comes from a library underneath and is a bug: it is printed as
``internal error (...)`` with a request to report it, exit status 1. ``BAYESFP_DEBUG=1`` shows
the traceback instead. SIGINT ends a command with the one line ``interrupted`` and exit status
130; files being written are removed, finished ones are kept (every output is written to a
temporary name and renamed when complete).

Adding a subcommand: a module ``bayesfp/cli/NAME.py`` with a function whose docstring is its
``--help`` text and whose parameters use the shared options of :mod:`bayesfp.cli.options`,
registered in :data:`COMMANDS` below.
"""

import os
import signal
import sys

import typer

# typer's own copy of click raises these (not click's classes)
from typer._click.exceptions import ClickException, UsageError

import bayesfp
from bayesfp.cli import output
from bayesfp.cli.calibrate import calibrate_command
from bayesfp.cli.decide import decide_command
from bayesfp.cli.fit import fit_command
from bayesfp.cli.pipeline import pipeline_command
from bayesfp.cli.report import report_command
from bayesfp.cli.runs import runs_command
from bayesfp.console import err_console
from bayesfp.errors import BayesfpInputError, Interrupted

# Exit statuses (documented in README.md).
EXIT_OK = 0
EXIT_INTERNAL_ERROR = 1
EXIT_USER_ERROR = 2
EXIT_GATE_FAILED = output.EXIT_GATE_FAILED
EXIT_INTERRUPTED = 130

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


def _version(value: bool):
    if value:
        typer.echo(f"bayesfp {bayesfp.__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", is_eager=True, callback=_version,
                                       help="Print the version and exit.")):
    """Bayesian precision scaling laws: which floating-point format (E, M, B) to train in.

    Exit statuses: 0 ok, 1 internal error, 2 bad input, 3 diagnostics gate failed,
    130 interrupted.
    """


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


def _usage_message(exc: ClickException) -> str:
    """A click usage error as one line, naming the command's help."""
    text = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    if ctx is not None and isinstance(exc, UsageError):
        text += f" (see {ctx.command_path} --help)"
    return text


def _interrupt(signum, frame):
    raise Interrupted()


def main(argv=None):
    """Run the ``bayesfp`` command line and exit.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after the program name; ``sys.argv[1:]`` when None.

    Notes
    -----
    Exits with status 0 on success, 1 on an internal error, 2 on bad input or a usage error
    (one ``error:`` line on stderr, no traceback), 3 when a fit failed its diagnostics gate
    and 130 when interrupted (one ``interrupted`` line).
    """
    debug = os.environ.get("BAYESFP_DEBUG") == "1"
    previous = signal.getsignal(signal.SIGINT)
    try:
        signal.signal(signal.SIGINT, _interrupt)
    except ValueError:  # not the main thread: leave SIGINT alone
        previous = None
    try:
        code = app(args=argv, prog_name="bayesfp", standalone_mode=False)
    except (Interrupted, KeyboardInterrupt, typer.Abort):
        err_console.print("interrupted", style="bold red", highlight=False)
        code = EXIT_INTERRUPTED
    except ClickException as exc:
        if debug:
            raise
        err_console.print(f"error: {_usage_message(exc)}", style="bold red", markup=False,
                          highlight=False, soft_wrap=True)
        code = EXIT_USER_ERROR
    except (BayesfpInputError, OSError) as exc:
        if debug:
            raise
        _print_error(exc, "error")
        code = EXIT_USER_ERROR
    except Exception as exc:  # noqa: BLE001 - anything else is a bug, said as such
        if debug:
            raise
        _print_error(exc, f"internal error ({type(exc).__name__})")
        err_console.print("this is a bug in bayesfp, not a problem with your input: please "
                          "report it with the output of the same command run with "
                          "BAYESFP_DEBUG=1", style="red", markup=False, highlight=False,
                          soft_wrap=True)
        code = EXIT_INTERNAL_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
