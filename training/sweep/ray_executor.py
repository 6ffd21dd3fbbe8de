"""The Ray executor: the runs of a sweep as Ray tasks, results gathered by the driver.

Each run is one task that starts ``training train`` as a subprocess on its worker
(``training.sweep.jobs.run_job``) and returns the record. Ray places the tasks: ``num_gpus =
1 / per_gpu`` when the cluster has GPUs (Ray sets ``CUDA_VISIBLE_DEVICES`` for the task, so
``per_gpu`` runs share a GPU), ``num_cpus = 1`` otherwise. A data-parallel run (``nproc`` = P >
1) asks for ``num_gpus = P`` (whole GPUs of one node, which Ray lists in its
``CUDA_VISIBLE_DEVICES``; the trainer starts torchrun over them), or ``num_cpus = P`` without
GPUs; one that needs more GPUs (CPUs) than the largest node has is recorded ``failed`` at once
instead of waiting for resources that never come. A task whose worker process dies is
retried by Ray up to ``retries`` times (``max_retries``); a run that fails inside its subprocess
comes back as a ``failed`` record and is resubmitted up to ``retries`` times, as locally. Only the
driver appends to the run table, with the same skip, resume and budget rules as the local
executor; at the deadline the tasks still running are cancelled and not recorded.

Without ``address`` a local Ray instance is started (``per_gpu`` CPUs when there is no GPU) and
stopped at the end; a driver already connected (``ray.init`` called before) is used as it is.
With ``address`` the cluster's nodes must have this source tree, its Python environment and the
data at the same paths.
"""

import os

from training.sweep import jobs
from training.sweep.estimate import nproc_of

WAIT_S = 0.5


def _connect(address, per_gpu, gpus):
    """Connect to Ray; return whether this call started it (and must stop it)."""
    import ray

    if ray.is_initialized():
        return False
    env = {"PYTHONPATH": os.pathsep.join(
        [str(jobs.SOURCE_ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep)
                                   if p])}
    kw = {"runtime_env": {"env_vars": env}, "log_to_driver": False}
    if address:
        ray.init(address=address, **kw)
    else:
        ray.init(num_cpus=None if gpus else per_gpu, include_dashboard=False, **kw)
    return True


def largest_node(resource):
    """The most of ``resource`` ("GPU" or "CPU") that one alive node of the cluster has."""
    import ray

    return max([int(n.get("Resources", {}).get(resource, 0)) for n in ray.nodes()
                if n.get("Alive", True)] or [0])


def task_options(nproc, n_gpu, per_gpu):
    """Ray resources of a run of ``nproc`` processes and the capacity units it takes.

    Parameters
    ----------
    nproc : int
        Processes of the run (1 for a single-process run).
    n_gpu : int
        GPUs of the cluster (0: CPUs only).
    per_gpu : int
        Runs sharing one GPU.

    Returns
    -------
    options : dict
        ``num_gpus`` and ``num_cpus`` for ``.options()``.
    units : int
        Slots it takes out of ``n_gpu * per_gpu`` (or out of the CPUs): ``per_gpu`` per whole
        GPU, one per CPU.
    """
    p = max(1, nproc)
    if n_gpu:
        if p > 1:
            return {"num_gpus": p, "num_cpus": 1}, p * per_gpu
        return {"num_gpus": 1.0 / per_gpu, "num_cpus": 1}, 1
    return {"num_cpus": p}, p


def execute(todo, ctx, per_gpu, address=None):
    """Make the runs of ``todo`` on Ray and record each outcome through ``ctx``.

    Parameters
    ----------
    todo : list of training.sweep.grid.Run
        Largest first.
    ctx : training.sweep.runner.Context
    per_gpu : int
        Runs sharing one GPU; without GPUs, CPU processes of a local instance.
    address : str, optional
        Ray cluster address.
    """
    try:
        import ray
    except ModuleNotFoundError:
        raise ValueError("executor: ray is not installed (pip install 'bayesfp[cluster]')") \
            from None
    from ray.exceptions import RayError

    started = _connect(address, per_gpu, ctx.estimator.device == "gpu")
    try:
        resources = ray.cluster_resources()
        n_gpu = int(resources.get("GPU", 0))
        capacity = n_gpu * per_gpu if n_gpu else max(1, int(resources.get("CPU", 1)))
        widest = largest_node("GPU" if n_gpu else "CPU")
        task = ray.remote(max_retries=ctx.retries)(jobs.run_job)
        workdir = None if address else ctx.workdir  # remote nodes keep their files to themselves
        env = {"OMP_NUM_THREADS": "1"} if not n_gpu else {}
        inflight = {}  # ObjectRef -> run
        pending, used = [], 0
        for i, run in enumerate(todo):
            p = nproc_of(run)
            if p == 1 or p <= widest:
                pending.append(run)
                continue
            what = "GPUs" if n_gpu else "CPUs"
            why = (f"nproc: {p} processes need {p} {what} on one node, but the largest node of "
                   f"the Ray cluster has {widest}; run it on a larger one, then --retry-failed")
            ctx.record(run, dict(jobs.failed_base(run), reason=why, sweep_wall_s=0.0), 0.0,
                       pending + todo[i + 1:])
        while pending or inflight:
            if ctx.past_deadline():
                for ref, run in inflight.items():
                    ray.cancel(ref, force=True)
                    ctx.say(f"stopped  {run.run_id} {run.label()} at the time budget "
                            f"(not recorded; it runs again next time)")
                break
            for run in list(pending):
                if used >= capacity:
                    break
                options, units = task_options(nproc_of(run), n_gpu, per_gpu)
                if not ctx.fits(run) or (used + units > capacity and inflight):
                    continue
                pending.remove(run)
                used += units
                spec = jobs.job_spec(run, workdir, env, ctx.run_timeout)
                inflight[task.options(**options).remote(spec)] = run
            if not inflight:
                if pending:
                    ctx.say(f"time budget: {len(pending)} runs do not fit; stopping")
                break
            ready, _ = ray.wait(list(inflight), num_returns=1, timeout=WAIT_S)
            for ref in ready:
                run = inflight.pop(ref)
                used -= task_options(nproc_of(run), n_gpu, per_gpu)[1]
                try:
                    result = ray.get(ref)
                    record, retryable, seconds = (result["record"], result["retryable"],
                                                  result["seconds"])
                except RayError as exc:
                    msg = str(exc).strip().splitlines()
                    record = dict(jobs.failed_base(run), reason=f"ray: {type(exc).__name__}: "
                                  f"{msg[0] if msg else ''}"[:jobs.REASON_CHARS])
                    retryable, seconds = False, 0.0  # Ray already retried the task
                if retryable and ctx.retry(run, record):
                    pending.insert(0, run)
                    continue
                ctx.record(run, record, seconds, pending + list(inflight.values()))
    except KeyboardInterrupt:
        for ref in list(inflight):
            ray.cancel(ref, force=True)
        raise
    finally:
        if started:
            ray.shutdown()
