"""``python -m training.corpus``: see :mod:`training.corpus.cli`."""

from training.corpus.cli import main

main()
