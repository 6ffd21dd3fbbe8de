"""The LLaMA-style model: parameter and FLOP counts by hand, shapes, causality, rotary, quant."""

import math

import pytest

torch = pytest.importorskip("torch")

from training.model import (  # noqa: E402
    GPT,
    SIZES,
    GPTConfig,
    apply_rotary,
    block_unit,
    gpt_config,
    params_and_flops,
    rotary_table,
    size_fields,
)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SMALL = GPTConfig(vocab_size=100, block_size=16, n_layer=2, n_head=2, n_embd=32, n_hidden=96)


def test_n_by_hand():
    # per layer: q, k, v, o 4 * 32 * 32 = 4096; gate, up, down 3 * 32 * 96 = 9216; two RMSNorm
    # weights 2 * 32 = 64 -> 13376. Two layers plus the final norm (32): 26784.
    n, _ = params_and_flops(SMALL, 1)
    assert n == 2 * (4096 + 9216 + 64) + 32 == 26784
    model = GPT(SMALL)
    assert model.num_params() == 26784
    # the tied embedding/head matrix is the only other parameter
    assert model.num_params(non_embedding=False) == 26784 + 100 * 32
    assert model.lm_head.weight is model.wte.weight


def test_flops_by_hand():
    # C = 6 N D + 12 L d T D with N = 26784, L = 2, d = 32, T = 16, D = 1000
    _, c = params_and_flops(SMALL, 1000)
    assert c == 6 * 26784 * 1000 + 12 * 2 * 32 * 16 * 1000 == 172_992_000


@pytest.mark.parametrize("name", ["test", "100k", "200k", "430k", "850k", "1.7m"])
def test_n_matches_module(name):
    cfg = gpt_config(name, vocab_size=512, block_size=32)
    n, _ = params_and_flops(cfg, 1)
    assert GPT(cfg).num_params() == n


