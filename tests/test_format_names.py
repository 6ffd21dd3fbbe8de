"""docs/formats.md: every largest value in its name table matches the format spec and, where a
type is named, ml_dtypes; bayesfp decide takes the convention suffixes as the same bits."""

import re
from pathlib import Path

import pytest

from bayesfp.decide.problem import parse_format as decide_format

ROOT = Path(__file__).resolve().parents[1]

def _rows():
    text = (ROOT / "docs" / "formats.md").read_text()
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`e") or cells[0].startswith("`bf"):
            name = re.match(r"`([a-z0-9]+)`", cells[0]).group(1)
            mld = re.match(r"`([a-z0-9_]+)`", cells[4])
            rows.append((name, cells[1], float(cells[2]), mld.group(1) if mld else None))
    return rows

ROWS = _rows()

def test_table_has_the_confusable_pairs():
    names = {r[0] for r in ROWS}
    assert {"e4m3", "e4m3fn", "e2m1", "e2m1fn", "e5m2ieee", "bf16"} <= names
    byname = {r[0]: r for r in ROWS}
    assert byname["e4m3"][2] == 480 and byname["e4m3fn"][2] == 448  # hand values (OCP spec)

@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_largest_values_match_spec_and_ml_dtypes(row):
    spec = pytest.importorskip("training.quant.spec")
    name, convention, largest, mld = row
    fmt = spec.parse_format(name)
    assert fmt.convention == convention
    assert fmt.max_normal == pytest.approx(largest, rel=3e-3)
    if mld is not None:
        ml_dtypes = pytest.importorskip("ml_dtypes")

        dtype = getattr(ml_dtypes, mld)
        assert float(ml_dtypes.finfo(dtype).max) == pytest.approx(largest, rel=3e-3)
        assert float(ml_dtypes.finfo(dtype).max) == pytest.approx(fmt.max_normal, rel=1e-12)

def test_decide_reads_convention_suffixes_as_the_same_bits():
    a, b = decide_format("e4m3"), decide_format("e4m3fn")
    assert (a.E, a.M, a.B) == (b.E, b.M, b.B) == (4, 3, "128")
    assert a.name == "e4m3" and b.name == "e4m3fn"
