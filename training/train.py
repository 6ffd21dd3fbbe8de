"""The trainer: one run from a resolved ``TrainConfig`` to a run record.

AdamW (beta1 0.9, beta2 0.95) with weight decay 0.1 on the linear weights only, gradient clipping
at 1.0 and a cosine learning rate: linear warm-up over ``warmup_frac`` of the steps to ``lr``,
then cosine down to ``min_lr_frac * lr``. bf16 autocast on GPU, fp32 on CPU.

Data order: the training windows (``seq_len + 1`` tokens starting at uniform random offsets of the
train split, or of its first ``train_pool`` tokens when that is set) are drawn up front from
``numpy.random.default_rng(seed)``, so the order depends on the seed alone, the same on CPU and
GPU. The train split, the window offsets (steps, batch) and the LR schedule (steps,) live on the
device, and the step reads its row through a step counter held in a device tensor. So the whole
step (gather the batch, forward, backward, clip, set the LR, AdamW, log the loss, advance the
counter) runs without the host and is captured in one CUDA graph on GPU; the host only replays it
and reads the loss log every ``check_every`` steps.

Validation: fixed consecutive windows at the start of the val split (``eval_tokens`` tokens),
loss summed in fp32 over every predicted token: nats/token.

Data parallel (``training.ddp``): under torchrun each of K processes trains on its slice of every
global batch and DDP averages the gradients; the train losses and validation sums are all-reduced,
so every rank takes the same decisions, and rank 0 writes the record (``world_size`` K). DDP steps
run eagerly (no CUDA graph).

Divergence: a non-finite train loss, or a check window (after warm-up) whose mean train loss is
above the first step's loss + ``diverge_margin``, ends the run with status ``diverged`` and the
step; the record is still written.
"""

import contextlib
import dataclasses
import inspect
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from training import ddp
from training.config import is_quantized, parse_granularity, ptq_format_list, resolve
from training.model import GPT, gpt_config, params_and_flops, size_fields
from training.record import canonical_json, environment, precision_fields, run_id, write_record

N_WARMUP_CAPTURE = 3  # eager steps on a side stream before the CUDA graph capture
N_CURVE = 16  # points of the train-loss curve in a record


def open_tokens(path):
    """Open token shards at ``path``: an object with train, val, vocab_size and corpus_hash.

    A relative path that does not exist from the working directory is also looked up from the
    source tree's root, so the default ``training/data/sample`` works from anywhere.
    """
    from pathlib import Path

    p = Path(path)
    if not p.exists() and not p.is_absolute():
        p = Path(__file__).resolve().parents[1] / p
    if not p.exists():
        raise ValueError(f"data: no token shards at '{path}'")
    from training.corpus.shards import TokenShards

    return TokenShards.open(p)


def synthetic_tokens(vocab_size=256, n_train=200_000, n_val=20_000, seed=0):
    """Return learnable synthetic token data, for tests and benchmarks.

    Each token is ``(3 * previous + r) mod vocab_size`` with ``r`` uniform in {0, 1, 2, 3}, so the
    best possible loss is ln 4 = 1.386 nats/token. Same attributes as token shards.

    Returns
    -------
    types.SimpleNamespace
        ``train`` (n_train,) and ``val`` (n_val,) uint16 arrays, ``vocab_size`` and
        ``corpus_hash`` (``"synthetic-v<vocab>-s<seed>"``).
    """
    from types import SimpleNamespace

    assert 4 <= vocab_size <= 65536, "tokens are stored as uint16"
    r = np.random.default_rng(seed).integers(0, 4, size=n_train + n_val)
    x = np.empty(n_train + n_val, dtype=np.int64)
    prev = 0
    for i, ri in enumerate(r.tolist()):
        prev = (3 * prev + ri) % vocab_size
        x[i] = prev
    x = x.astype(np.uint16)
    return SimpleNamespace(train=x[:n_train], val=x[n_train:], vocab_size=vocab_size,
                           corpus_hash=f"synthetic-v{vocab_size}-s{seed}")


def make_qconfig(cfg):
    """Return the ``LinearQuantConfig`` of a resolved config, or None for a baseline run."""
    if not is_quantized(cfg):
        return None
    from training.quant.config import LinearQuantConfig
    from training.quant.spec import FPFormat, parse_format

    base = parse_format(cfg.format)
    fmt = FPFormat(base.ebits, base.mbits, convention=cfg.convention, rounding=cfg.rounding)
    return LinearQuantConfig.from_spec(fmt, parse_granularity(cfg.granularity), cfg.operands)


