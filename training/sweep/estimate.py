"""Predicted run times and the dry-run plan of a sweep.

A run's time in a slot is ``startup + D / tokens_per_s * K / gain(K)``: the process start-up
(Python, torch, data, graph capture, evaluations), then its tokens at the single-run throughput
of its size and class (``bf16`` baseline or ``quant``), slowed by the ``K - 1`` runs sharing its
device. ``gain(K)`` is the total throughput of K concurrent runs over that of one.

A data-parallel run (``nproc`` = P > 1) has its P devices to itself (no sharing) and trains its
tokens P x ``efficiency`` times faster than one process: ``startup + D / tokens_per_s / (P *
efficiency)``. The efficiency is ``DDP_EFFICIENCY`` (assumed) unless a measured value is given
(``--ddp-efficiency``, e.g. from the table of ``benchmarks/bench_ddp.py``); the start-up is not
divided.

Throughput comes from, in order:

1. runs of this sweep already finished (the ratio of their measured time to the prediction,
   per size and class, corrects every later prediction of that size and class);
2. a measured table (``--throughput FILE``): the JSON written by ``benchmarks/bench_train.py``
   (rows ``size``, ``mode``, ``tokens_per_s``; mode ``bf16 graph`` gives the ``bf16`` class, a
   quantized graph mode the ``quant`` class), or ``{"tokens_per_s": {SIZE: {"bf16": x, "quant":
   y}}}``;
3. FLOPs at an assumed rate (the constants below, printed with every plan): the model's
   ``C / D`` plus the LM head's ``6 d V`` FLOPs per token, at ``GPU_MFU`` of ``GPU_PEAK_FLOPS``
   with at least ``GPU_MIN_STEP_S`` per step on a GPU, at ``CPU_FLOPS`` per process on the CPU;
   quantized runs ``QUANT_SLOWDOWN`` times slower.
"""

import json
import statistics
from collections import Counter
from pathlib import Path

# Assumptions, used only where nothing was measured.
GPU_PEAK_FLOPS = 989e12  # H100 SXM dense bf16
GPU_MFU = 0.05  # models of 0.2-3.4M parameters fill little of an H100
GPU_MIN_STEP_S = 1.0e-3  # a CUDA-graph step of a tiny model is launch-bound
CPU_FLOPS = 5e9  # one single-threaded CPU process
QUANT_SLOWDOWN = 2.0  # fake-quant casts around each quantized GEMM
STARTUP_S = {"gpu": 20.0, "cpu": 6.0}  # process start, data, graph capture, evals, PTQ
# Total throughput of K runs sharing one GPU over one run. Measured for K = 4 on a 0.8M model
# (about 2x); the steps between are interpolated, and more than 4 is assumed to gain no more.
PACK_GAIN = {1: 1.0, 2: 1.35, 3: 1.7, 4: 2.0}
# Tokens/s of a P-process data-parallel run over P times those of one process.
DDP_EFFICIENCY = 0.85


def nproc_of(run):
    """Processes of ``run``: its config's ``nproc``, 1 for a single-process run (0 or 1)."""
    return max(1, int(run.config.nproc or 0))


def pack_gain(k, device):
    """Total throughput of ``k`` concurrent runs over one run on a ``device`` (gpu or cpu)."""
    if device == "cpu":
        return float(k)  # one process per core
    return PACK_GAIN.get(k, PACK_GAIN[max(PACK_GAIN)]) if k > 0 else 1.0


