"""The training run config: one flat dataclass, overrides from a JSON file or ``--key=value``.

An override must keep the type of the default (an int is accepted for a float field), and an
unknown key is an error. ``resolve`` fills the size-dependent defaults (``lr``, ``batch_size``
left at 0) and the device, so that the resolved config saved with a run says exactly what ran.
"""

import dataclasses
import json
import math
import re
from dataclasses import dataclass

# GEMM operands (forward Y = X W^T: x, w; input gradient dX = dY W: dy, w_bwd; weight gradient
# dW = dY^T X: dy2, x_bwd) and the granularity words, as the run-table schema names them.
from bayesfp.dims import GRANULARITY_WORDS, OPERANDS

BASELINE = "bf16"  # no operand quantized; bf16 autocast on GPU, fp32 on CPU
_FORMAT_RE = re.compile(r"^e(\d+)m(\d+)$")


@dataclass
class TrainConfig:
    # model and data
    model: str = "850k"  # a key of training.model.SIZES
    data: str = "training/data/sample"  # token shards directory (TokenShards)
    seq_len: int = 256
    batch_size: int = 0  # sequences per step; 0: the size's default
    tokens: int = 16_000_000  # D, training tokens (rounded down to whole steps)
    train_pool: int = 0  # windows start in the first train_pool tokens of the train split; 0: all
    # optimiser: AdamW, cosine LR from lr to min_lr_frac * lr after a linear warm-up
    lr: float = 0.0  # peak learning rate; 0: the size's default
    min_lr_frac: float = 0.1
    warmup_frac: float = 0.05  # fraction of the steps
    weight_decay: float = 0.1  # on the linear weights only, not on norms or the embedding
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0  # sets the init and the order of the training windows
    # precision of the transformer linears
    format: str = BASELINE  # "bf16" or "eXmY", e.g. "e4m3"
    granularity: str = "channel"  # "tensor", "channel" or a block size such as "128"
    operands: str = "w+w_bwd+x_bwd"  # "+"-joined subset of OPERANDS, "all" or "none"
    convention: str = "finite"
    rounding: str = "nearest_even"
    quant_head: bool = False
    backend: str = "auto"  # QuantLinear backend
    # evaluation
    eval_tokens: int = 262_144  # fixed validation windows at the start of the val split
    eval_points: int = 4  # validation losses in the curve, the last at the end of training
    ptq_formats: str = "e4m3,e3m2,e2m1"  # comma-separated; "" for none
    ptq_granularity: str = "channel"
    # divergence: non-finite loss, or a window's mean train loss above the first step's + margin
    check_every: int = 50  # steps between host reads of the loss
    diverge_margin: float = 1.0  # nats/token
    # system and output
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    cuda_graph: bool = True  # capture the whole training step in a CUDA graph (GPU only)
    nproc: int = 0  # processes (one GPU each) training the run data-parallel (training.ddp)
    out: str = ""  # record JSON path; "" writes none
    group: str = ""  # free label copied into the record


# Fields that do not change what a run computes: left out of the run id.
NOT_IN_ID = ("data", "device", "cuda_graph", "out", "backend", "group", "nproc")
# Fields that enter the run id only when they differ from their default, so that the ids of runs
# made before the field existed stay the same.
IN_ID_IF_SET = ("train_pool",)


def _coerce(key, value, default):
    """Return ``value`` as the type of ``default``; ValueError naming ``key`` if it cannot be."""
    kind = type(default)
    if isinstance(value, str) and kind is not str:
        text = value.strip()
        if kind is bool:
            words = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
            if text.lower() not in words:
                raise ValueError(f"{key}: expected a bool (true/false), got '{value}'")
            return words[text.lower()]
        try:
            return kind(text)
        except ValueError:
            raise ValueError(f"{key}: expected {kind.__name__}, got '{value}'") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise ValueError(f"{key}: expected {kind.__name__}, got {type(value).__name__} "
                         f"{value!r}")
    return value


def apply_overrides(cfg, overrides):
    """Return a copy of ``cfg`` with ``overrides`` applied.

    Parameters
    ----------
    cfg : TrainConfig
    overrides : dict of str to object
        Values of the default's type, or strings to parse as that type.

    Returns
    -------
    TrainConfig

    Raises
    ------
    ValueError
        On an unknown key or a value of the wrong type; the message names the key.
    """
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in overrides.items():
        if key not in fields:
            raise ValueError(f"{key}: unknown config key")
        changes[key] = _coerce(key, value, getattr(cfg, key))
    return dataclasses.replace(cfg, **changes)


def parse_flags(args):
    """Parse ``--key=value`` (or ``--key value``) arguments into a dict of strings.

    Parameters
    ----------
    args : list of str

    Returns
    -------
    dict of str to str

    Raises
    ------
    ValueError
        On an argument that is not a flag or a flag without a value.
    """
    out, i = {}, 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--") or len(arg) < 3:
            raise ValueError(f"{arg}: expected --key=value")
        key, eq, value = arg[2:].partition("=")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ValueError(f"{key}: flag without a value")
            value, i = args[i + 1], i + 1
        out[key.replace("-", "_")] = value
        i += 1
    return out