def lr_schedule(cfg, steps):
    """Return the learning rate of each step, (steps,) float64.

    Linear warm-up from ``lr / n_warmup`` to ``lr`` over ``n_warmup = round(warmup_frac * steps)``
    steps, then cosine from ``lr`` to ``min_lr_frac * lr`` at the last step.
    """
    n_warm = int(round(cfg.warmup_frac * steps))
    s = np.arange(steps, dtype=np.float64)
    floor = cfg.min_lr_frac * cfg.lr
    frac = (s - n_warm) / max(steps - 1 - n_warm, 1)
    lr = floor + 0.5 * (cfg.lr - floor) * (1 + np.cos(math.pi * np.clip(frac, 0.0, 1.0)))
    if n_warm:
        lr[:n_warm] = cfg.lr * (s[:n_warm] + 1) / n_warm
    return lr


def window_starts(n_tokens, seq_len, steps, batch_size, seed):
    """Return the start of each training window, (steps, batch_size) int64, from ``seed``."""
    if n_tokens < seq_len + 2:
        raise ValueError(f"data: train split has {n_tokens} tokens, fewer than seq_len + 2")
    rng = np.random.default_rng(seed)
    return rng.integers(0, n_tokens - seq_len, size=(steps, batch_size), dtype=np.int64)


