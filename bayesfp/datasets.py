"""The run tables that ship with bayesfp."""

from importlib import resources
from pathlib import Path

DEMO_RUNS = "demo_runs.csv"
# The real run set, once shipped, takes precedence as the default data.
REAL_RUNS = "runs.csv"


def data_path(name: str) -> Path:
    """Path of a file shipped in ``bayesfp/data``."""
    return Path(str(resources.files("bayesfp") / "data" / name))


def default_runs_path() -> Path:
    """The default run table: the real runs if shipped, else the simulated demo table."""
    real = data_path(REAL_RUNS)
    return real if real.exists() else data_path(DEMO_RUNS)
