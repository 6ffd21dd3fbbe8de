"""A sweep from grid file to run table: plan, skip what is finished, hand the rest to an
executor, append each outcome once.

Order: largest runs first (by FLOPs), so the long runs do not end up alone at the tail. A time
budget (``max_minutes``) sets a deadline: a run is started only if its predicted time, times
``FIT_MARGIN``, ends before it (smaller runs may still fit when a large one does not; the margin
covers predictions made before the sweep has timed a size), and runs still going at the deadline
are stopped and not recorded, so they run again next time. Runs that fail outside the trainer
(non-zero exit, signal, time limit) are started again up to ``retries`` times in the same sweep
before their ``failed`` record is written.
"""

import math
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from tqdm import tqdm

from training.sweep import jobs
from training.sweep.estimate import Estimator, describe, load_throughput, nproc_of
from training.sweep.grid import expand, load_grid
from training.sweep.ledger import Ledger, sweep_dir

EXECUTORS = ("local", "ray")
# A run starts only if FIT_MARGIN times its predicted seconds end before the deadline: a run
# stopped at the deadline is lost, one not started costs nothing.
FIT_MARGIN = 1.15


@dataclass
class Context:
    """What an executor needs besides the runs: where, how long, how to report."""

    ledger: Ledger
    estimator: Estimator
    workdir: object
    deadline: float | None = None  # time.monotonic() value
    run_timeout: float = 0.0  # seconds per run; 0: none
    retries: int = 0
    progress: bool = True
    attempts: Counter = field(default_factory=Counter)
    counts: Counter = field(default_factory=Counter)
    bar: object = None
    done_s: float = 0.0  # predicted seconds of the runs recorded so far (progress bar units)

    def fits(self, run):
        """Whether ``run`` is predicted to end before the deadline, with ``FIT_MARGIN``."""
        return self.deadline is None or \
            time.monotonic() + FIT_MARGIN * self.estimator.seconds(run) <= self.deadline

    def past_deadline(self):
        return self.deadline is not None and time.monotonic() >= self.deadline

    def say(self, line):
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            print(line, file=sys.stderr, flush=True)

    def start_bar(self, todo):
        total = sum(self.estimator.seconds(r) for r in todo)
        self.bar = tqdm(total=round(total), unit="s", disable=not self.progress,
                        dynamic_ncols=True, file=sys.stderr, mininterval=1.0,
                        bar_format="{desc} {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]")
        self._n_todo = len(todo)
        self._postfix()

    def _postfix(self):
        done = sum(self.counts.values())
        parts = [f"{done}/{self._n_todo} runs"] + [f"{k} {v}" for k, v in self.counts.items()]
        self.bar.set_description_str(", ".join(parts), refresh=False)

    def retry(self, run, record):
        """Whether to start ``run`` again after a failure outside the trainer."""
        self.attempts[run.run_id] += 1
        if self.attempts[run.run_id] <= self.retries:
            self.say(f"retry {self.attempts[run.run_id]}/{self.retries} {run.run_id} "
                     f"{run.label()}: {record['reason'][:200]}")
            return True
        return False

    def record(self, run, record, seconds, remaining):
        """Append the outcome of ``run``; ``remaining``: the runs not finished yet, for the ETA."""
        self.done_s += self.estimator.seconds(run)
        # the packing it ran at, so that a later sweep at another one reads its time right
        record.setdefault("sweep_per_gpu", self.estimator.per_device)
        if self.ledger.append(record):
            status = record.get("status")
            self.counts[status] += 1
            if status in ("ok", "diverged"):
                self.estimator.observe(run, seconds)
            loss = record.get("loss")
            loss = f"loss {loss:.4f}" if isinstance(loss, float) and math.isfinite(loss) else ""
            why = f" ({record.get('reason', '')[:300]})" if status != "ok" else ""
            self.say(f"{status:<8} {run.run_id} {run.label()} {loss} {seconds:.0f} s{why}")
        if self.bar is not None:
            self.bar.total = round(self.done_s + sum(self.estimator.seconds(r)
                                                     for r in remaining))
            self.progress_to(self.done_s)
            self._postfix()

    def progress_to(self, n):
        if self.bar is not None:
            self.bar.update(max(0, round(n) - self.bar.n))

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def visible_gpus():
    """GPU indices this process may use (``CUDA_VISIBLE_DEVICES`` or all), [] without CUDA."""
    import torch

    if not torch.cuda.is_available():
        return []
    n = torch.cuda.device_count()
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is None:
        return [str(i) for i in range(n)]
    return [x.strip() for x in env.split(",") if x.strip()][:n]


