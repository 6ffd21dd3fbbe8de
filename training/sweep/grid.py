"""Grid files: sub-grids of ``TrainConfig`` values, expanded to runs with stable ids.

A grid file is TOML (``.toml``) or JSON (``.json``) with these top-level keys:

``name``, ``description`` (str, optional)
    Free text.
``fixed`` (table)
    ``TrainConfig`` keys shared by every run, one value each.
``axes`` (table)
    The main grid: every combination of its lists (a scalar is a list of one value).
``include`` (array of tables)
    More sub-grids, each a product of its own lists over ``fixed`` (not over ``axes``).
``exclude`` (array of tables)
    Rules: a run that matches every key of a rule is dropped (a list matches any of its values).
    Rules apply to ``axes`` and to every ``include``, and compare canonical values (``format``
    lower case, ``operands`` in canonical order, ``granularity`` as text).

Every other key is an error, and so is an unknown config key or a value of the wrong type.
``granularity`` may be given as an int (``128``) or as text; the word ``"none"`` in
``granularity`` or ``operands`` is allowed with ``format = "bf16"`` only.

Expansion makes each point a ``TrainConfig``: a ``bf16`` point becomes the canonical baseline
(``operands = "none"``, ``granularity`` the default), ``tokens`` is rounded down to whole steps,
and the run id is the trainer's (``training.record.run_id`` of the resolved config and the
corpus hash), so the id names exactly what ``training train`` computes. Points that give the same
id collapse into one run; the order is that of the file (axes first, then each include, each a
product in the order its keys are written).
"""

import dataclasses
import itertools
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

from training.config import (
    BASELINE,
    TrainConfig,
    apply_overrides,
    is_quantized,
    parse_operands,
    resolve,
)

TOP_KEYS = ("name", "description", "fixed", "axes", "include", "exclude")
FIELDS = tuple(f.name for f in dataclasses.fields(TrainConfig))
DEFAULTS = TrainConfig()
# text fields that take a block size, so an int is accepted and written as text
BLOCK_FIELDS = ("granularity", "ptq_granularity")


@dataclass(frozen=True)
class Run:
    """One planned run.

    Attributes
    ----------
    run_id : str
        The trainer's id of the resolved config.
    config : TrainConfig
        What the trainer is given (``device`` as in the grid, size defaults not filled).
    resolved : TrainConfig
        ``config`` resolved for CPU (the device is not part of the id).
    N : int
        Non-embedding parameters.
    D : int
        Training tokens (whole steps).
    C : float
        Training FLOPs (``training.model.params_and_flops``).
    vocab_size : int
    corpus_hash : str
    n_train : int
        Tokens in the training split.
    """

    run_id: str
    config: TrainConfig
    resolved: TrainConfig
    N: int
    D: int
    C: float
    vocab_size: int
    corpus_hash: str
    n_train: int

    @property
    def quantized(self):
        return is_quantized(self.resolved)

    @property
    def epochs(self):
        """Passes over the training split."""
        return self.D / self.n_train

    @property
    def kind(self):
        """Throughput class: ``"bf16"`` for a baseline, ``"quant"`` for a fake-quantized run."""
        return "quant" if self.quantized else "bf16"

    def label(self):
        """A short human-readable name: size, D, format, B, operands, seed."""
        c = self.resolved
        prec = (f"{c.format} B={c.granularity} {c.operands}" if self.quantized else "bf16")
        return f"{c.model} D={self.D:.3g} {prec} s{c.seed}"


@dataclass(frozen=True)
class Plan:
    """The runs of a grid, in file order, with the count of points that collapsed."""

    runs: tuple
    n_points: int

    @property
    def n_duplicates(self):
        return self.n_points - len(self.runs)


