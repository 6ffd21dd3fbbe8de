"""Command line: ``python -m training.corpus build|pack|unpack|sample|info``.

``app`` is a typer app, so ``training corpus ...`` can mount it with ``add_typer``; ``main``
runs it with an explicit argument list.
"""

import json
from pathlib import Path

import typer

app = typer.Typer(
    help="Build, pack and unpack the English token corpus.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def build(
    out: Path = typer.Option(Path("data/corpus"), help="Output corpus directory."),
    cache: Path = typer.Option(Path("build/corpus"), help="Cache for .deb files and scratch."),
    with_tech: bool = typer.Option(False, help="Add the python3.11-doc technical domain."),
    vocab_size: int = typer.Option(8192, help="BPE vocabulary size."),
    min_frequency: int = typer.Option(2, help="BPE minimum pair count."),
    val_fraction: float = typer.Option(0.01, help="Fraction of documents for validation."),
    min_val_bytes: int = typer.Option(800_000, help="Raise val until it holds this many bytes."),
    near_dedup: bool = typer.Option(True, help="Also drop near-duplicate documents."),
) -> None:
    """Download the pinned Debian packages and build train.bin/val.bin/tokenizer/manifest."""
    from training.corpus.build import build as run_build

    m = run_build(
        out, cache, with_tech, vocab_size, min_frequency, val_fraction, min_val_bytes, near_dedup
    )
    sp = m["split"]
    typer.echo(
        f"train {sp['train']['tokens']} tokens, val {sp['val']['tokens']} tokens, "
        f"{m['timing']['total_s']} s; corpus_hash {m['corpus_hash']}"
    )


@app.command()
def pack(
    out: Path = typer.Option(..., help="Archive to write (.tar.xz)."),
    corpus: Path = typer.Option(Path("data/corpus"), help="Corpus directory to pack."),
) -> None:
    """Compress a corpus directory into one .tar.xz file."""
    from training.corpus.pack import pack as run_pack

    sizes = run_pack(corpus, out)
    typer.echo(f"{out}: {sizes['packed_bytes']} bytes (from {sizes['raw_bytes']})")


@app.command()
def unpack(
    archive: Path = typer.Argument(..., help="Archive written by pack."),
    out: Path = typer.Option(Path("data/corpus"), help="Directory to extract into."),
    expect_hash: str = typer.Option(None, help="Refuse unless the corpus hash is this."),
) -> None:
    """Extract a packed corpus, verifying every sha256 against its manifest."""
    from training.corpus.pack import unpack as run_unpack

    typer.echo(f"{out}: corpus_hash {run_unpack(archive, out, expect_hash)}")


@app.command()
def sample(
    corpus: Path = typer.Option(Path("data/corpus"), help="Full corpus directory."),
    out: Path = typer.Option(Path("training/data/sample"), help="Sample directory."),
    train_tokens: int = typer.Option(200_000, help="About this many train tokens."),
    val_tokens: int = typer.Option(20_000, help="About this many val tokens."),
) -> None:
    """Cut the small shipped sample (whole documents) from a built corpus."""
    from training.corpus.sample import cut_sample

    m = cut_sample(corpus, out, train_tokens, val_tokens)
    typer.echo(f"{out}: {m['shards']['train.bin']['tokens']} + {m['shards']['val.bin']['tokens']}")


@app.command()
def info(corpus: Path = typer.Argument(Path("data/corpus"), help="Corpus directory.")) -> None:
    """Print token counts and the corpus hash of a corpus directory."""
    from training.corpus.shards import TokenShards

    ts = TokenShards.open(corpus)
    typer.echo(
        json.dumps(
            {
                "train_tokens": int(ts.train.size),
                "val_tokens": int(ts.val.size),
                "vocab_size": ts.vocab_size,
                "corpus_hash": ts.corpus_hash,
            }
        )
    )


def main(argv: list[str] | None = None) -> None:
    """Run the corpus command line with ``argv`` (default: ``sys.argv[1:]``)."""
    app(args=argv, prog_name="python -m training.corpus")
