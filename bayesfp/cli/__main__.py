"""``python -m bayesfp.cli``: the ``bayesfp`` command."""

from bayesfp.cli import main

main()