def load_grid(path):
    """Read a grid file (TOML or JSON) and check its top-level layout.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict

    Raises
    ------
    ValueError
        On a missing or unparsable file, an unknown suffix or a bad layout.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"grid: file not found: {path}")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".toml":
        try:
            grid = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"grid: {path} is not valid TOML ({exc})") from None
    elif path.suffix == ".json":
        try:
            grid = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"grid: {path} is not valid JSON ({exc.msg})") from None
    else:
        raise ValueError(f"grid: {path} must end in .toml or .json")
    check_layout(grid)
    return grid


def check_layout(grid):
    """Raise ValueError, naming the key, if ``grid`` does not have the grid-file layout."""
    if not isinstance(grid, dict):
        raise ValueError("grid: must be a table (JSON object)")
    for key in grid:
        if key not in TOP_KEYS:
            raise ValueError(f"grid: unknown key '{key}' (known: {', '.join(TOP_KEYS)})")
    for key in ("name", "description"):
        if key in grid and not isinstance(grid[key], str):
            raise ValueError(f"{key}: expected str, got {type(grid[key]).__name__}")
    for key in ("fixed", "axes"):
        if key in grid and not isinstance(grid[key], dict):
            raise ValueError(f"{key}: expected a table, got {type(grid[key]).__name__}")
    for key in ("include", "exclude"):
        if key in grid and (not isinstance(grid[key], list)
                            or not all(isinstance(t, dict) for t in grid[key])):
            raise ValueError(f"{key}: expected an array of tables")
    for where, table in _tables(grid):
        for key, value in table.items():
            if key not in FIELDS:
                raise ValueError(f"{where}: unknown config key '{key}'")
            values = value if isinstance(value, list) else [value]
            if where != "fixed" and isinstance(value, list) and not value:
                raise ValueError(f"{where}: {key}: empty list")
            if where == "fixed" and isinstance(value, list):
                raise ValueError(f"fixed: {key}: expected one value, got a list (use axes)")
            for v in values:
                _check_type(where, key, v)
    if not grid.get("axes") and not grid.get("include"):
        raise ValueError("grid: empty (no axes and no include)")


def _tables(grid):
    yield "fixed", grid.get("fixed", {})
    yield "axes", grid.get("axes", {})
    for i, t in enumerate(grid.get("include", []), 1):
        yield f"include {i}", t
    for i, t in enumerate(grid.get("exclude", []), 1):
        yield f"exclude {i}", t


def _check_type(where, key, value):
    default = getattr(DEFAULTS, key)
    if key in BLOCK_FIELDS and isinstance(value, int) and not isinstance(value, bool):
        return
    ok = (isinstance(value, type(default)) and not (isinstance(value, bool)
                                                    and not isinstance(default, bool)))
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        raise ValueError(f"{where}: {key}: expected {type(default).__name__}, got "
                         f"{type(value).__name__} {value!r}")


def canonical_value(key, value):
    """Return the text or number a rule compares for ``key``: format lower case, operands in
    canonical order (``"none"`` when empty), block sizes as text."""
    if key in BLOCK_FIELDS or key == "format":
        return str(value).strip().lower()
    if key == "operands":
        return "+".join(parse_operands(str(value))) or "none"
    return value


def _product(table):
    keys = list(table)
    lists = [table[k] if isinstance(table[k], list) else [table[k]] for k in keys]
    for combo in itertools.product(*lists):
        yield dict(zip(keys, combo))


def _excluded(point, rules):
    for rule in rules:
        if all(canonical_value(k, point.get(k, getattr(DEFAULTS, k)))
               in [canonical_value(k, v) for v in (r if isinstance(r, list) else [r])]
               for k, r in rule.items()):
            return True
    return False


def points(grid):
    """Yield ``(where, point)`` for every grid point not excluded; a point is a dict of the
    config keys set by ``fixed`` and its sub-grid."""
    fixed = grid.get("fixed", {})
    rules = grid.get("exclude", [])
    blocks = []
    if grid.get("axes"):
        blocks.append(("axes", grid["axes"]))
    blocks += [(f"include {i}", t) for i, t in enumerate(grid.get("include", []), 1)]
    for where, table in blocks:
        for combo in _product(table):
            point = fixed | combo
            if not _excluded(point, rules):
                yield where, point


def point_config(point, where="grid"):
    """Return the canonical ``TrainConfig`` of a grid point.

    Raises
    ------
    ValueError
        On a bad value, or ``"none"`` granularity or operands with a quantized format.
    """
    point = {k: (str(v) if k in BLOCK_FIELDS and not isinstance(v, str) else v)
             for k, v in point.items()}
    fmt = str(point.get("format", DEFAULTS.format)).strip().lower()
    if fmt == BASELINE:
        point |= {"format": BASELINE, "operands": "none", "granularity": DEFAULTS.granularity}
    else:
        for key in ("granularity", "operands"):
            if str(point.get(key, "")).strip().lower() == "none":
                raise ValueError(f"{where}: {key}: 'none' with format {fmt} ('none' is for bf16 "
                                 f"baselines; add an exclude rule)")
    try:
        cfg = apply_overrides(DEFAULTS, point)
        if not is_quantized(cfg):
            cfg = dataclasses.replace(cfg, format=BASELINE, operands="none",
                                      granularity=DEFAULTS.granularity)
        resolved = resolve(cfg, cuda_available=False)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    step = resolved.batch_size * resolved.seq_len
    if resolved.tokens < step:
        raise ValueError(f"{where}: tokens: {resolved.tokens} is less than one step of {step} "
                         f"tokens ({resolved.model})")
    tokens = resolved.tokens // step * step
    return dataclasses.replace(cfg, tokens=tokens)


class _Corpora:
    """Corpus hash and vocabulary size per data path, each opened once."""

    def __init__(self):
        self._seen = {}

    def __call__(self, path):
        if path not in self._seen:
            from training.train import open_tokens

            data = open_tokens(path)
            self._seen[path] = (str(data.corpus_hash), int(data.vocab_size), len(data.train))
        return self._seen[path]


def make_run(cfg, corpora=None):
    """Return the ``Run`` of a canonical config (see ``point_config``)."""
    from training.model import gpt_config, params_and_flops
    from training.record import run_id

    corpus_hash, vocab, n_train = (corpora or _Corpora())(cfg.data)
    resolved = resolve(cfg, cuda_available=False)
    n, c = params_and_flops(gpt_config(resolved.model, vocab, resolved.seq_len,
                                       resolved.quant_head), resolved.tokens)
    return Run(run_id=run_id(resolved, corpus_hash), config=cfg, resolved=resolved, N=n,
               D=resolved.tokens, C=c, vocab_size=vocab, corpus_hash=corpus_hash,
               n_train=n_train)


def expand(grid):
    """Expand a grid (as read by ``load_grid``) to its runs.

    Parameters
    ----------
    grid : dict

    Returns
    -------
    Plan
        Unique runs in file order and the number of points before duplicates collapsed.

    Raises
    ------
    ValueError
        On a bad layout or value (naming the sub-grid and key) or an empty grid.
    """
    check_layout(grid)
    corpora = _Corpora()
    runs, seen, n = [], set(), 0
    for where, point in points(grid):
        run = make_run(point_config(point, where), corpora)
        n += 1
        if run.run_id not in seen:
            seen.add(run.run_id)
            runs.append(run)
    if not runs:
        raise ValueError("grid: empty (every point is excluded)")
    return Plan(tuple(runs), n)

