"""A LLaMA-style decoder with fake-quantized linears, in one file.

References: nanoGPT (karpathy/nanoGPT, model.py) for the layout, and LLaMA (Touvron et al. 2023,
arXiv 2302.13971) for the block: pre-norm RMSNorm, rotary position embeddings (Su et al. 2021,
arXiv 2104.09864), a SwiGLU MLP (Shazeer 2020, arXiv 2002.05202) and no biases.

Every transformer linear (attention q, k, v, o and the MLP gate, up, down) is a ``QuantLinear``
when a quantization config is given, so the six GEMM operands (x, w, dy, w_bwd, dy2, x_bwd) can be
fake-quantized per run. Attention's dot products (``F.scaled_dot_product_attention``) stay in high
precision, and so does the LM head unless ``quant_head`` is set.

The token embedding and the LM head share one matrix (tied), as in nanoGPT: for models this small
an untied head would be most of the parameters. N counts every parameter except that matrix.
"""

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F


@dataclass
class GPTConfig:
    vocab_size: int = 8192
    block_size: int = 256  # longest sequence (tokens); sets the rotary table
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    n_hidden: int = 384  # SwiGLU width: 8/3 n_embd rounded up to a multiple of min(n_embd, 128)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5
    quant_head: bool = False  # also fake-quantize the LM head (not done in the reference runs)


@dataclass(frozen=True)
class Size:
    """One named model size with its default batch size (sequences) and peak learning rate."""

    n_layer: int
    n_head: int
    n_embd: int
    n_hidden: int
    batch_size: int
    lr: float


def _hidden(n_embd):
    """SwiGLU width: 8/3 n_embd as in LLaMA, rounded up to a multiple of min(n_embd, 128)."""
    unit = min(n_embd, 128)
    return unit * math.ceil(8 * n_embd / 3 / unit)


# The size family, named by their approximate N (non-embedding parameters). 100k..6.8m span 64x
# in N for CPU-to-single-GPU sweeps; 11m..85m are for longer and multi-GPU runs. Every width is a
# multiple of min(n_embd, 128), so any block size dividing that (up to 128 from 200k on; up to 64
# for 100k, 32 for test) tiles every GEMM operand. Head width 32 up to n_embd 128, 64 above.
# The learning rates and batch sizes (sequences of seq_len tokens) are defaults, not tuned: peak
# LR falls from 3e-3 to 6e-4 as the model grows, the batch grows from 32 to 128 sequences.
SIZES = {
    "test": Size(2, 2, 32, _hidden(32), 8, 3e-3),
    "100k": Size(2, 2, 64, _hidden(64), 32, 3e-3),
    "200k": Size(1, 4, 128, _hidden(128), 32, 3e-3),
    "430k": Size(2, 4, 128, _hidden(128), 32, 3e-3),
    "850k": Size(4, 4, 128, _hidden(128), 32, 2e-3),
    "1.7m": Size(2, 4, 256, _hidden(256), 64, 2e-3),
    "3.4m": Size(4, 4, 256, _hidden(256), 64, 1.5e-3),
    "6.8m": Size(8, 4, 256, _hidden(256), 64, 1.5e-3),
    # Same N as 3.4m in one wide layer: every GEMM width (512, 1536) is a multiple of 512, so
    # blocks of 512 tile it (no size above has a SwiGLU width divisible by 512).
    "3.4m-w512": Size(1, 8, 512, 1536, 64, 1.5e-3),
    "11m": Size(6, 6, 384, _hidden(384), 64, 1e-3),
    "26m": Size(8, 8, 512, _hidden(512), 128, 1e-3),
    "51m": Size(10, 10, 640, _hidden(640), 128, 8e-4),
    "85m": Size(12, 12, 768, _hidden(768), 128, 6e-4),
    # The one-shape family of the v2 run set (docs/dataset.md): 4 layers, heads of width 64,
    # widths 128..768 (every width and SwiGLU width a multiple of 128, so blocks up to 128 tile
    # every GEMM), one batch of 64 sequences (16384 tokens of 256) for all sizes, and a peak LR
    # from the rule of docs/dataset.md.
    **{name: Size(4, d // 64, d, _hidden(d), 64, lr) for name, d, lr in (
        ("f850k", 128, 0.0044),
        ("f3.4m", 256, 0.0022),
        ("f7.1m", 384, 0.0015),
        ("f13m", 512, 0.0011),
        ("f28m", 768, 0.00075),
    )},
}


