"""Linear layer whose six GEMM operands can each be fake-quantized.

Forward ``Y = X W^T`` reduces over in_features (last dim of X and of W); the input gradient
``dX = dY W`` reduces over out_features (last dim of dY, dim 0 of W); the weight gradient
``dW = dY^T X`` reduces over tokens (dim 0 of dY and X after flattening the leading dims).
Quantized operands are de-quantized (fake-quant) and the GEMMs run in the compute dtype (bf16
with fp32 accumulation under bf16 weights or autocast, as in Sun et al. 2025). Gradients are
straight-through: quantization is treated as the identity when differentiating.

Operand pairs read the same tensor: ``x``/``x_bwd`` (forward), ``w``/``w_bwd`` (forward; the
quantized ``w_bwd`` is kept for the backward pass, one extra weight-sized tensor) and
``dy``/``dy2`` (backward). With block-wise configs on CUDA, each pair is one read of the tensor.

Stochastic rounding draws from the module's ``rng_state`` buffer, an int64 ``[seed, step]``
tensor on the module's device. The step advances in place after each forward, so the layer can
be captured in a CUDA graph and replayed with fresh random bits. The buffer is not saved in the
state dict, which therefore has the same keys as ``nn.Linear``'s.
"""

import torch
import torch.nn.functional as F
from torch import nn

from training.quant.config import LinearQuantConfig
from training.quant.dispatch import BACKENDS, quantize_pair

# random streams of the six operands (philox offset = step * 16 + stream)
STREAM = {"x": 0, "w": 1, "dy": 2, "w_bwd": 3, "dy2": 4, "x_bwd": 5}


class QuantLinearFunction(torch.autograd.Function):
    """``y = Q(x) Q(w)^T + b`` with quantized, straight-through backward GEMMs."""

    @staticmethod
    def forward(ctx, x, weight, bias, qconfig, backend, state):
        out_features, in_features = weight.shape
        dt = x.dtype
        x2 = x.reshape(-1, in_features)
        xq, x_bwd = quantize_pair(x2, qconfig.x, qconfig.x_bwd, state,
                                  (STREAM["x"], STREAM["x_bwd"]), backend)
        wq, w_bwd = quantize_pair(weight, qconfig.w, qconfig.w_bwd, state,
                                  (STREAM["w"], STREAM["w_bwd"]), backend)
        y = xq.to(dt) @ wq.to(dt).t()
        if bias is not None:
            y = y + bias.to(dt)
        ctx.save_for_backward(x_bwd, w_bwd, state)
        ctx.qconfig, ctx.backend = qconfig, backend
        ctx.x_shape, ctx.w_dtype, ctx.has_bias = x.shape, weight.dtype, bias is not None
        ctx.b_dtype = bias.dtype if bias is not None else None
        return y.reshape(*x.shape[:-1], out_features)

    @staticmethod
    def backward(ctx, dy):
        x_bwd, w_bwd, state = ctx.saved_tensors
        q = ctx.qconfig
        out_features = w_bwd.shape[0]
        dt = dy.dtype
        dy2d = dy.reshape(-1, out_features)
        dyq, dy2q = quantize_pair(dy2d, q.dy, q.dy2, state, (STREAM["dy"], STREAM["dy2"]),
                                  ctx.backend)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = (dyq.to(dt) @ w_bwd.to(dt)).reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = (dy2q.to(dt).t() @ x_bwd.to(dt)).to(ctx.w_dtype)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            db = dy2d.sum(0).to(ctx.b_dtype)
        return dx, dw, db, None, None, None


class QuantLinear(nn.Linear):
    """Drop-in ``nn.Linear`` with per-operand fake-quant.

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Default False (the model's linears have no bias).
    qconfig : LinearQuantConfig, optional
        Per-operand formats; None (or all operands None) is a plain ``nn.Linear``.
    backend : {"auto", "cuda", "reference"}
        Fake-quant implementation (see :func:`training.quant.quantize`).
    seed : int, optional
        Seed of stochastic rounding; drawn from torch's default generator when None.
    device, dtype
        As for ``nn.Linear``.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False,
                 qconfig: LinearQuantConfig | None = None, backend: str = "auto",
                 seed: int | None = None, device=None, dtype=None):
        super().__init__(in_features, out_features, bias=bias, device=device, dtype=dtype)
        if qconfig is not None and not isinstance(qconfig, LinearQuantConfig):
            raise ValueError(f"qconfig must be a LinearQuantConfig or None, got {qconfig!r}")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.qconfig = qconfig if qconfig is not None else LinearQuantConfig.none()
        self.backend = backend
        if seed is None:
            seed = int(torch.randint(0, 2**62, (1,)).item())
        self.register_buffer("rng_state", torch.tensor([seed, 0], dtype=torch.int64,
                                                       device=device), persistent=False)

    @property
    def stochastic(self) -> bool:
        """Whether any operand rounds stochastically."""
        return any(getattr(self.qconfig, n).fmt.rounding == "stochastic"
                   for n in self.qconfig.active)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.qconfig.active:
            return F.linear(x, self.weight, self.bias)
        weight, bias = self.weight, self.bias
        device_type = x.device.type
        if torch.is_autocast_enabled(device_type):
            dt = torch.get_autocast_dtype(device_type)
            x, weight = x.to(dt), weight.to(dt)
        else:
            weight = weight.to(x.dtype)
        state = None
        if self.stochastic:
            state = self.rng_state.clone()
            self.rng_state[1:].add_(1)
        with torch.autocast(device_type, enabled=False):
            return QuantLinearFunction.apply(x, weight, bias, self.qconfig, self.backend, state)

    def extra_repr(self) -> str:
        ops = ", ".join(f"{n}={getattr(self.qconfig, n).fmt.name}/"
                        f"{getattr(self.qconfig, n).granularity}" for n in self.qconfig.active)
        return super().extra_repr() + (f", quant=[{ops}]" if ops else "")
