"""Errors raised on bad user input.

Every user error in bayesfp is a ``ValueError`` (or a subclass defined here), so that the command
line can print it as one ``error: ...`` line and exit with status 2.
"""


class RunTableError(ValueError):
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