def block_unit(config):
    """Return the largest block size that divides every GEMM reduction dim of the linears.

    Forward and input-gradient GEMMs reduce over n_embd or n_hidden; the weight gradient reduces
    over the batch's tokens, checked by the caller.
    """
    return math.gcd(config.n_embd, config.n_hidden)


def gpt_config(size, vocab_size, block_size, quant_head=False):
    """Return the ``GPTConfig`` of a named size.

    Parameters
    ----------
    size : str
        A key of ``SIZES``.
    vocab_size : int
        Tokens in the vocabulary.
    block_size : int
        Sequence length (tokens).
    quant_head : bool
        Whether the LM head is fake-quantized too.

    Returns
    -------
    GPTConfig
    """
    if size not in SIZES:
        raise ValueError(f"model: unknown size '{size}' (known: {', '.join(SIZES)})")
    s = SIZES[size]
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=s.n_layer,
                     n_head=s.n_head, n_embd=s.n_embd, n_hidden=s.n_hidden, quant_head=quant_head)


def params_and_flops(config, tokens):
    """Return N, the non-embedding parameters, and C, the training FLOPs of a run.

    .. math::

        N = L (4 d^2 + 3 d h + 2 d) + d, \\qquad C = 6 N D + 12 L d T D

    with L layers, width d, SwiGLU width h, sequence length T and D training tokens. 6ND counts
    the forward (2 FLOPs per multiply-add) and backward (twice the forward) matmuls of the
    non-embedding weights; 12 L d T D is the attention term of the PaLM appendix B (QK^T and AV,
    counted without the causal mask's saving). The LM head (6 d V D with vocabulary V) is left out,
    as the tied embedding matrix is left out of N.

    Parameters
    ----------
    config : GPTConfig
    tokens : int or float
        D, training tokens.

    Returns
    -------
    N : int
        Non-embedding parameters (count).
    C : float
        Training compute (FLOPs).
    """
    d, h, L = config.n_embd, config.n_hidden, config.n_layer
    n = L * (4 * d * d + 3 * d * h + 2 * d) + d
    c = 6.0 * n * tokens + 12.0 * L * d * config.block_size * tokens
    return n, c


def size_fields(config, quantized):
    """Return the parameter counts and quantized matmul share of a model, for its run record.

    ``params_embedding`` is the tied embedding / LM-head matrix (V d), ``params_total`` every
    parameter (N + V d). ``quant_flop_frac`` is the fraction of the matmul FLOPs per token that
    run through fake-quantized linears: the transformer linears, 6 L (4 d^2 + 3 d h), and the LM
    head's 6 d V when ``quant_head`` is set, over those plus the head and attention's
    12 L d T (``params_and_flops``' terms); 0 when nothing is quantized.

    Parameters
    ----------
    config : GPTConfig
    quantized : bool
        Whether the run fake-quantizes any operand of the transformer linears.

    Returns
    -------
    dict
        ``params_total`` (int), ``params_embedding`` (int), ``quant_flop_frac`` (float in [0, 1]).
    """
    d, h, L, V = config.n_embd, config.n_hidden, config.n_layer, config.vocab_size
    n, _ = params_and_flops(config, 0)
    linear = 6.0 * L * (4 * d * d + 3 * d * h)
    head = 6.0 * d * V
    attention = 12.0 * L * d * config.block_size
    quant = (linear + (head if config.quant_head else 0.0)) if quantized else 0.0
    return {"params_total": n + V * d, "params_embedding": V * d,
            "quant_flop_frac": quant / (linear + head + attention)}


