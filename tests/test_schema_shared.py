"""training/ writes run records in bayesfp's run-table schema: it takes the schema's names from
bayesfp, and the precision fields of every kind of run validate as bayesfp reads them."""

import pytest

from bayesfp import dims
from bayesfp.runs import schema, validate_runs
from training import config, record


def test_training_takes_the_schema_names_from_bayesfp():
    assert record.REQUIRED is schema.REQUIRED
    assert config.OPERANDS is dims.OPERANDS
    assert config.GRANULARITY_WORDS is dims.GRANULARITY_WORDS
    # the record fields of docs/runs.md, in order
    assert schema.REQUIRED == ("run_id", "N", "D", "E", "M", "B", "operands", "loss", "status",
                               "seed")


def test_format_spec_words_are_the_schema_words():
    spec = pytest.importorskip("training.quant.spec")  # imports torch
    assert tuple(spec.CONVENTIONS) == schema.CONVENTIONS == ("finite", "ieee", "fn")
    assert tuple(spec.ROUNDINGS) == schema.ROUNDINGS == ("nearest_even", "half_away",
                                                         "stochastic")


@pytest.mark.parametrize("overrides, want", [
    (dict(format="e4m3", granularity="128", operands="w+w_bwd+x_bwd"),
     dict(E=4, M=3, B="128", operands="w+w_bwd+x_bwd", format="e4m3", granularity="block")),
    (dict(format="e2m1", granularity="channel", operands="all", rounding="stochastic"),
     dict(E=2, M=1, B="channel", operands="+".join(dims.OPERANDS), format="e2m1",
          granularity="channel")),
    (dict(format="e5m2", granularity="tensor", operands="x", convention="ieee"),
     dict(E=5, M=2, B="tensor", operands="x", format="e5m2", granularity="tensor")),
    (dict(format="e4m3", operands="none"),
     dict(E=8, M=7, B="none", operands="none", format="bf16", granularity="none")),
])
def test_precision_fields_validate_as_bayesfp_reads_them(overrides, want):
    import pandas as pd

    cfg = config.resolve(config.TrainConfig(**overrides), cuda_available=False)
    fields = record.precision_fields(cfg)
    known = set(schema.REQUIRED) | set(schema.OPTIONAL)
    assert set(fields) <= known, set(fields) - known
    row = {"run_id": "r1", "N": 850_000, "D": 2e7, "loss": 3.5, "status": "ok", "seed": 0,
           **fields}
    table, report = validate_runs(pd.DataFrame([row]))
    got = table.iloc[0]
    assert {k: got[k] for k in want} == want
    assert report.n_ok == 1
    for key in ("convention", "rounding"):
        if key in fields:
            assert got[key] == getattr(cfg, key) and got[key] in schema.ALLOWED[key]
