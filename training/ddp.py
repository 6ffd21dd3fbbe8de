"""Data-parallel training of one run over several processes (torchrun, DistributedDataParallel).

    torchrun --nproc_per_node 4 -m training train --model=85m --tokens=...
    training train --nproc 4 --model=85m --tokens=...       # the same; starts torchrun itself

Every process builds the same model from the same seed and draws the same window offsets, so all
hold the same global batches; rank r of K trains on sequences ``[r b/K, (r + 1) b/K)`` of each
global batch of b sequences, and DDP averages the gradients. The global batch, the tokens D, the
data order and the LR schedule are those of the single-process run; only the order in which the
gradient is summed differs. Evaluation splits the validation batches over the ranks and sums the
losses with an all-reduce, so every rank gets the same validation loss.

One process per GPU (``cuda:LOCAL_RANK``) with NCCL, or processes on the CPU with gloo. NVLink
multicast (NVLS) stays off: ``NO_MULTICAST`` is set in the environment of every process unless the
caller set those variables. DDP runs take eager steps: the whole-step CUDA graph is only captured
in single-process runs.

Fake-quantization is the same computation under DDP only where a scale does not span the batch:
the weights (``w``, ``w_bwd``) always, the activations and output gradients of the forward and
input-gradient GEMMs (``x``, ``dy``, reduced over features) with channel or block scales, and the
weight-gradient operands (``x_bwd``, ``dy2``, reduced over tokens) with blocks that divide the
tokens of one rank. ``check_split`` refuses the rest (tensor-wise scales of a batch operand,
channel-wise scales of ``x_bwd``/``dy2``, stochastic rounding of a batch operand): split over
ranks they would give a different run under the same run id.
"""

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

import torch
import torch.distributed as tdist

from training.config import is_quantized, parse_granularity, parse_operands

# NVLink SHARP / multicast off for NCCL, symmetric memory and NVSHMEM
NO_MULTICAST = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                "NVSHMEM_DISABLE_NVLS": "1"}
ROW_OPERANDS = ("x", "dy")  # batch operands whose scales run along features (one token's row)
TOKEN_OPERANDS = ("x_bwd", "dy2")  # batch operands whose scales run along tokens


