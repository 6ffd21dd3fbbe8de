"""NVIDIA's Multi-Process Service for the runs packed on one GPU.

Without MPS, processes sharing a GPU take turns on it (time slices); with MPS their kernels run
side by side, which suits the small, launch-bound runs of a sweep. :func:`mps_daemon` starts a
control daemon for the duration of a sweep (its pipe and log folders private to the sweep, so
that it neither needs nor touches a system-wide one) and stops it afterwards. Worker processes
inherit ``CUDA_MPS_PIPE_DIRECTORY`` from this process's environment and so become its clients.
If the daemon cannot be started (no binary, no permission), the sweep goes on without it and
says so. Nothing here changes the GPU's settings (compute mode, clocks, MIG).
"""

import contextlib
import os
import shutil
import subprocess
import tempfile

CONTROL = "nvidia-cuda-mps-control"
ENV_KEYS = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")


def _control(args, env, stdin=None, timeout=30.0):
    return subprocess.run([CONTROL, *args], input=stdin, env=env, capture_output=True,
                          text=True, timeout=timeout)


@contextlib.contextmanager
def mps_daemon(enabled=True, echo=print):
    """Run an MPS control daemon while the ``with`` block runs.

    Parameters
    ----------
    enabled : bool
        False: do nothing (the block runs without MPS).
    echo : callable
        Prints one line on start, on stop, or on why MPS is not used.

    Yields
    ------
    bool
        Whether MPS is on for processes started inside the block.
    """
    if not enabled:
        yield False
        return
    if shutil.which(CONTROL) is None:
        echo(f"MPS: {CONTROL} not found; packed runs take turns on the GPU")
        yield False
        return
    root = tempfile.mkdtemp(prefix="sweep-mps-")
    dirs = dict(zip(ENV_KEYS, (os.path.join(root, "pipe"), os.path.join(root, "log")),
                    strict=True))
    for d in dirs.values():
        os.makedirs(d)
    env = os.environ | dirs
    try:
        started = _control(["-d"], env)
    except (OSError, subprocess.SubprocessError) as err:
        started = subprocess.CompletedProcess([CONTROL], 1, "", str(err))
    if started.returncode != 0:
        why = (started.stderr or started.stdout).strip().splitlines()
        why = why[-1] if why else f"exit {started.returncode}"
        echo(f"MPS: the daemon did not start ({why}); packed runs take turns on the GPU")
        shutil.rmtree(root, ignore_errors=True)
        yield False
        return
    saved = {k: os.environ.get(k) for k in ENV_KEYS}
    os.environ.update(dirs)
    echo(f"MPS: daemon started (pipe {dirs['CUDA_MPS_PIPE_DIRECTORY']})")
    try:
        yield True
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        try:
            stopped = _control([], env, stdin="quit\n")
            ok = stopped.returncode == 0
        except (OSError, subprocess.SubprocessError):
            ok = False
        echo("MPS: daemon stopped" if ok else "MPS: the daemon did not answer 'quit'")
        shutil.rmtree(root, ignore_errors=True)
