"""``python -m bayesfp.cli``: the ``bayesfp`` command."""

from bayesfp.cli import main

if __name__ == "__main__":
    main()
