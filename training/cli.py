"""The ``training`` command line.

    training train --config cfg.json --out record.json [--append runs.jsonl] [--key=value ...]
    training train --model=2m --tokens=40000000 --format=e4m3 --granularity=128 --operands=all
    training train --nproc=4 --model=85m ...     # one run on 4 GPUs (torchrun, DDP)

Any ``TrainConfig`` key can be given as ``--key=value`` (or ``--key value``); flags win over the
config file. With ``nproc`` > 1 the command starts itself again under torchrun in that many
processes, which train the one run together (``training.ddp``). Bad input gives a one-line
``error: ...`` and exit status 2.

Other subcommands live in their own modules and are registered in ``SUBCOMMANDS``: the name maps
to ``"module:attribute"`` of a ``typer.Typer`` app (or any callable taking ``args`` and
``prog_name``, as a typer/click app does). The module is imported only when its subcommand runs, so
``training train`` never pays for it; a subcommand whose module is not there says so. To add one,
write the app in its module and add a line here.
"""

import importlib
import math
import sys
from dataclasses import replace

import typer

DEFAULT_OUT = "runs/{run_id}.json"
SUBCOMMANDS = {
    "corpus": "training.corpus.cli:app",
    "sweep": "training.sweep.cli:app",
}

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Train LLaMA-style models in fake-quantized floating-point formats and record the runs.",
    epilog="More subcommands: " + ", ".join(SUBCOMMANDS) + " (training NAME --help).",
)


def _error(message):
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _summary(record, out):
    """Return the lines printed after a run."""
    fmt = record["format"]
    if record["operands"] != "none":
        fmt += f" B={record['B']} operands={record['operands']}"
    lines = [
        f"run {record['run_id']}  status {record['status']}"
        + (f" at step {record['diverged_step']} ({record['reason']})"
           if record["status"] == "diverged" else
           f" ({record.get('reason', 'no reason given')})" if record["status"] != "ok" else ""),
        f"N {record['N']:,}  D {record['D']:,}  C {record['C']:.3g} FLOPs  format {fmt}",
        f"val loss {record['loss']:.4f} nats/token" if math.isfinite(record["loss"])
        else f"val loss {record['loss']}",
    ]
    ptq = {k[len("ptq_loss_"):]: v for k, v in record.items() if k.startswith("ptq_loss_")}
    if ptq:
        lines.append("PTQ  " + "  ".join(f"{k} {v:.4f}" for k, v in ptq.items()))
    tps = record.get("tokens_per_s")
    speed = f"{tps:,.0f} tokens/s  " if tps else ""
    lines.append(speed + f"wall {record['wall_s']:.1f} s  {record['gpu']}")
    if out:
        lines.append(f"record written to {out}")
    return lines


def _config_keys():
    from dataclasses import fields

    from training.config import TrainConfig

    return "Config keys (--key=value, default): " + ", ".join(
        f"{f.name}={f.default!r}" for f in fields(TrainConfig))


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
             epilog=_config_keys())
def train(
    ctx: typer.Context,
    config: str = typer.Option("", "--config", help="JSON file of TrainConfig keys."),
    out: str = typer.Option("", "--out", help="Write the run record (JSON) here; default "
                            "runs/{run_id}.json."),
    append: str = typer.Option("", "--append", help="Also append the record as one line to "
                               "this JSONL run table."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
):
    """Train one run; extra --key=value flags override TrainConfig keys.

    With --nproc=K (K > 1) the run is trained data-parallel by K processes, one GPU each (gloo
    processes with --device=cpu), started through torchrun.
    """
    import torch

    from training.config import load_config, parse_flags, resolve
    from training.ddp import check_nproc, check_split, from_env, launch

    try:
        cfg = load_config(config or None, ctx.args)
        dist = from_env()
        if dist.world_size > 1:
            check_nproc(cfg.nproc, dist)
        elif cfg.nproc > 1:  # errors once here, not once per process
            check_split(resolve(cfg, torch.cuda.is_available()), cfg.nproc)
    except ValueError as exc:
        _error(exc)
    if out or not cfg.out:
        cfg = replace(cfg, out=out or DEFAULT_OUT)
    if cfg.nproc > 1 and dist.world_size == 1:
        args = [a for flag, v in (("--config", config), ("--out", out), ("--append", append))
                if v for a in (flag, v)]
        # nproc is left out: torchrun would take --nproc for its own --nproc-per-node
        flags = [f"--{k}={v}" for k, v in parse_flags(ctx.args).items() if k != "nproc"]
        raise typer.Exit(launch(cfg.nproc, ["train", *args, *(["--quiet"] if quiet else []),
                                            *flags]))
    from training.train import train as run_train

    try:
        record = run_train(cfg, progress=not quiet)
    except ValueError as exc:
        _error(exc)
    if not dist.main:
        return
    if append:
        from training.record import append_record

        append_record(append, record)
    for line in _summary(record, cfg.out.replace("{run_id}", record["run_id"])):
        typer.echo(line)


@app.command()
def sizes():
    """List the model sizes: N, shape and default batch size and LR."""
    from training.model import SIZES, gpt_config, params_and_flops

    typer.echo(f"{'size':>9} {'N':>12} {'layers':>6} {'width':>5} {'heads':>5} {'batch':>5} "
               f"{'lr':>7}")
    for name, s in SIZES.items():
        n, _ = params_and_flops(gpt_config(name, 8192, 256), 1)
        typer.echo(f"{name:>9} {n:>12,} {s.n_layer:>6} {s.n_embd:>5} {s.n_head:>5} "
                   f"{s.batch_size:>5} {s.lr:>7.1e}")


def _subcommand(name):
    module_name, _, attr = SUBCOMMANDS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            typer.echo(f"error: subcommand '{name}' is not available ({module_name} is missing)",
                       err=True)
            raise SystemExit(2) from None
        raise
    return getattr(module, attr)


def main(argv=None):
    """Entry point of the ``training`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in SUBCOMMANDS:
        return _subcommand(argv[0])(args=argv[1:], prog_name=f"training {argv[0]}")
    return app(args=argv, prog_name="training")