def val_windows(val, seq_len, eval_tokens):
    """Return the fixed validation windows, (n, seq_len + 1) int64, consecutive from the start."""
    n = min(eval_tokens // seq_len, (len(val) - 1) // seq_len)
    if n < 1:
        raise ValueError(f"data: validation split has {len(val)} tokens, fewer than seq_len + 1")
    idx = np.arange(n)[:, None] * seq_len + np.arange(seq_len + 1)[None, :]
    return np.asarray(val[: n * seq_len + 1], dtype=np.int64)[idx]


class Trainer:
    """Model, optimizer, device-resident data and the training step of one run.

    Parameters
    ----------
    cfg : TrainConfig
        Resolved (``training.config.resolve``).
    data : object
        With ``train`` and ``val`` (1-D integer token arrays), ``vocab_size`` and ``corpus_hash``.
    dist : training.ddp.Dist, optional
        This process's place in a data-parallel run (process group joined, ``cfg.device`` this
        rank's device); default: a single process.
    """

    def __init__(self, cfg, data, dist=None):
        self.cfg = cfg
        self.dist = dist or ddp.Dist()
        ddp.check_split(cfg, self.dist.world_size)
        self.device = torch.device(cfg.device)
        self.tokens_per_step = cfg.batch_size * cfg.seq_len
        self.steps = cfg.tokens // self.tokens_per_step
        if self.steps < 1:
            raise ValueError(f"tokens: {cfg.tokens} is less than one step of "
                             f"{self.tokens_per_step} tokens")
        if self.device.type == "cuda":
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
            torch.cuda.set_device(self.device)  # graphs capture on the current device
        torch.manual_seed(cfg.seed)
        self.gpt_config = gpt_config(cfg.model, int(data.vocab_size), cfg.seq_len, cfg.quant_head)
        block = parse_granularity(cfg.granularity)
        if cfg.quant_head and is_quantized(cfg) and isinstance(block, int):
            if data.vocab_size % block:
                raise ValueError(f"granularity: block size {block} does not divide the "
                                 f"vocabulary ({data.vocab_size}) of the quantized LM head")
        # built on CPU, so the initial weights are the same on every device
        model = GPT(self.gpt_config, make_qconfig(cfg), cfg.backend, seed=cfg.seed)
        self.model = model.to(self.device)
        self.net = self.model  # what the step calls: the model, or its DDP wrapper
        if self.dist.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel

            # buffers (rotary tables, stochastic-rounding counters) evolve alike on every rank:
            # no broadcast before each forward (the keyword was renamed in torch 2.13)
            no_sync = ("forward_sync_buffers" if "forward_sync_buffers" in
                       inspect.signature(DistributedDataParallel).parameters
                       else "broadcast_buffers")
            self.net = DistributedDataParallel(
                self.model, device_ids=[self.device] if self.device.type == "cuda" else None,
                **{no_sync: False})
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        on_cuda = self.device.type == "cuda"

        # the run's data and schedule, all on the device
        train = np.asarray(data.train)
        if cfg.train_pool:
            if cfg.train_pool > len(train):
                raise ValueError(f"train_pool: {cfg.train_pool} tokens, more than the "
                                 f"{len(train)} of the train split")
            train = train[:cfg.train_pool]  # the unique tokens this run may see
        self.n_train = len(train)
        self.train_tokens = torch.from_numpy(train.astype(np.int32)).to(self.device)
        starts = window_starts(len(train), cfg.seq_len, self.steps, cfg.batch_size, cfg.seed)
        starts = starts[:, ddp.local_rows(cfg.batch_size, self.dist)]  # this rank's sequences
        self.starts = torch.from_numpy(np.ascontiguousarray(starts)).to(self.device)  # (steps, b)
        self.offsets = torch.arange(cfg.seq_len + 1, device=self.device)  # (t+1,)
        self.lr_sched = torch.from_numpy(lr_schedule(cfg, self.steps)).float().to(self.device)
        self.lr_t = self.lr_sched[0].clone()  # 0-d, the optimizer's LR
        self.step_t = torch.zeros(1, dtype=torch.long, device=self.device)
        self.loss_log = torch.full((self.steps,), math.nan, device=self.device)
        self.val = torch.from_numpy(val_windows(data.val, cfg.seq_len, cfg.eval_tokens)).to(
            self.device)  # (n_val, t+1)

        # AdamW: decay on the linear weights, not on norms or the (tied) embedding
        emb = self.model.wte.weight
        decay = [p for p in self.params if p.dim() >= 2 and p is not emb]
        no_decay = [p for p in self.params if p.dim() < 2 or p is emb]
        groups = [{"params": decay, "weight_decay": cfg.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        # a tensor LR is set inside the step; capturable AdamW on GPU, single-tensor on CPU
        self.opt = torch.optim.AdamW(groups, lr=self.lr_t, betas=(cfg.beta1, cfg.beta2),
                                     capturable=on_cuda, foreach=on_cuda)
        self.graph = None

    def autocast(self):
        """bf16 autocast on CUDA (no weight cache: it must not outlive a graph replay)."""
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16, cache_enabled=False)
        return contextlib.nullcontext()

    def _step(self):
        """One training step, driven by ``step_t``; no host sync."""
        i = self.step_t
        start = self.starts.index_select(0, i).view(-1)  # (b,)
        win = self.train_tokens[start[:, None] + self.offsets].long()  # (b, t+1)
        x, y = win[:, :-1], win[:, 1:]
        self.lr_t.copy_(self.lr_sched.index_select(0, i).view(()))
        self.opt.zero_grad(set_to_none=True)
        with self.autocast():
            _, loss = self.net(x, y)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        self.loss_log.index_copy_(0, i, loss.detach().float().view(1))
        self.step_t.add_(1)

    def capture(self):
        """Capture ``_step`` in a CUDA graph, then undo the warm-up steps it needed."""
        assert self.device.type == "cuda", "CUDA graphs need a CUDA device"
        assert self.dist.world_size == 1, "DDP steps are not captured"
        assert self.steps > N_WARMUP_CAPTURE, "too few steps to warm up a CUDA graph"
        saved = [p.detach().clone() for p in self.params]
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(N_WARMUP_CAPTURE):
                self._step()
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._step()
        with torch.no_grad():
            for p, p0 in zip(self.params, saved):
                p.copy_(p0)
            for state in self.opt.state.values():
                for v in state.values():
                    v.zero_()  # step, exp_avg, exp_avg_sq
            self.step_t.zero_()
            self.loss_log.fill_(math.nan)
            for m in self.model.modules():  # QuantLinear's stochastic-rounding [seed, step]
                if isinstance(getattr(m, "rng_state", None), torch.Tensor):
                    m.rng_state[1:].zero_()
        self.graph = graph

    def run(self, n):
        """Run ``n`` training steps (graph replays when captured)."""
        for _ in range(n):
            if self.graph is not None:
                self.graph.replay()
            else:
                self._step()

    def losses(self, start, stop):
        """Return the train losses of steps ``start:stop`` (mean over the ranks), numpy."""
        return ddp.all_mean(self.loss_log[start:stop], self.dist).cpu().numpy()

    @torch.no_grad()
    def evaluate(self):
        """Return the validation loss on the fixed windows, nats/token (float).

        The windows go in batches of ``batch_size``; under DDP rank r takes every K-th batch from
        the r-th, and the sums are all-reduced.
        """
        was_training = self.model.training
        self.model.eval()
        total = torch.zeros((), dtype=torch.float64, device=self.device)
        bs, k0, k_step = self.cfg.batch_size, self.dist.rank, self.dist.world_size
        for k in range(k0 * bs, len(self.val), k_step * bs):
            win = self.val[k:k + self.cfg.batch_size]  # (b, t+1)
            with self.autocast():
                logits, _ = self.model(win[:, :-1])
            total += F.cross_entropy(logits.float().flatten(0, 1), win[:, 1:].reshape(-1),
                                     reduction="sum").double()
        self.model.train(was_training)
        total = ddp.all_sum(total, self.dist)
        return float(total / (self.val.shape[0] * self.cfg.seq_len))


def _check_points(steps, cfg):
    """Steps after which the host reads the loss log, and the steps with a validation loss."""
    evals = {int(round(steps * (k + 1) / cfg.eval_points)) for k in range(cfg.eval_points)}
    evals = {s for s in evals if s >= 1}
    points = set(range(cfg.check_every, steps, cfg.check_every)) | evals | {steps}
    return sorted(points), evals


def _train_curve(log, tokens_per_step):
    """Mean train loss over up to N_CURVE equal segments: [[step, tokens, loss], ...]."""
    n = len(log)
    edges = np.unique(np.linspace(0, n, min(N_CURVE, n) + 1).round().astype(int))
    return [[int(b), int(b) * tokens_per_step, float(np.mean(log[a:b]))]
            for a, b in zip(edges[:-1], edges[1:])]


def check_divergence(chunk, start, first_loss, n_warmup, margin):
    """Decide whether a window of train losses shows divergence.

    Parameters
    ----------
    chunk : numpy.ndarray
        Train losses (nats/token) of steps ``start, start + 1, ...``.
    start : int
        Step of ``chunk[0]``.
    first_loss : float
        Train loss of step 0.
    n_warmup : int
        Warm-up steps: windows that begin inside the warm-up are only checked for non-finite
        losses.
    margin : float
        Nats/token above ``first_loss`` that the window's mean loss may not exceed.

    Returns
    -------
    step : int or None
        The first non-finite step, or the window's last step when its mean is too high; None when
        the window is fine.
    reason : str or None
    """
    bad = np.flatnonzero(~np.isfinite(chunk))
    if bad.size:
        step = start + int(bad[0])
        return step, f"non-finite train loss at step {step}"
    mean = float(chunk.mean())
    if start >= n_warmup and mean > first_loss + margin:
        stop = start + len(chunk) - 1
        return stop, (f"mean train loss {mean:.3f} at steps {start}-{stop} above the first "
                      f"step's {first_loss:.3f} + {margin}")
    return None, None


def _fit(tr, cfg, ptq_formats, progress):
    """Run the training loop of ``tr``; return what the record needs."""
    steps = tr.steps
    if (cfg.cuda_graph and tr.device.type == "cuda" and steps > N_WARMUP_CAPTURE
            and tr.dist.world_size == 1):
        tr.capture()
    points, evals = _check_points(steps, cfg)
    n_warm = int(round(cfg.warmup_frac * steps))
    status, reason, diverged_step = "ok", None, None
    val_curve, first_loss, train_s, done = [], None, 0.0, 0
    bar = tqdm(total=steps, unit="step", disable=not (progress and tr.dist.main),
               dynamic_ncols=True, leave=False)
    for stop in points:
        t0 = time.perf_counter()
        tr.run(stop - done)
        chunk = tr.losses(done, stop)  # the only host sync of the chunk
        train_s += time.perf_counter() - t0
        bar.update(stop - done)
        if first_loss is None:
            first_loss = float(chunk[0])
        diverged_step, reason = check_divergence(chunk, done, first_loss, n_warm,
                                                 cfg.diverge_margin)
        if diverged_step is not None:
            status = "diverged"
        done = stop
        bar.set_postfix(loss=f"{chunk.mean():.3f}")
        if status != "ok":
            break
        if stop in evals:
            val_curve.append([stop, stop * tr.tokens_per_step, tr.evaluate()])
    bar.close()

    ptq = {}
    if status == "ok":
        loss = val_curve[-1][2]
        if ptq_formats:
            from training.ptq import ptq_losses

            ptq = ptq_losses(tr.model, tr.evaluate, ptq_formats, cfg.ptq_granularity)
    else:
        loss = tr.evaluate()
        val_curve.append([done, done * tr.tokens_per_step, loss])
    log = tr.losses(0, done)
    return {
        "status": status, "reason": reason, "diverged_step": diverged_step, "loss": loss,
        "ptq": ptq, "done": done, "train_s": train_s, "val_curve": val_curve,
        "train_curve": _train_curve(log, tr.tokens_per_step) if done else [],
        "cuda_graph": tr.graph is not None, "eval_tokens": int(tr.val.shape[0] * cfg.seq_len),
    }


def train(cfg, data=None, progress=True):
    """Train one run and return its record (written to ``cfg.out`` when set).

    A run that runs out of GPU memory gives a record with status ``failed`` instead of an
    exception, so a sweep goes on; other errors propagate. Under torchrun (``WORLD_SIZE`` > 1)
    the processes train the run together (``training.ddp``): every rank returns the record,
    rank 0 writes it, and an out-of-memory error propagates (a lone rank cannot go on).

    Parameters
    ----------
    cfg : TrainConfig
        Resolved here (size defaults, device). ``out`` may contain ``{run_id}``.
    data : object, optional
        Token data with ``train``, ``val``, ``vocab_size`` and ``corpus_hash``; default: the
        shards at ``cfg.data``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The run record (see ``training.record``).
    """
    t_start = time.perf_counter()
    cfg = resolve(cfg, torch.cuda.is_available())
    if cfg.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device: '{cfg.device}' requested but CUDA is not available")
    ddp.check_nproc(cfg.nproc, ddp.from_env())
    dist, device, owned = ddp.setup(cfg.device)
    if dist.world_size > 1:
        cfg = dataclasses.replace(cfg, nproc=dist.world_size)  # recorded as it ran
    try:
        return _train(cfg, data, progress, dist, device, t_start)
    finally:
        ddp.teardown(owned)


def _train(cfg, data, progress, dist, device, t_start):
    """``train`` after the process group is joined; ``device`` is this rank's device."""
    if data is None:
        data = open_tokens(cfg.data)
    ptq_formats = ptq_format_list(cfg)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    steps = cfg.tokens // tokens_per_step
    model_cfg = gpt_config(cfg.model, int(data.vocab_size), cfg.seq_len, cfg.quant_head)
    try:
        trainer = Trainer(dataclasses.replace(cfg, device=device), data, dist)
        result = _fit(trainer, cfg, ptq_formats, progress)
    except torch.cuda.OutOfMemoryError as exc:
        if dist.world_size > 1:
            raise
        result = {"status": "failed", "reason": "CUDA out of memory: " + str(exc).split("\n")[0],
                  "diverged_step": None, "loss": math.nan, "ptq": {}, "done": 0, "train_s": 0.0,
                  "val_curve": [], "train_curve": [], "cuda_graph": False, "eval_tokens": 0}
    if result["status"] == "failed":
        torch.cuda.empty_cache()
    n_params, flops = params_and_flops(model_cfg, steps * tokens_per_step)
    status, done = result["status"], result["done"]
    rid = run_id(cfg, data.corpus_hash)
    record = {
        "run_id": rid,
        "N": n_params,
        "D": steps * tokens_per_step,
        **precision_fields(cfg),
        "loss": result["loss"],
        "status": status,
        "seed": cfg.seed,
        "epochs": steps * tokens_per_step / (cfg.train_pool or len(data.train)),
        **({"train_pool": cfg.train_pool} if cfg.train_pool else {}),
        **size_fields(model_cfg, quantized=is_quantized(cfg)),
        **({"reason": result["reason"]} if status != "ok" else {}),
        **({"diverged_step": result["diverged_step"]} if status == "diverged" else {}),
        **{f"ptq_loss_{name}": value for name, value in result["ptq"].items()},
        "tokens_per_s": done * tokens_per_step / result["train_s"] if done else None,
        "wall_s": None,
        **environment(device),
        "world_size": dist.world_size,
        "corpus_hash": str(data.corpus_hash),
        "config": canonical_json(dataclasses.asdict(cfg)),
        **({"group": cfg.group} if cfg.group else {}),
        "C": flops,
        "steps": steps,
        "steps_done": done,
        "cuda_graph": result["cuda_graph"],
        "eval_tokens": result["eval_tokens"],
        "train_curve": result["train_curve"],
        "val_curve": result["val_curve"],
    }
    record["wall_s"] = time.perf_counter() - t_start
    if cfg.out and dist.main:
        write_record(cfg.out.replace("{run_id}", rid), record)
    return record
