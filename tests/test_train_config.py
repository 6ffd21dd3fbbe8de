"""TrainConfig overrides, validation, resolution and the training CLI's handling of bad input."""

import dataclasses
import json

import pytest

from training.config import (
    OPERANDS,
    TrainConfig,
    apply_overrides,
    load_config,
    parse_flags,
    parse_operands,
    resolve,
)


def test_operands_match_dims():
    from bayesfp.dims import OPERANDS as DIMS_OPERANDS

    assert OPERANDS == DIMS_OPERANDS


def test_overrides_keep_types():
    cfg = apply_overrides(TrainConfig(), {"lr": "3e-4", "tokens": "1_000_000",
                                          "cuda_graph": "false", "model": "1.7m",
                                          "batch_size": 16, "min_lr_frac": 0})
    assert cfg.lr == 3e-4 and cfg.tokens == 1_000_000 and cfg.cuda_graph is False
    assert cfg.model == "1.7m" and cfg.batch_size == 16
    assert cfg.min_lr_frac == 0.0 and isinstance(cfg.min_lr_frac, float)


@pytest.mark.parametrize("key, value, word", [
    ("lr", "abc", "lr: expected float"),
    ("tokens", "1.5", "tokens: expected int"),
    ("tokens", 1.5, "tokens: expected int"),
    ("cuda_graph", "maybe", "cuda_graph: expected a bool"),
    ("cuda_graph", 1, "cuda_graph: expected bool"),
    ("seed", True, "seed: expected int"),
    ("model", 3, "model: expected str"),
    ("nonsense", 1, "nonsense: unknown config key"),
])
def test_override_errors(key, value, word):
    with pytest.raises(ValueError, match=word):
        apply_overrides(TrainConfig(), {key: value})


@pytest.mark.parametrize("flags, word", [
    (["--model=1b"], "model: unknown size"),
    (["--format=fp9"], "format: unknown format"),
    (["--format=e9m3"], "format: format 'e9m3' out of range"),
    (["--operands=w+z"], "operands: unknown operand 'z'"),
    (["--granularity=block"], "granularity: expected"),
    (["--ptq_formats=e4m3,int8"], "ptq_formats: unknown format"),
    (["--tokens=0"], "tokens: must be > 0"),
    (["--warmup_frac=2"], "warmup_frac: must be in"),
    (["--device=tpu"], "device: expected"),
    (["--model=100k", "--format=e4m3", "--granularity=128"],
     "granularity: block size 128 does not divide the widths of size '100k'"),
    (["--model=test", "--format=e4m3", "--granularity=32", "--batch_size=3", "--seq_len=10"],
     "granularity: block size 32 does not divide the 30 tokens"),
    (["--model=100k", "--ptq_granularity=128"], "ptq_granularity: block size 128 does not"),
    (["--model=3.4m", "--format=e4m3", "--granularity=512"],
     "granularity: block size 512 does not divide the widths of size '3.4m'"),
    (["lr=1"], "expected --key=value"),
    (["--lr"], "lr: flag without a value"),
])
def test_validation_errors(flags, word):
    with pytest.raises(ValueError, match=word):
        resolve(load_config(None, flags), cuda_available=False)


def test_block_fits_when_unquantized():
    # a block size that would not fit is fine when nothing is quantized
    cfg = resolve(load_config(None, ["--model=100k", "--granularity=128", "--operands=none",
                                     "--format=e4m3"]), False)
    assert cfg.operands == "none"
    resolve(load_config(None, ["--model=200k", "--format=e4m3", "--granularity=128"]), False)
    # the wide one-layer size takes blocks of 512 (widths 512 and 1536)
    resolve(load_config(None, ["--model=3.4m-w512", "--format=e4m3", "--granularity=512"]), False)


def test_flags_and_file(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"model": "100k", "lr": 1e-3, "seed": 3}))
    cfg = load_config(str(path), ["--seed", "4", "--batch-size=12"])
    assert (cfg.model, cfg.lr, cfg.seed, cfg.batch_size) == ("100k", 1e-3, 4, 12)
    assert parse_flags(["--a=b=c"]) == {"a": "b=c"}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(str(bad))
    with pytest.raises(ValueError, match="file not found"):
        load_config(str(tmp_path / "missing.json"))
    bad.write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        load_config(str(bad))


def test_parse_operands():
    assert parse_operands("x_bwd+w") == ("w", "x_bwd")
    assert parse_operands("all") == OPERANDS
    assert parse_operands("none") == ()


def test_resolve_fills_size_defaults():
    from training.model import SIZES

    cfg = resolve(TrainConfig(model="1.7m", operands="x_bwd+w_bwd+w"), cuda_available=False)
    assert cfg.lr == SIZES["1.7m"].lr and cfg.batch_size == SIZES["1.7m"].batch_size
    assert cfg.device == "cpu" and cfg.operands == "w+w_bwd+x_bwd"
    cfg = resolve(TrainConfig(lr=1e-4, batch_size=7, device="auto"), cuda_available=True)
    assert (cfg.lr, cfg.batch_size, cfg.device) == (1e-4, 7, "cuda")
    assert resolve(TrainConfig(operands="none"), False).operands == "none"


def test_every_field_is_plain_and_typed():
    for f in dataclasses.fields(TrainConfig):
        assert type(f.default) in (int, float, str, bool), f.name


@pytest.mark.parametrize("args, word", [
    (["train", "--bogus=1"], "error: bogus: unknown config key"),
    (["train", "--lr=fast"], "error: lr: expected float, got 'fast'"),
    (["train", "--config", "/nonexistent/cfg.json"], "error: config: file not found"),
    (["train", "--data=/nonexistent/shards", "--tokens=4096", "--model=test"],
     "error: data: no token shards at '/nonexistent/shards'"),
])
def test_cli_errors_exit_2(args, word, capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == word or (err.startswith(word) and "\n" not in err)
    assert "Traceback" not in err


def test_cli_unknown_subcommand_module(capsys, monkeypatch):
    from training import cli

    monkeypatch.setitem(cli.SUBCOMMANDS, "nothere", "training.no_such_module:app")
    with pytest.raises(SystemExit) as exc:
        cli.main(["nothere", "--help"])
    assert exc.value.code == 2
    assert "not available" in capsys.readouterr().err


def test_cli_sizes(capsys):
    from training.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["sizes"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "100k" in out and "85m" in out


def test_code_rev_from_environment(monkeypatch):
    from training.record import code_rev

    monkeypatch.setenv("BAYESFP_CODE_REV", "abc123")
    assert code_rev() == "abc123"
    monkeypatch.delenv("BAYESFP_CODE_REV")
    rev = code_rev()
    assert rev == "unknown" or len(rev) == 40
