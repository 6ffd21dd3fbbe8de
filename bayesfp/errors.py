"""Errors raised on bad user input.

Every check bayesfp makes of its input raises :class:`BayesfpInputError` (or a subclass), a
``ValueError`` whose message names the offending key first (``"budget: must be positive"``). The
command line prints it as one ``error: ...`` line and exits with status 2; any other
``ValueError`` comes from a library underneath and is a bug.
"""


class BayesfpInputError(ValueError):
    """Bad input to bayesfp: a value, option, file content or run table it cannot use."""


class RunTableError(BayesfpInputError):
    """A run table that cannot be read or does not follow the schema in ``docs/runs.md``.

    Parameters
    ----------
    problems : str or sequence of str
        One line per problem, each naming the column and the offending runs.
    source : str, optional
        Where the table came from (a file path), named in the message.

    Attributes
    ----------
    problems : tuple of str
        The problem lines, in the order they were found.
    """

    def __init__(self, problems, source=None):
        if isinstance(problems, str):
            problems = [problems]
        self.problems = tuple(problems)
        self.source = None if source is None else str(source)
        assert self.problems, "RunTableError needs at least one problem"
        super().__init__(self._message())

    def _message(self):
        where = "run table" if self.source is None else f"run table {self.source}"
        if len(self.problems) == 1:
            return f"{where}: {self.problems[0]}"
        lines = [f"{where}: {len(self.problems)} problems"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class Interrupted(BaseException):
    """SIGINT (Ctrl-C) during a command.

    Not a ``KeyboardInterrupt``, which samplers catch to return their partial draws: an
    interrupted command writes nothing more and ends with exit status 130.
    """
