"""QuantLinear and its configs on CPU: API, straight-through gradients, per-operand quantizers."""

import pytest
import torch
from torch import nn

from bayesfp.dims import OPERANDS
from training.quant.config import LinearQuantConfig, OperandQuant
from training.quant.linear import QuantLinear
from training.quant.reference import quantize_reference
from training.quant.spec import FPFormat, parse_format


def test_config_from_spec():
    cfg = LinearQuantConfig.from_spec("e4m3", 128, "w+w_bwd+x_bwd")
    assert cfg.active == ("w", "w_bwd", "x_bwd")
    assert cfg.w == OperandQuant(FPFormat(4, 3), 128)
    assert LinearQuantConfig.from_spec(FPFormat(2, 1), "channel", "all").active == OPERANDS
    assert LinearQuantConfig.from_spec("e4m3", "tensor", "none") == LinearQuantConfig.none()
    assert LinearQuantConfig.from_spec("e4m3", "tensor", ["dy", "x"]).active == ("x", "dy")
    assert OperandQuant("e5m2", "tensor").fmt == parse_format("e5m2")


@pytest.mark.parametrize("bad", [dict(operands="w+z"), dict(granularity=0),
                                 dict(granularity="row"), dict(scale="int")])
def test_config_rejects(bad):
    args = dict(fmt="e4m3", granularity=32, operands="all") | bad
    with pytest.raises(ValueError):
        LinearQuantConfig.from_spec(**args)


def test_config_rejects_non_operand():
    with pytest.raises(ValueError, match="x must be"):
        LinearQuantConfig(x="e4m3")
    with pytest.raises(ValueError, match="qconfig"):
        QuantLinear(4, 4, qconfig="all")


def bf16_exact(*shape):
    return torch.randn(*shape).bfloat16().float()


def run(layer, x, g):
    x = x.clone().requires_grad_(True)
    y = layer(x)
    (y * g).sum().backward()
    return y.detach(), x.grad, layer.weight.grad


@pytest.mark.parametrize("bias", [False, True])
def test_unquantized_is_nn_linear(bias):
    torch.manual_seed(0)
    ref = nn.Linear(32, 16, bias=bias)
    q = QuantLinear(32, 16, bias=bias)
    q.load_state_dict(ref.state_dict())
    x, g = torch.randn(3, 8, 32), torch.randn(3, 8, 16)
    for a, b in zip(run(ref, x, g), run(q, x, g)):
        assert torch.equal(a, b)
    if bias:
        assert torch.equal(ref.bias.grad, q.bias.grad)


def test_high_precision_format_matches_nn_linear_exactly():
    # bf16-representable data, E8M7 with power-of-two scales: every quantizer is the identity
    torch.manual_seed(1)
    ref = nn.Linear(64, 32, bias=False)
    with torch.no_grad():
        ref.weight.copy_(ref.weight.bfloat16().float())
    cfg = LinearQuantConfig.from_spec(FPFormat(8, 7), 16, "all", scale="pow2")
    q = QuantLinear(64, 32, qconfig=cfg, backend="reference")
    q.load_state_dict(ref.state_dict())
    x, g = bf16_exact(4, 16, 64), bf16_exact(4, 16, 32)
    for a, b in zip(run(ref, x, g), run(q, x, g)):
        assert torch.equal(a, b)


def test_wide_format_close_to_nn_linear():
    torch.manual_seed(2)
    ref = nn.Linear(64, 32, bias=True)
    cfg = LinearQuantConfig.from_spec("e8m16", "channel", "all")
    q = QuantLinear(64, 32, bias=True, qconfig=cfg, backend="reference")
    q.load_state_dict(ref.state_dict())
    x, g = torch.randn(16, 64), torch.randn(16, 32)
    for a, b in zip(run(ref, x, g), run(q, x, g)):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=3e-4)  # 2**-17 relative per operand
    torch.testing.assert_close(ref.bias.grad, q.bias.grad)


@pytest.mark.parametrize("gran", ["tensor", "channel", 8])
def test_low_precision_matches_hand_applied_quantizers(gran):
    torch.manual_seed(3)
    fmts = dict(x="e4m3", w="e2m1", dy="e5m2", w_bwd="e3m2", dy2="e2m3", x_bwd="e4m3fn")
    cfg = LinearQuantConfig(**{k: OperandQuant(v, gran) for k, v in fmts.items()})
    layer = QuantLinear(32, 24, qconfig=cfg, backend="reference")
    x, g = torch.randn(2, 8, 32), torch.randn(2, 8, 24)
    y, dx, dw = run(layer, x, g)

    def q(t, name, dim):
        return quantize_reference(t, fmts[name], gran, dim=dim)

    w = layer.weight.detach()
    x2, g2 = x.reshape(16, 32), g.reshape(16, 24)
    y_ref = q(x2, "x", -1) @ q(w, "w", -1).t()
    dx_ref = q(g2, "dy", -1) @ q(w, "w_bwd", 0)
    dw_ref = q(g2, "dy2", 0).t() @ q(x2, "x_bwd", 0)
    torch.testing.assert_close(y.reshape(16, 24), y_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dx.reshape(16, 32), dx_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dw, dw_ref, rtol=1e-5, atol=1e-6)
    # and the quantization really changed the result
    assert not torch.allclose(y.reshape(16, 24), x2 @ w.t(), rtol=1e-3, atol=1e-3)


def test_single_operand_only_changes_its_gemm():
    torch.manual_seed(4)
    cfg = LinearQuantConfig.from_spec("e2m1", "channel", "dy2")
    layer = QuantLinear(32, 16, qconfig=cfg, backend="reference")
    ref = nn.Linear(32, 16, bias=False)
    ref.load_state_dict(layer.state_dict())
    x, g = torch.randn(8, 32), torch.randn(8, 16)
    (y, dx, dw), (y0, dx0, dw0) = run(layer, x, g), run(ref, x, g)
    torch.testing.assert_close(y, y0, rtol=0, atol=0)
    torch.testing.assert_close(dx, dx0, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(dw, dw0, rtol=1e-2, atol=1e-2)


def test_stochastic_linear_advances_state_and_is_reproducible():
    cfg = LinearQuantConfig.from_spec("e2m1:sr", 8, "all")
    a = QuantLinear(16, 8, qconfig=cfg, backend="reference", seed=11)
    b = QuantLinear(16, 8, qconfig=cfg, backend="reference", seed=11)
    b.load_state_dict(a.state_dict())
    assert set(a.state_dict()) == {"weight"}
    x, g = torch.randn(8, 16), torch.randn(8, 8)
    ra, rb = run(a, x, g), run(b, x, g)
    for u, v in zip(ra, rb):
        assert torch.equal(u, v)
    assert a.rng_state.tolist() == [11, 1]
    a.weight.grad = None
    assert not torch.equal(run(a, x, g)[0], ra[0])  # next step, new random bits


def test_bf16_autocast_and_dtypes():
    cfg = LinearQuantConfig.from_spec("e4m3", 16, "all")
    layer = QuantLinear(32, 16, qconfig=cfg, backend="reference")
    x = torch.randn(16, 32, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
    assert y.dtype == torch.bfloat16
    y.float().sum().backward()
    assert layer.weight.grad.dtype == torch.float32 and x.grad.dtype == torch.float32
    wide = QuantLinear(32, 16, qconfig=LinearQuantConfig.from_spec("e5m9", 16, "all"),
                       backend="reference", dtype=torch.bfloat16)
    assert wide(torch.randn(16, 32, dtype=torch.bfloat16)).dtype == torch.bfloat16
