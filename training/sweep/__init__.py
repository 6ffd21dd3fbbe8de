"""Sweeps: grid files expanded to run configs, run by a crash-safe local or Ray executor.

- ``grid``: read a grid file (TOML or JSON) and expand it to runs with stable ids.
- ``ledger``: the JSONL run table of a sweep (torn-line repair, single-writer lock, appends).
- ``estimate``: predicted run times from measured throughput or FLOPs, and the dry-run plan.
- ``jobs``: one run as a subprocess of ``training train`` and its outcome as a run record.
- ``local``: the default executor, packing runs on the visible GPUs (or the CPU).
- ``ray_executor``: the same on a Ray cluster.
- ``cli``: ``training sweep GRID --out runs.jsonl``.
"""
