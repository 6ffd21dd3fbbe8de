"""The local executor: runs as subprocesses, ``per_gpu`` at a time on each visible GPU, or
``per_gpu`` at a time on the CPU when there is none.

Each single-process run is pinned to one GPU through ``CUDA_VISIBLE_DEVICES``; several share a
GPU (small runs leave most of an H100 idle, so packing them raises the total throughput). A
data-parallel run (``nproc`` = P > 1; the trainer starts torchrun itself) takes P whole GPUs:
it starts only when P GPUs have no active run, gets ``CUDA_VISIBLE_DEVICES`` with those P
indices, and no other run goes on them until it ends. While such a run waits, the P GPUs with the
fewest active runs take no new run, so that they drain; small runs pack on the others. On the CPU
it is P gloo processes and holds P of the ``per_gpu`` CPU slots. A run asking for more GPUs (or
CPU slots) than the sweep has is recorded ``failed`` at once, with the reason.

Every process gets ``OMP_NUM_THREADS`` = cores / slots, times ``per_gpu`` for a process that
holds a whole GPU. Before the first quantized run on a GPU the fake-quant kernel is built once, so
the slots do not all wait on one build.
"""

import os
import signal
import subprocess
import sys
import time

from training.sweep import jobs
from training.sweep.estimate import nproc_of

POLL_S = 0.2
BUILD_TIMEOUT_S = 900


def prebuild_kernel(ctx, gpu):
    """Build (or load from its cache) the fake-quant CUDA kernel in a child on ``gpu``."""
    env = os.environ | {"CUDA_VISIBLE_DEVICES": gpu, "PYTHONPATH": str(jobs.SOURCE_ROOT)}
    code = "from training.quant.kernel import load_extension; load_extension()"
    t0 = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=BUILD_TIMEOUT_S)
        ok = out.returncode == 0
        why = (out.stderr.strip().splitlines() or ["?"])[-1]
    except subprocess.TimeoutExpired:
        ok, why = False, f"no build after {BUILD_TIMEOUT_S} s"
    if ok:
        ctx.say(f"fake-quant kernel ready ({time.monotonic() - t0:.0f} s)")
    else:
        ctx.say(f"warning: fake-quant kernel build failed ({why}); each run falls back as the "
                f"trainer decides")


