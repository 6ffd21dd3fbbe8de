"""Turn a sweep's run table into the run data that ships with bayesfp (``bayesfp/data/runs.csv``).

    python scripts/ship_dataset.py sweeps/fp-h100.jsonl --grid grids/fp-h100.toml \
        --out bayesfp/data/runs.csv

Checks the table (schema validation and the coverage requirements of docs/dataset.md; it refuses
to write a table that misses any unless ``--allow-unmet``), then writes one CSV row per run with
every scalar field of the records, the loss curves as JSON text, and three added columns:
``model`` (the size's name from the config), ``group`` (``core`` for the grid's core sizes, the
size's name for a size of another shape, e.g. ``3.4m-w512``, so that a fit can pool over it or
leave it out) and ``source`` (where the run comes from). Rows keep the table's order. Once
``bayesfp/data/runs.csv`` exists it is the default data of ``bayesfp pipeline``.
"""

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

# Sizes that differ from the core family in shape, not only in N: their own group.
SHAPE_VARIANTS = ("-w",)


def flatten(records: list[dict], source: str) -> pd.DataFrame:
    """One row per record: scalars as they are, lists and dicts as JSON text, plus ``model``,
    ``group`` and ``source``."""
    rows = []
    for rec in records:
        row = {k: (json.dumps(v) if isinstance(v, (list, dict)) else v) for k, v in rec.items()}
        model = str(json.loads(rec["config"])["model"]) if rec.get("config") else ""
        row["model"] = model
        row["group"] = model if any(t in model for t in SHAPE_VARIANTS) else "core"
        row["source"] = source
        rows.append(row)
    return pd.DataFrame(rows)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table", type=Path, help="The sweep's run table (JSONL).")
    ap.add_argument("--grid", required=True, help="The grid file the sweep ran (named in source).")
    ap.add_argument("--out", type=Path, required=True, help="CSV to write.")
    ap.add_argument("--gpu", default="", help="GPU named in source (default: the records').")
    ap.add_argument("--allow-unmet", action="store_true",
                    help="Write even if coverage requirements are not met.")
    args = ap.parse_args(argv)

    from bayesfp.runs import read_runs, validate_runs
    from bayesfp.runs.coverage import coverage, unmet

    try:
        records = [json.loads(line) for line in args.table.read_text().splitlines()
                   if line.strip()]
    except (OSError, json.JSONDecodeError) as err:
        print(f"error: {args.table}: {err}", file=sys.stderr)
        return 2
    gpus = sorted({str(r.get("gpu", "")) for r in records} - {""})
    gpu = args.gpu or ", ".join(gpus) or "unknown GPU"
    df = flatten(records, f"real: {gpu}, sweep of {args.grid}")
    clean, report = validate_runs(df, source=str(args.table))
    missing = unmet(coverage(clean))
    for c in missing:
        print(f"unmet: {c.name}: required {c.required}, found {c.found}"
              + (f"; missing {', '.join(map(str, c.missing[:8]))}" if c.missing else ""))
    if missing and not args.allow_unmet:
        print(f"error: {len(missing)} coverage requirements unmet; nothing written "
              f"(--allow-unmet to write anyway)", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(".tmp-" + args.out.name)
    df.to_csv(tmp, index=False)
    back = read_runs(tmp)  # what users will read
    validate_runs(back, source=str(tmp))
    if len(back) != len(df) or list(back["run_id"]) != list(df["run_id"]):
        print("error: the CSV does not read back to the same runs", file=sys.stderr)
        return 1
    tmp.replace(args.out)
    print(f"wrote {args.out}: {report.n_runs} runs "
          f"({', '.join(f'{s} {k}' for s, k in report.counts.items())})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
