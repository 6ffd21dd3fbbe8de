"""The examples in module docstrings run and print what they say."""

import doctest
import importlib

import pytest
from test_imports import ROOT, module_graph

# Every module of bayesfp/ and training/ whose docstrings hold examples (tests/test_imports.py
# lists the modules; this list is checked against them below).
MODULES = ("bayesfp.laws", "bayesfp.decide.problem", "training.corpus.shards")


@pytest.mark.parametrize("name", MODULES)
def test_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_every_module_with_examples_is_listed():
    with_examples = {name for name in module_graph(ROOT, ["bayesfp", "training"])
                     if ">>>" in _source(name)}
    assert with_examples == set(MODULES)


def _source(name):
    path = ROOT.joinpath(*name.split("."))
    return (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