def load_config(path=None, flags=()):
    """Return the default config updated by a JSON file, then by ``--key=value`` flags.

    Parameters
    ----------
    path : str, optional
        A JSON object of config keys.
    flags : list of str
        ``--key=value`` arguments; they win over the file.

    Returns
    -------
    TrainConfig
        Validated (see ``validate``), not yet resolved.
    """
    cfg = TrainConfig()
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ValueError(f"config: file not found: {path}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"config: {path} is not valid JSON ({exc.msg})") from None
        if not isinstance(data, dict):
            raise ValueError(f"config: {path} must hold a JSON object")
        cfg = apply_overrides(cfg, data)
    cfg = apply_overrides(cfg, parse_flags(list(flags)))
    validate(cfg)
    return cfg


def parse_operands(text):
    """Return the operand names of ``text`` (``"w+x_bwd"``, ``"all"``, ``"none"``), in order.

    Raises
    ------
    ValueError
        On an unknown name.
    """
    word = text.strip().lower()
    if word == "all":
        return OPERANDS
    if word in ("none", ""):
        return ()
    names = [p.strip() for p in word.split("+")]
    bad = [n for n in names if n not in OPERANDS]
    if bad:
        raise ValueError(f"operands: unknown operand '{bad[0]}' (use '+'-joined names from "
                         f"{', '.join(OPERANDS)}, 'all' or 'none')")
    return tuple(op for op in OPERANDS if op in names)


def parse_em(fmt, key="format"):
    """Return (E, M) of a format name ``"eXmY"``; ``"bf16"`` gives (8, 7)."""
    if fmt == BASELINE:
        return 8, 7
    m = _FORMAT_RE.match(fmt.strip().lower())
    if not m:
        raise ValueError(f"{key}: unknown format '{fmt}' (use bf16 or eXmY such as e4m3)")
    e, mb = int(m.group(1)), int(m.group(2))
    if not (1 <= e <= 8 and 0 <= mb <= 22):
        raise ValueError(f"{key}: format '{fmt}' out of range (1 <= E <= 8, 0 <= M <= 22)")
    return e, mb


def parse_granularity(text, key="granularity"):
    """Return ``"tensor"``, ``"channel"`` or a positive int block size."""
    word = text.strip().lower()
    if word in GRANULARITY_WORDS:
        return word
    if word.isdigit() and int(word) > 0:
        return int(word)
    raise ValueError(f"{key}: expected tensor, channel or a positive block size, got '{text}'")


def ptq_format_list(cfg):
    """Return the PTQ format names of ``cfg`` as a list."""
    names = [f.strip().lower() for f in cfg.ptq_formats.split(",") if f.strip()]
    for name in names:
        parse_em(name, "ptq_formats")
    return names


def is_quantized(cfg):
    """Whether any operand of the transformer linears is fake-quantized."""
    return cfg.format != BASELINE and len(parse_operands(cfg.operands)) > 0


def validate(cfg):
    """Raise ValueError, naming the key, if a value of ``cfg`` is out of range."""
    from training.model import SIZES

    if cfg.model not in SIZES:
        raise ValueError(f"model: unknown size '{cfg.model}' (known: {', '.join(SIZES)})")
    for key in ("seq_len", "tokens", "eval_tokens", "check_every", "eval_points"):
        if getattr(cfg, key) <= 0:
            raise ValueError(f"{key}: must be > 0, got {getattr(cfg, key)}")
    for key in ("batch_size", "lr", "weight_decay", "grad_clip", "diverge_margin", "nproc",
                "train_pool"):
        if getattr(cfg, key) < 0:
            raise ValueError(f"{key}: must be >= 0, got {getattr(cfg, key)}")
    for key in ("min_lr_frac", "warmup_frac", "beta1", "beta2"):
        if not 0 <= getattr(cfg, key) <= 1:
            raise ValueError(f"{key}: must be in [0, 1], got {getattr(cfg, key)}")
    parse_em(cfg.format)
    parse_granularity(cfg.granularity)
    parse_granularity(cfg.ptq_granularity, "ptq_granularity")
    parse_operands(cfg.operands)
    ptq_format_list(cfg)
    if 0 < cfg.train_pool < cfg.seq_len + 2:
        raise ValueError(f"train_pool: must be 0 or at least seq_len + 2 = {cfg.seq_len + 2} "
                         f"tokens, got {cfg.train_pool}")
    if cfg.device != "auto" and not re.match(r"^(cpu|cuda(:\d+)?)$", cfg.device):
        raise ValueError(f"device: expected auto, cpu, cuda or cuda:K, got '{cfg.device}'")


def resolve(cfg, cuda_available):
    """Return ``cfg`` with the size defaults and the device filled in.

    Parameters
    ----------
    cfg : TrainConfig
    cuda_available : bool
        Whether ``device="auto"`` means CUDA.

    Returns
    -------
    TrainConfig
    """
    from training.model import SIZES

    validate(cfg)
    size = SIZES[cfg.model]
    cfg = dataclasses.replace(
        cfg,
        batch_size=cfg.batch_size or size.batch_size,
        lr=cfg.lr or size.lr,
        device=("cuda" if cuda_available else "cpu") if cfg.device == "auto" else cfg.device,
        format=cfg.format.strip().lower(),
        operands="+".join(parse_operands(cfg.operands)) or "none",
    )
    unit = math.gcd(size.n_embd, size.n_hidden)
    tokens = cfg.batch_size * cfg.seq_len
    for key, used in (("granularity", is_quantized(cfg)), ("ptq_granularity", True)):
        block = parse_granularity(getattr(cfg, key), key)
        if not used or not isinstance(block, int):
            continue
        if unit % block:
            raise ValueError(f"{key}: block size {block} does not divide the widths of size "
                             f"'{cfg.model}' (n_embd {size.n_embd}, n_hidden {size.n_hidden}); "
                             f"use a divisor of {unit}")
        if key == "granularity" and tokens % block:
            raise ValueError(f"{key}: block size {block} does not divide the {tokens} tokens of "
                             f"a batch (the weight-gradient GEMM reduces over them)")
    return cfg
