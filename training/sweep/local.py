"""The local executor: runs as subprocesses, ``per_gpu`` at a time on each visible GPU, or
``per_gpu`` at a time on the CPU when there is none.

Each slot is pinned to one GPU through ``CUDA_VISIBLE_DEVICES``; several slots share a GPU
(small runs leave most of an H100 idle, so packing them raises the total throughput). CPU runs get
``OMP_NUM_THREADS`` = cores / slots. Before the first quantized run on a GPU the fake-quant kernel
is built once, so the slots do not all wait on one build.
"""

import os
import signal
import subprocess
import sys
import time

from training.sweep import jobs

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


def slot_env(gpu, n_slots):
    """Environment of a child in a slot on ``gpu`` (None: the CPU)."""
    if gpu is None:
        threads = max(1, (os.cpu_count() or 1) // n_slots)
        return {"CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": str(threads)}
    threads = max(1, (os.cpu_count() or 1) // n_slots)
    return {"CUDA_VISIBLE_DEVICES": gpu, "OMP_NUM_THREADS": str(threads)}


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
    slots = [g for g in gpus for _ in range(per_gpu)] if gpus else [None] * per_gpu
    if gpus and any(r.quantized for r in todo):
        prebuild_kernel(ctx, gpus[0])
    pending = list(todo)
    active = {}  # slot index -> (run, spec, proc, paths, t0)
    old = {s: signal.signal(s, _raise_stop) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while pending or active:
            if ctx.past_deadline():
                for run, _, proc, _, _ in active.values():
                    jobs.kill(proc)
                    ctx.say(f"stopped  {run.run_id} {run.label()} at the time budget "
                            f"(not recorded; it runs again next time)")
                active.clear()
                break
            for slot, gpu in enumerate(slots):
                if slot in active:
                    continue
                run = next((r for r in pending if ctx.fits(r)), None)
                if run is None:
                    break
                pending.remove(run)
                spec = jobs.job_spec(run, ctx.workdir, slot_env(gpu, len(slots)),
                                     ctx.run_timeout)
                proc, p = jobs.start(spec)
                active[slot] = (run, spec, proc, p, time.monotonic())
            if not active:
                if pending:
                    ctx.say(f"time budget: {len(pending)} runs do not fit; stopping")
                break
            time.sleep(POLL_S)
            for slot in list(active):
                run, spec, proc, p, t0 = active[slot]
                seconds = time.monotonic() - t0
                timed_out = bool(ctx.run_timeout) and seconds > ctx.run_timeout
                if timed_out:
                    jobs.kill(proc)
                elif proc.poll() is None:
                    continue
                del active[slot]
                record, retryable = jobs.outcome(spec, p, proc.returncode, seconds, timed_out)
                if retryable and ctx.retry(run, record):
                    pending.insert(0, run)
                    continue
                remaining = pending + [a[0] for a in active.values()]
                ctx.record(run, record, seconds, remaining)
            running = sum(min(time.monotonic() - a[4], ctx.estimator.seconds(a[0]))
                          for a in active.values())
            ctx.progress_to(ctx.done_s + running)
    except (KeyboardInterrupt, _Stop) as exc:
        for run, _, proc, _, _ in active.values():
            jobs.kill(proc)
        ctx.say(f"interrupted ({type(exc).__name__} {exc}): {len(active)} runs in flight "
                f"stopped, not recorded")
        raise
    finally:
        for s, h in old.items():
            signal.signal(s, h)