def load_throughput(path):
    """Read a tokens/s table: ``{(size, kind): tokens_per_s}``.

    Parameters
    ----------
    path : str or os.PathLike
        ``benchmarks/bench_train.py`` output or ``{"tokens_per_s": {size: {kind: x}}}``.

    Raises
    ------
    ValueError
        On a missing file or one in neither layout.
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"throughput: file not found: {path}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"throughput: {path} is not valid JSON ({exc.msg})") from None
    table = {}
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        for row in data["rows"]:
            mode, tps = str(row.get("mode", "")), row.get("tokens_per_s")
            if not tps or "graph" not in mode:
                continue
            kind = "bf16" if mode.startswith("bf16") else "quant"
            table[(str(row["size"]), kind)] = float(tps)
    elif isinstance(data, dict) and isinstance(data.get("tokens_per_s"), dict):
        for size, kinds in data["tokens_per_s"].items():
            for kind, tps in kinds.items():
                if kind not in ("bf16", "quant"):
                    raise ValueError(f"throughput: {path}: class '{kind}' of size {size} is not "
                                     f"bf16 or quant")
                table[(str(size), kind)] = float(tps)
    else:
        raise ValueError(f"throughput: {path} has neither 'rows' nor 'tokens_per_s'")
    return table


class Estimator:
    """Predicts a run's wall time in a slot of a device shared by ``per_device`` runs.

    Parameters
    ----------
    device : {"gpu", "cpu"}
    per_device : int
        Runs sharing one device (``--per-gpu``); on the CPU each run has a core.
    table : dict, optional
        ``{(size, kind): tokens_per_s}`` measured for one run alone (``load_throughput``).
    ddp_efficiency : float, optional
        Measured scaling efficiency of data-parallel runs (tokens/s at P processes over P times
        one process's); default ``DDP_EFFICIENCY``, stated as assumed.
    """

    def __init__(self, device, per_device, table=None, ddp_efficiency=None):
        assert device in ("gpu", "cpu"), device
        if ddp_efficiency is not None and not 0 < ddp_efficiency <= 1:
            raise ValueError(f"ddp_efficiency: must be in (0, 1], got {ddp_efficiency}")
        self.device = device
        self.per_device = per_device
        self.table = dict(table or {})
        self.ddp_measured = ddp_efficiency is not None
        self.ddp_efficiency = DDP_EFFICIENCY if ddp_efficiency is None else float(ddp_efficiency)
        self._ratios = {}
        self._nproc = Counter()  # data-parallel runs planned, by processes (for assumptions())

    def tokens_per_s(self, run):
        """Single-run throughput of ``run`` and where it comes from: (tokens/s, source)."""
        from training.model import SIZES

        key = (run.resolved.model, run.kind)
        if key in self.table:
            return self.table[key], "measured"
        d = SIZES[run.resolved.model].n_embd
        flops_per_token = run.C / run.D + 6.0 * d * run.vocab_size
        if self.device == "gpu":
            tps = GPU_MFU * GPU_PEAK_FLOPS / flops_per_token
            step = run.resolved.batch_size * run.resolved.seq_len
            tps = min(tps, step / GPU_MIN_STEP_S)
        else:
            tps = CPU_FLOPS / flops_per_token
        if run.quantized:
            tps /= self.quant_slowdown()[0]
        return tps, "assumed"

    def quant_slowdown(self):
        """How much slower a quantized run is than BF16, and from how many measured sizes:
        the median over the sizes that ``table`` has in both kinds, else ``QUANT_SLOWDOWN``."""
        pairs = [self.table[(size, "bf16")] / tps for (size, kind), tps in self.table.items()
                 if kind == "quant" and (size, "bf16") in self.table and tps > 0]
        return (statistics.median(pairs), len(pairs)) if pairs else (QUANT_SLOWDOWN, 0)

    def predicted(self, run, per_device=None):
        """Wall seconds of ``run`` in a slot, before corrections from finished runs, with
        ``per_device`` runs sharing its device (default: this sweep's)."""
        tps, _ = self.tokens_per_s(run)
        p = nproc_of(run)
        if p > 1:  # whole devices, P processes
            return STARTUP_S[self.device] + run.D / tps / (p * self.ddp_efficiency)
        k = int(per_device or self.per_device)
        share = 1.0 if self.device == "cpu" else k / pack_gain(k, self.device)
        return STARTUP_S[self.device] + run.D / tps * share

    def seconds(self, run):
        """Wall seconds of ``run`` in a slot, corrected by the runs finished so far."""
        model = run.resolved.model
        ratios = self._ratios.get((model, run.kind))
        if not ratios:  # the same size in the other kind, else every finished run
            ratios = [r for (m, _), rs in self._ratios.items() if m == model for r in rs]
        if not ratios:
            ratios = [r for rs in self._ratios.values() for r in rs]
        factor = statistics.median(ratios) if ratios else 1.0
        return self.predicted(run) * factor

    def observe(self, run, seconds, per_device=None):
        """Record that ``run`` took ``seconds`` in a slot, ``per_device`` runs sharing its device
        then (default: this sweep's), so that runs timed at another packing correct the
        predictions at this one."""
        if seconds and seconds > 0:
            key = (run.resolved.model, run.kind)
            self._ratios.setdefault(key, []).append(seconds / self.predicted(run, per_device))

    def plan(self, runs):
        """Note the data-parallel runs among ``runs`` (for ``assumptions``)."""
        self._nproc = Counter(nproc_of(r) for r in runs if nproc_of(r) > 1)

    @property
    def n_observed(self):
        return sum(len(r) for r in self._ratios.values())

    def assumptions(self):
        """Lines stating what the predictions assume."""
        lines = []
        if self.device == "gpu":
            lines.append(f"unmeasured sizes: FLOPs (model + LM head) at {GPU_MFU:.0%} of "
                         f"{GPU_PEAK_FLOPS / 1e12:.0f} TFLOP/s, at least "
                         f"{GPU_MIN_STEP_S * 1e3:.1f} ms per step; {self._slowdown_text()}")
            gain = pack_gain(self.per_device, "gpu")
            lines.append(f"{self.per_device} runs per GPU give {gain:.2f}x the throughput of "
                         f"one; start-up {STARTUP_S['gpu']:.0f} s per run")
        else:
            lines.append(f"unmeasured sizes: FLOPs (model + LM head) at {CPU_FLOPS / 1e9:g} "
                         f"GFLOP/s per process; {self._slowdown_text()}; "
                         f"start-up {STARTUP_S['cpu']:.0f} s per run")
        if self._nproc:
            unit = "GPUs" if self.device == "gpu" else "CPU slots"
            how = "measured" if self.ddp_measured else "assumed"
            lines.append("data-parallel runs: " + ", ".join(
                f"{n} on {p} {unit} ({p * self.ddp_efficiency:.2f}x one process)"
                for p, n in sorted(self._nproc.items()))
                + f"; efficiency {self.ddp_efficiency:.2f} ({how}); start-up not divided")
        if self.n_observed:
            lines.append(f"corrected by {self.n_observed} finished runs of this sweep (a size "
                         f"not yet run in one kind by its runs in the other)")
        return lines

    def _slowdown_text(self):
        slow, n = self.quant_slowdown()
        src = f"median of {n} measured sizes" if n else "assumed"
        return f"quantized runs {slow:.2f}x slower ({src})"


def _count_line(name, counter, order=None):
    keys = order if order is not None else sorted(
        counter, key=lambda k: (0, int(k), "") if str(k).isdigit() else (1, 0, str(k)))
    return f"  {name:<12}" + "  ".join(f"{k} {counter[k]}" for k in keys if counter[k])


def _hours(s):
    return f"{s / 3600:.2f} h" if s >= 3600 else f"{s / 60:.1f} min"


def describe(plan, done, estimator, n_devices):
    """Return the dry-run lines of a plan.

    Parameters
    ----------
    plan : training.sweep.grid.Plan
    done : dict of str to dict
        Finished records by run id (the ledger's).
    estimator : Estimator
    n_devices : int
        GPUs (1 for the CPU: ``estimator.per_device`` processes).

    Returns
    -------
    list of str
    """
    from training.model import SIZES

    runs = plan.runs
    todo = [r for r in runs if r.run_id not in done]
    lines = [f"{len(runs)} runs ({plan.n_points} grid points, {plan.n_duplicates} duplicates "
             f"collapsed)"]
    by = {
        "model": Counter(r.resolved.model for r in runs),
        "D (tokens)": Counter(r.D for r in runs),
        "format": Counter(r.resolved.format for r in runs),
        "B": Counter(r.resolved.granularity if r.quantized else "none" for r in runs),
        "operands": Counter(r.resolved.operands for r in runs),
        "seed": Counter(r.resolved.seed for r in runs),
    }
    order = {"model": [s for s in SIZES if by["model"][s]]}
    for name, counter in by.items():
        lines.append(_count_line(name, counter, order.get(name)))
    status = Counter(done[r.run_id].get("status") for r in runs if r.run_id in done)
    status_text = ", ".join(f"{k} {v}" for k, v in status.items()) or "none"
    lines.append(f"done: {len(runs) - len(todo)} ({status_text}); to run: {len(todo)}")
    extra = len([k for k in done if k not in {r.run_id for r in runs}])
    if extra:
        lines.append(f"the run table also holds {extra} records of runs not in this grid")
    lines.append(f"largest run: {max(runs, key=lambda r: r.C).label()} "
                 f"({max(r.C for r in runs):.3g} FLOPs); most epochs "
                 f"{max(r.epochs for r in runs):.2f}")
    estimator.plan(todo)
    slot_s = [estimator.seconds(r) for r in todo]
    sources = Counter(estimator.tokens_per_s(r)[1] for r in todo)
    slots = n_devices * estimator.per_device
    # a data-parallel run holds P whole GPUs (P x per_device slots) or P CPU slots
    held = [nproc_of(r) * (estimator.per_device if estimator.device == "gpu" else 1)
            if nproc_of(r) > 1 else 1 for r in todo]
    wall = sum(s * h for s, h in zip(slot_s, held)) / slots if slots else 0.0
    if estimator.device == "gpu":
        where = (f"{n_devices} GPU{'s' if n_devices != 1 else ''} x {estimator.per_device} "
                 f"runs each ({_hours(wall * n_devices)} GPU time)")
    else:
        where = f"{estimator.per_device} CPU processes"
    lines.append(f"estimate: {_hours(wall)} wall on {where}; throughput "
                 + ", ".join(f"{k} for {v} runs" for k, v in sources.items()))
    if slot_s:
        lines.append(f"  longest run {_hours(max(slot_s))}, shortest {_hours(min(slot_s))}")
    lines += ["  assumed: " + a for a in estimator.assumptions()]
    return lines