def order(runs):
    """Largest first (FLOPs), ties in plan order."""
    return sorted(runs, key=lambda r: -r.C)


@dataclass
class Result:
    """What a sweep did: counts by status of the records written, runs left."""

    written: Counter
    left: int
    harvested: int = 0
    repaired_bytes: int = 0


def run_sweep(grid_path, out, per_gpu=1, executor="local", dry_run=False, max_minutes=0.0,
              retry_failed=False, retries=0, run_timeout=0.0, throughput=None, address=None,
              progress=True, gpus=None, ddp_efficiency=None, mps=False, echo=print):
    """Run (or plan) the sweep of a grid file into a JSONL run table.

    Parameters
    ----------
    grid_path : str or os.PathLike
        Grid file (see ``training.sweep.grid``).
    out : str or os.PathLike
        The run table (JSONL); created if missing, appended to otherwise.
    per_gpu : int
        Runs sharing one GPU, or CPU processes without a GPU.
    executor : {"local", "ray"}
    dry_run : bool
        Print the plan and its time estimate; run nothing.
    max_minutes : float
        Time budget (0: none).
    retry_failed : bool
        Run the runs whose record is ``failed`` again (their records are moved aside).
    retries : int
        Extra attempts of a run that failed outside the trainer, in this sweep.
    run_timeout : float
        Seconds a run may take (0: no limit); a run over it is killed and recorded ``failed``.
    throughput : str, optional
        Measured tokens/s table (see ``training.sweep.estimate.load_throughput``).
    address : str, optional
        Ray cluster address (``executor="ray"``); default: start a local instance.
    progress : bool
        Show a progress bar.
    gpus : list of str, optional
        GPU indices for the local executor; default the visible ones. A dry run takes any list,
        to plan for GPUs this machine does not have.
    ddp_efficiency : float, optional
        Measured scaling efficiency of data-parallel runs (``nproc`` > 1) for the time
        estimates; default ``training.sweep.estimate.DDP_EFFICIENCY``, stated as assumed.
    mps : bool
        Local executor on GPUs: run an MPS daemon for the sweep, so that the runs packed on
        one GPU run their kernels side by side (``training.sweep.mps``).
    echo : callable
        Prints the plan and summary lines.

    Returns
    -------
    Result

    Raises
    ------
    ValueError
        On a bad grid file, option or run table.
    """
    t_start = time.monotonic()
    if executor not in EXECUTORS:
        raise ValueError(f"executor: expected local or ray, got '{executor}'")
    if per_gpu < 1:
        raise ValueError(f"per_gpu: must be >= 1, got {per_gpu}")
    if max_minutes < 0 or run_timeout < 0 or retries < 0:
        raise ValueError("max_minutes, run_timeout and retries must be >= 0")
    table = load_throughput(throughput) if throughput else None
    plan = expand(load_grid(grid_path))
    if gpus is None:
        gpus = visible_gpus() if executor == "local" else _ray_gpus()
    elif not dry_run and executor == "local":
        missing = [g for g in gpus if g not in visible_gpus()]
        if missing:
            raise ValueError(f"gpus: {', '.join(missing)} not visible (CUDA_VISIBLE_DEVICES or "
                             f"no CUDA)")
    device = "gpu" if gpus else "cpu"
    estimator = Estimator(device, per_gpu, table, ddp_efficiency)
    n_devices = max(1, len(gpus)) if device == "gpu" else 1

    if dry_run:
        from training.sweep.ledger import scan

        done = {r["run_id"]: r for r in scan(out)[0]}
        _observe(estimator, plan, done)
        echo(f"grid {grid_path} -> {out}")
        for line in describe(plan, done, estimator, n_devices):
            echo(line)
        wide = [r for r in plan.runs if r.run_id not in done and nproc_of(r) > 1
                and nproc_of(r) > (len(gpus) if device == "gpu" else per_gpu)]
        if wide:
            have = f"{len(gpus)} GPUs" if device == "gpu" else f"{per_gpu} CPU slots"
            echo(f"  warning: {len(wide)} runs need more than the {have} planned for "
                 f"(nproc up to {max(nproc_of(r) for r in wide)}); they would be recorded "
                 f"failed")
        if device == "cpu":
            echo(f"  (no GPU visible: {per_gpu} CPU processes; run on the GPU machine for GPU "
                 f"times, or read them with --throughput)")
        return Result(Counter(), sum(r.run_id not in done for r in plan.runs))

    workdir = sweep_dir(out)
    with Ledger.open(out) as ledger:
        if ledger.repaired:
            echo(f"repaired {out}: removed a torn last line of {ledger.repaired} bytes "
                 f"(kept in {workdir / 'torn.txt'})")
        if retry_failed:
            n = ledger.drop_failed()
            if n:
                echo(f"retrying {n} failed runs (old records in {workdir / 'retried.jsonl'})")
        harvested = 0
        for run in plan.runs:
            if not ledger.finished(run.run_id):
                record = jobs.harvest(run, workdir)
                if record is not None and ledger.append(record):
                    harvested += 1
        if harvested:
            echo(f"recovered {harvested} runs that finished after the last sweep stopped")
        _observe(estimator, plan, ledger.records)
        todo = order([r for r in plan.runs if not ledger.finished(r.run_id)])
        deadline = t_start + 60 * max_minutes if max_minutes else None
        ctx = Context(ledger, estimator, workdir, deadline, run_timeout, retries, progress)
        echo(f"{len(plan.runs)} runs in the grid, {len(plan.runs) - len(todo)} finished, "
             f"{len(todo)} to run ({executor}, {per_gpu} per "
             f"{'GPU on ' + str(len(gpus)) + ' GPUs' if device == 'gpu' else 'CPU'})")
        if todo:
            ctx.start_bar(todo)
            try:
                if executor == "local":
                    from training.sweep.local import execute
                    from training.sweep.mps import mps_daemon

                    if mps and device == "cpu":
                        echo("MPS: no GPU visible; not used")
                    with mps_daemon(mps and device == "gpu", echo):
                        execute(todo, ctx, gpus, per_gpu)
                else:
                    from training.sweep.ray_executor import execute
                    execute(todo, ctx, per_gpu, address)
            finally:
                ctx.close()
        left = sum(not ledger.finished(r.run_id) for r in plan.runs)
        written = ctx.counts
        echo(f"wrote {sum(written.values())} records ("
             + (", ".join(f"{k} {v}" for k, v in written.items()) or "none")
             + f"); {left} runs left; {time.monotonic() - t_start:.0f} s")
        return Result(written, left, harvested, ledger.repaired)


def _observe(estimator, plan, records):
    """Correct the estimator with the finished runs of ``plan`` that carry a sweep wall time."""
    for run in plan.runs:
        rec = records.get(run.run_id)
        if rec and rec.get("status") in ("ok", "diverged") and rec.get("sweep_wall_s"):
            estimator.observe(run, rec["sweep_wall_s"], rec.get("sweep_per_gpu"))


def _ray_gpus():
    """GPUs of the Ray cluster this process is connected to, else the visible ones (a local
    instance gets those)."""
    try:
        import ray
    except ModuleNotFoundError:
        return visible_gpus()
    if ray.is_initialized():
        return [str(i) for i in range(int(ray.cluster_resources().get("GPU", 0)))]
    return visible_gpus()
