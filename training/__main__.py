"""``python -m training``: the same as the ``training`` command."""

from training.cli import main

if __name__ == "__main__":
    main()