class RMSNorm(nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # normalise in fp32, return in the input dtype
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


def rotary_table(head_dim, block_size, base):
    """Return cos and sin of the rotary angles, each (block_size, head_dim // 2), fp32."""
    inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    angles = torch.outer(torch.arange(block_size, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rotary(x, cos, sin):
    # x (b, n_head, t, hd); cos, sin (t, hd/2). Rotates pairs (first half, second half).
    x1, x2 = x.chunk(2, dim=-1)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


class CausalSelfAttention(nn.Module):
    def __init__(self, config, linear):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        self.n_head = config.n_head
        self.q = linear(config.n_embd, config.n_embd)
        self.k = linear(config.n_embd, config.n_embd)
        self.v = linear(config.n_embd, config.n_embd)
        self.o = linear(config.n_embd, config.n_embd)

    def forward(self, x, cos, sin):
        b, t, c = x.shape  # (b, t, n_embd)
        hd = c // self.n_head
        q = self.q(x).view(b, t, self.n_head, hd).transpose(1, 2)  # (b, nh, t, hd)
        k = self.k(x).view(b, t, self.n_head, hd).transpose(1, 2)
        v = self.v(x).view(b, t, self.n_head, hd).transpose(1, 2)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (b, nh, t, hd)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.o(y)


class MLP(nn.Module):
    def __init__(self, config, linear):
        super().__init__()
        self.gate = linear(config.n_embd, config.n_hidden)
        self.up = linear(config.n_embd, config.n_hidden)
        self.down = linear(config.n_hidden, config.n_embd)

    def forward(self, x):
        return self.down(F.silu(self.gate(x)) * self.up(x))  # (b, t, n_hidden) inside


class Block(nn.Module):
    def __init__(self, config, linear):
        super().__init__()
        self.attn_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.attn = CausalSelfAttention(config, linear)
        self.mlp_norm = RMSNorm(config.n_embd, config.norm_eps)
        self.mlp = MLP(config, linear)

    def forward(self, x, cos, sin):
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.mlp(self.mlp_norm(x))


class GPT(nn.Module):
    """The decoder.

    Parameters
    ----------
    config : GPTConfig
    qconfig : training.quant.config.LinearQuantConfig or None
        How the transformer linears fake-quantize their operands; None gives plain
        ``nn.Linear`` layers (the BF16 baseline).
    backend : str
        ``QuantLinear`` backend (``"auto"`` picks the CUDA kernel where there is one).
    seed : int
        Seeds the stochastic rounding of the ``QuantLinear`` layers (each its own stream). Given
        explicitly, they draw nothing from torch's generator, so a quantized model gets the same
        initial weights as the plain one under the same ``torch.manual_seed``.
    """

    def __init__(self, config, qconfig=None, backend="auto", seed=0):
        super().__init__()
        self.config = config
        layer_ids = itertools.count(1)

        def linear(n_in, n_out, q=qconfig):
            if q is None:
                return nn.Linear(n_in, n_out, bias=False)
            from training.quant.linear import QuantLinear

            return QuantLinear(n_in, n_out, bias=False, qconfig=q, backend=backend,
                               seed=(seed << 16) + next(layer_ids))

        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config, linear) for _ in range(config.n_layer))
        self.norm = RMSNorm(config.n_embd, config.norm_eps)
        self.lm_head = linear(config.n_embd, config.vocab_size,
                              qconfig if config.quant_head else None)
        self.lm_head.weight = self.wte.weight  # tied
        cos, sin = rotary_table(config.n_embd // config.n_head, config.block_size,
                                config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)
        # scaled init of the residual projections, as GPT-2
        for name, p in self.named_parameters():
            if name.endswith(("attn.o.weight", "mlp.down.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)) or hasattr(module, "qconfig"):
            if getattr(module, "weight", None) is not None:
                nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, non_embedding=True):
        """Return the parameter count; with ``non_embedding`` the tied embedding is left out."""
        n = sum(p.numel() for p in self.parameters())  # shared tensors are counted once
        return n - self.wte.weight.numel() if non_embedding else n

    def transformer_linears(self):
        """Return ``[(name, module)]`` of the q, k, v, o, gate, up and down linears."""
        return [(f"blocks.{i}.{part}.{name}", getattr(getattr(block, part), name))
                for i, block in enumerate(self.blocks)
                for part, names in (("attn", ("q", "k", "v", "o")), ("mlp", ("gate", "up", "down")))
                for name in names]

    def forward(self, idx, targets=None):
        b, t = idx.shape  # (b, t) token ids
        assert t <= self.config.block_size, f"sequence of {t} > block_size"
        cos, sin = self.rope_cos[:t], self.rope_sin[:t]
        x = self.wte(idx)  # (b, t, n_embd)
        for block in self.blocks:
            x = block(x, cos, sin)
        logits = self.lm_head(self.norm(x))  # (b, t, vocab_size)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss  # loss in nats/token