def slot_env(gpus, n_slots, per_process=1, cores=None):
    """Environment of a child on ``gpus`` (a list of indices; empty: the CPU).

    Parameters
    ----------
    gpus : list of str
        The GPUs of the run: one for a packed run, P (whole) for a P-process run.
    n_slots : int
        Slots of the sweep (GPUs x ``per_gpu``, or the CPU slots).
    per_process : int
        Slots each process of the run holds (``per_gpu`` for a process on a whole GPU).
    cores : int, optional
        CPU cores (default ``os.cpu_count()``).
    """
    cores = cores or os.cpu_count() or 1
    threads = max(1, cores * per_process // n_slots)
    return {"CUDA_VISIBLE_DEVICES": ",".join(gpus), "OMP_NUM_THREADS": str(threads)}


class Slots:
    """Which runs may start where: ``per_gpu`` packed runs per GPU, whole GPUs for P-process runs.

    Without GPUs there is one pool of ``per_gpu`` CPU slots; a P-process run holds P of them.

    Parameters
    ----------
    gpus : list of str
        GPU indices ([]: the CPU).
    per_gpu : int
        Packed runs per GPU, or CPU slots.
    """

    def __init__(self, gpus, per_gpu):
        self.gpus = list(gpus)
        self.per_gpu = per_gpu
        self.load = [0] * len(self.gpus)  # packed runs on each GPU
        self.whole = set()  # GPUs held by a data-parallel run
        self.cpu_used = 0

    @property
    def n_slots(self):
        return len(self.gpus) * self.per_gpu if self.gpus else self.per_gpu

    def too_wide(self, nproc):
        """Why a run of ``nproc`` processes can never start here (None: it can)."""
        if nproc <= 1:
            return None
        if self.gpus:
            if nproc > len(self.gpus):
                return (f"nproc: {nproc} processes need {nproc} GPUs, but this sweep has "
                        f"{len(self.gpus)} (GPU {', '.join(self.gpus)}); run it on a machine "
                        f"with more, then --retry-failed")
            return None
        if nproc > self.per_gpu:
            return (f"nproc: {nproc} processes need {nproc} CPU slots, but this sweep has "
                    f"{self.per_gpu} (no GPU visible; raise --per-gpu)")
        return None

    def _free(self, avoid):
        return [i for i in range(len(self.gpus))
                if not self.load[i] and i not in self.whole and i not in avoid]

    def take(self, nproc, avoid=()):
        """Hold the place of a run of ``nproc`` processes; return its GPU indices or None.

        ``avoid``: GPU positions no new run may take (``reserve``). On the CPU the list is empty
        and the run holds ``nproc`` slots.
        """
        p = max(1, nproc)
        if not self.gpus:
            if self.cpu_used + p > self.per_gpu:
                return None
            self.cpu_used += p
            return []
        if p > 1:
            free = self._free(avoid)
            if len(free) < p:
                return None
            chosen = free[:p]
            self.whole.update(chosen)
            return [self.gpus[i] for i in chosen]
        open_ = [i for i in range(len(self.gpus)) if i not in self.whole and i not in avoid
                 and self.load[i] < self.per_gpu]
        if not open_:
            return None
        i = min(open_, key=lambda j: (self.load[j], j))  # least loaded, then lowest index
        self.load[i] += 1
        return [self.gpus[i]]

    def release(self, gpus, nproc):
        """Give back what ``take`` returned for a run of ``nproc`` processes."""
        p = max(1, nproc)
        if not self.gpus:
            self.cpu_used -= p
            return
        for g in gpus:
            i = self.gpus.index(g)
            if p > 1:
                self.whole.discard(i)
            else:
                self.load[i] -= 1

    def reserve(self, nproc):
        """GPU positions to keep free for a waiting run of ``nproc`` processes.

        The ``nproc`` GPUs that hold the fewest runs (whole GPUs of other data-parallel runs
        last): no new run goes on them, so they drain and the waiting run starts. Empty on the
        CPU, where slots free up by themselves.
        """
        if not self.gpus or nproc <= 1:
            return set()
        order = sorted(range(len(self.gpus)),
                       key=lambda i: (i in self.whole, self.load[i], i))
        return set(order[:nproc])


class _Stop(Exception):
    pass


def _raise_stop(signum, frame):
    raise _Stop(signal.Signals(signum).name)


def execute(todo, ctx, gpus, per_gpu):
    """Make the runs of ``todo`` (largest first) and record each outcome through ``ctx``.

    Parameters
    ----------
    todo : list of training.sweep.grid.Run
    ctx : training.sweep.runner.Context
    gpus : list of str
        GPU indices ([]: the CPU).
    per_gpu : int
        Slots per GPU (or CPU processes).
    """
    slots = Slots(gpus, per_gpu)
    pending = []
    for i, run in enumerate(todo):
        why = slots.too_wide(nproc_of(run))
        if why is None:
            pending.append(run)
        else:
            ctx.record(run, dict(jobs.failed_base(run), reason=why, sweep_wall_s=0.0), 0.0,
                       pending + todo[i + 1:])
    if gpus and any(r.quantized for r in pending):
        prebuild_kernel(ctx, gpus[0])
    active = {}  # id -> (run, spec, proc, paths, t0, gpus)
    n_started = 0
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while pending or active:
            if ctx.past_deadline():
                for run, _, proc, _, _, _ in active.values():
                    jobs.kill(proc)
                    ctx.say(f"stopped  {run.run_id} {run.label()} at the time budget "
                            f"(not recorded; it runs again next time)")
                active.clear()
                break
            reserved = set()
            for run in list(pending):
                if not ctx.fits(run):
                    continue
                p = nproc_of(run)
                got = slots.take(p, reserved)
                if got is None:
                    if p > 1 and not reserved:
                        reserved = slots.reserve(p)
                    continue
                pending.remove(run)
                per_process = per_gpu if gpus and p > 1 else 1
                env = slot_env(got, slots.n_slots, per_process)
                spec = jobs.job_spec(run, ctx.workdir, env, ctx.run_timeout)
                proc, paths = jobs.start(spec)
                active[n_started] = (run, spec, proc, paths, time.monotonic(), got)
                n_started += 1
            if not active:
                if pending:
                    ctx.say(f"time budget: {len(pending)} runs do not fit; stopping")
                break
            time.sleep(POLL_S)
            for key in list(active):
                run, spec, proc, paths, t0, got = active[key]
                seconds = time.monotonic() - t0
                timed_out = bool(ctx.run_timeout) and seconds > ctx.run_timeout
                if timed_out:
                    jobs.kill(proc)
                elif proc.poll() is None:
                    continue
                del active[key]
                slots.release(got, nproc_of(run))
                record, retryable = jobs.outcome(spec, paths, proc.returncode, seconds,
                                                 timed_out)
                if retryable and ctx.retry(run, record):
                    pending.insert(0, run)
                    continue
                remaining = pending + [a[0] for a in active.values()]
                ctx.record(run, record, seconds, remaining)
            running = sum(min(time.monotonic() - a[4], ctx.estimator.seconds(a[0]))
                          for a in active.values())
            ctx.progress_to(ctx.done_s + running)
    except (KeyboardInterrupt, _Stop) as exc:
        for run, _, proc, _, _, _ in active.values():
            jobs.kill(proc)
        ctx.say(f"interrupted ({type(exc).__name__} {exc}): {len(active)} runs in flight "
                f"stopped, not recorded")
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