@dataclass(frozen=True)
class Dist:
    """Where this process sits in a data-parallel run; the default is a single process."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def main(self):
        """Whether this process writes the record and prints (rank 0)."""
        return self.rank == 0


def from_env(environ=None):
    """Return the ``Dist`` that torchrun describes in ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``.

    Without ``WORLD_SIZE`` (a plain process) it is ``Dist()``.
    """
    env = os.environ if environ is None else environ
    world = int(env.get("WORLD_SIZE", "1"))
    if world < 1:
        raise ValueError(f"WORLD_SIZE: must be >= 1, got {world}")
    rank = int(env.get("RANK", "0"))
    return Dist(rank, world, int(env.get("LOCAL_RANK", str(rank))))


def check_nproc(nproc, dist):
    """Raise ValueError if a run asking for ``nproc`` processes runs in ``dist``'s world.

    ``nproc`` 0 takes whatever torchrun started; with a single process ``nproc`` > 1 must be
    launched first (``launch``, or ``training train`` which does it).
    """
    if nproc > 1 and dist.world_size == 1:
        raise ValueError(f"nproc: {nproc} processes are started by `training train` or "
                         f"torchrun; this is a single process")
    if nproc and dist.world_size > 1 and nproc != dist.world_size:
        raise ValueError(f"nproc: {nproc} does not match the {dist.world_size} processes of "
                         f"this torchrun")


def no_multicast_env(environ):
    """Return ``environ`` with ``NO_MULTICAST`` added where the variables are not set."""
    return {**NO_MULTICAST, **environ}


def setup(device):
    """Join the process group of a torchrun job; return ``(dist, device, owned)``.

    Parameters
    ----------
    device : str
        The resolved device of the run: ``"cpu"`` (gloo) or ``"cuda"`` (NCCL on
        ``cuda:LOCAL_RANK``).

    Returns
    -------
    dist : Dist
    device : str
        ``device`` for a single process; ``"cuda:LOCAL_RANK"`` or ``"cpu"`` under DDP.
    owned : bool
        Whether the process group was created here (``teardown`` then destroys it).
    """
    dist = from_env()
    if dist.world_size == 1:
        return dist, device, False
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device: a data-parallel run takes 'cpu' or 'cuda' (one GPU per "
                         f"process, cuda:LOCAL_RANK), got '{device}'")
    for key, value in NO_MULTICAST.items():
        os.environ.setdefault(key, value)
    on_cuda = device == "cuda"
    if on_cuda:
        if dist.local_rank >= torch.cuda.device_count():
            raise ValueError(f"device: process {dist.local_rank} needs cuda:{dist.local_rank}, "
                             f"but {torch.cuda.device_count()} GPUs are visible")
        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(device)
    owned = not tdist.is_initialized()
    if owned:
        kw = {"device_id": torch.device(device)} if on_cuda else {}
        tdist.init_process_group("nccl" if on_cuda else "gloo", **kw)
    if tdist.get_world_size() != dist.world_size or tdist.get_rank() != dist.rank:
        raise ValueError(f"WORLD_SIZE/RANK ({dist.world_size}/{dist.rank}) disagree with the "
                         f"process group ({tdist.get_world_size()}/{tdist.get_rank()})")
    return dist, device, owned


def teardown(owned):
    """Destroy the process group if ``setup`` created it."""
    if owned and tdist.is_initialized():
        tdist.destroy_process_group()


def split_problems(cfg, world_size):
    """Return why ``cfg`` (resolved) would not compute the single-process run on ``world_size``.

    Returns
    -------
    list of str
        One line per problem; empty when the run can be split.
    """
    if world_size == 1:
        return []
    out = []
    if cfg.batch_size % world_size:
        out.append(f"batch_size: {cfg.batch_size} sequences do not split over {world_size} "
                   f"processes")
        return out
    if not is_quantized(cfg):
        return out
    ops = parse_operands(cfg.operands)
    block = parse_granularity(cfg.granularity)
    local = cfg.batch_size // world_size * cfg.seq_len
    batch_ops = [op for op in ops if op in ROW_OPERANDS + TOKEN_OPERANDS]
    if batch_ops and cfg.rounding == "stochastic":
        out.append(f"rounding: stochastic rounding of {'+'.join(batch_ops)} draws its bits by "
                   f"position in the batch, which differs once the batch is split")
    if batch_ops and block == "tensor":
        out.append(f"granularity: tensor-wise scales of {'+'.join(batch_ops)} span the whole "
                   f"batch; split over processes each would scale its own part")
    token_ops = [op for op in ops if op in TOKEN_OPERANDS]
    if token_ops and block == "channel":
        out.append(f"granularity: channel-wise scales of {'+'.join(token_ops)} run over the "
                   f"batch's tokens; split over processes each would scale its own part")
    if token_ops and isinstance(block, int) and local % block:
        out.append(f"granularity: block size {block} does not divide the {local} tokens of one "
                   f"process (the weight-gradient GEMM of {'+'.join(token_ops)} reduces over "
                   f"them)")
    return out


def check_split(cfg, world_size):
    """Raise ValueError (first problem of ``split_problems``) if ``cfg`` cannot be split."""
    problems = split_problems(cfg, world_size)
    if problems:
        raise ValueError(problems[0] + f" (run it on one process, or choose a config whose "
                         f"scales stay inside one process's {cfg.batch_size // world_size or 1}"
                         f" sequences)")


def local_rows(batch_size, dist):
    """Return the slice of a global batch's sequences that ``dist``'s rank trains on."""
    assert batch_size % dist.world_size == 0, "check_split first"
    n = batch_size // dist.world_size
    return slice(dist.rank * n, (dist.rank + 1) * n)


def all_mean(t, dist):
    """Return the mean of ``t`` over the ranks (a new tensor; ``t`` itself for one process)."""
    if dist.world_size == 1:
        return t
    t = t.clone()
    tdist.all_reduce(t)
    return t / dist.world_size


def all_sum(t, dist):
    """Sum ``t`` over the ranks in place and return it."""
    if dist.world_size > 1:
        tdist.all_reduce(t)
    return t


def free_port():
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_command(nproc, args, port=None, module="training"):
    """Return the command that runs ``python -m <module> <args>`` in ``nproc`` processes.

    One node, rendezvous on 127.0.0.1 at ``port`` (default: a free port).
    """
    if nproc < 1:
        raise ValueError(f"nproc: must be >= 1, got {nproc}")
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes=1",
            f"--nproc_per_node={nproc}", "--master_addr=127.0.0.1",
            f"--master_port={port or free_port()}", "-m", module, *args]


def launch(nproc, args, env=None):
    """Run ``training <args>`` under torchrun in ``nproc`` processes; return its exit status.

    The processes get ``NO_MULTICAST`` where the environment does not set those variables, and
    ``OMP_NUM_THREADS`` = cores / nproc when it is not set.
    """
    env = no_multicast_env(dict(os.environ if env is None else env))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return subprocess.run(torchrun_command(nproc, list(args)), env=env).returncode
