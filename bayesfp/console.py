"""The rich consoles every command prints through: results to stdout, errors to stderr."""

from rich.console import Console

console = Console()
err_console = Console(stderr=True)