def test_size_family_spans():
    n = {name: params_and_flops(gpt_config(name, 8192, 256), 1)[0] for name in SIZES}
    small = [n[k] for k in ("100k", "200k", "430k", "850k", "1.7m", "3.4m", "6.8m")]
    assert small == sorted(small)
    assert 0.08e6 < small[0] < 0.15e6 and small[-1] / small[0] >= 30
    # the sizes that take blocks of 128 still span 30x
    assert n["6.8m"] / n["200k"] >= 30
    assert 20e6 < n["26m"] < 30e6 and 75e6 < n["85m"] < 95e6
    for name, s in SIZES.items():
        assert s.n_embd % s.n_head == 0 and (s.n_embd // s.n_head) % 2 == 0, name
        unit = block_unit(gpt_config(name, 8192, 256))
        assert unit % min(s.n_embd, 128) == 0, name
        assert 2.6 < s.n_hidden / s.n_embd <= 3.0, name


def test_one_shape_family():
    # the v2 family: 4 layers, heads of width 64, widths 128..768, one batch, N spanning >= 25x
    fam = ["f850k", "f3.4m", "f7.1m", "f13m", "f28m"]
    n = [params_and_flops(gpt_config(k, 8192, 256), 1)[0] for k in fam]
    assert n == sorted(n) and n[-1] / n[0] >= 25
    assert n[0] == 4 * (4 * 128 * 128 + 3 * 128 * 384 + 2 * 128) + 128 == 853_120
    assert {SIZES[k].n_layer for k in fam} == {4}
    assert {SIZES[k].n_embd // SIZES[k].n_head for k in fam} == {64}
    assert len({SIZES[k].batch_size for k in fam}) == 1
    for a, b in zip(fam, fam[1:]):
        assert 1.3 <= SIZES[b].n_embd / SIZES[a].n_embd <= 2.0


def test_size_fields_by_hand():
    # SMALL: linears 6 L (4 d^2 + 3 d h) = 6 * 2 * (4096 + 9216) = 159744 FLOPs per token, head
    # 6 d V = 6 * 32 * 100 = 19200, attention 12 L d T = 12 * 2 * 32 * 16 = 12288
    f = size_fields(SMALL, quantized=True)
    assert f["params_embedding"] == 3200 and f["params_total"] == 26784 + 3200
    assert f["quant_flop_frac"] == pytest.approx(159744 / (159744 + 19200 + 12288))
    assert size_fields(SMALL, quantized=False)["quant_flop_frac"] == 0.0
    head = size_fields(GPTConfig(**{**SMALL.__dict__, "quant_head": True}), quantized=True)
    assert head["quant_flop_frac"] == pytest.approx((159744 + 19200) / (159744 + 19200 + 12288))


def test_forward_shapes_and_loss():
    torch.manual_seed(0)
    model = GPT(SMALL)
    idx = torch.randint(0, 100, (3, 16))
    logits, loss = model(idx, torch.randint(0, 100, (3, 16)))
    assert logits.shape == (3, 16, 100)
    # at init the logits are nearly uniform: loss close to ln(vocab)
    assert abs(loss.item() - math.log(100)) < 0.1
    logits2, none = model(idx[:, :5])
    assert none is None and logits2.shape == (3, 5, 100)


def test_causal():
    torch.manual_seed(0)
    model = GPT(SMALL)
    idx = torch.randint(0, 100, (2, 16))
    idx2 = idx.clone()
    idx2[:, 10:] = (idx2[:, 10:] + 1) % 100
    a, _ = model(idx)
    b, _ = model(idx2)
    torch.testing.assert_close(a[:, :10], b[:, :10], rtol=0, atol=0)
    assert not torch.allclose(a[:, 10:], b[:, 10:])


def test_rotary_relative():
    # <R(m) q, R(n) k> depends only on m - n
    cos, sin = rotary_table(8, 32, 10000.0)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(8, generator=g).expand(32, 8).reshape(1, 1, 32, 8)
    k = torch.randn(8, generator=g).expand(32, 8).reshape(1, 1, 32, 8)
    rq, rk = apply_rotary(q, cos, sin)[0, 0], apply_rotary(k, cos, sin)[0, 0]
    d1 = rq[7] @ rk[3]
    d2 = rq[20] @ rk[16]
    torch.testing.assert_close(d1, d2, rtol=1e-5, atol=1e-5)
    # rotation keeps the norm
    torch.testing.assert_close(rq.norm(dim=-1), q[0, 0].norm(dim=-1), rtol=1e-5, atol=1e-6)


def test_transformer_linears():
    model = GPT(SMALL)
    names = [n for n, _ in model.transformer_linears()]
    assert len(names) == 2 * 7
    assert names[:7] == [f"blocks.0.{p}" for p in ("attn.q", "attn.k", "attn.v", "attn.o",
                                                    "mlp.gate", "mlp.up", "mlp.down")]
    mods = dict(model.named_modules())
    for n, m in model.transformer_linears():
        assert mods[n] is m


def _loss_and_grads(model, idx):
    model.zero_grad(set_to_none=True)
    _, loss = model(idx, idx.roll(-1, dims=1))
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("spec", ["none", "high"])
def test_quant_linear_matches_plain(spec):
    """QuantLinear with nothing quantized, or all six operands in E8M22, matches nn.Linear."""
    pytest.importorskip("training.quant.linear")
    from training.quant.config import LinearQuantConfig

    if spec == "none":
        qconfig, tol = LinearQuantConfig.none(), 1e-6
    else:
        qconfig, tol = LinearQuantConfig.from_spec("e8m22", "channel", "all"), 2e-5
    torch.manual_seed(0)
    plain = GPT(SMALL)
    torch.manual_seed(0)
    quant = GPT(SMALL, qconfig=qconfig, backend="reference")
    quant.load_state_dict(plain.state_dict())
    idx = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(1))
    l0, g0 = _loss_and_grads(plain, idx)
    l1, g1 = _loss_and_grads(quant, idx)
    torch.testing.assert_close(l1, l0, rtol=tol, atol=tol)
    assert g0.keys() == g1.keys()
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=tol, atol=tol * 1e-2, msg=name)


def test_quant_model_same_init():
    """The quantized model draws nothing extra from torch's generator: same initial weights."""
    pytest.importorskip("training.quant.linear")
    from training.quant.config import LinearQuantConfig

    torch.manual_seed(0)
    plain = GPT(SMALL)
    torch.manual_seed(0)
    quant = GPT(SMALL, qconfig=LinearQuantConfig.from_spec("e4m3:sr", 16, "all"), seed=5)
    a, b = plain.state_dict(), quant.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    seeds = {int(m.rng_state[0]) for _, m in quant.transformer_linears()}
    assert len(seeds) == 2 * 7


def test_quant_linear_low_precision_differs():
    """e2m1 on all operands must change the loss: the quantizers are really in the graph."""
    pytest.importorskip("training.quant.linear")
    from training.quant.config import LinearQuantConfig

    torch.manual_seed(0)
    plain = GPT(SMALL)
    quant = GPT(SMALL, qconfig=LinearQuantConfig.from_spec("e2m1", "channel", "all"),
                backend="reference")
    quant.load_state_dict(plain.state_dict())
    idx = torch.randint(0, 100, (4, 16), generator=torch.Generator().manual_seed(1))
    l0, g0 = _loss_and_grads(plain, idx)
    l1, g1 = _loss_and_grads(quant, idx)
    name = "blocks.0.mlp.down.weight"
    assert not torch.allclose(g1[name], g0[name], rtol=1e-3, atol=0)
