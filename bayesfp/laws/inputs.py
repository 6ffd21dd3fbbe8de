"""Turn a validated run table into the input arrays the laws need (no I/O)."""

import numpy as np
import pandas as pd

from bayesfp.dims import CHANNEL_LOG2B
from bayesfp.errors import BayesfpInputError


def block_log2(B, channel_log2b: float = CHANNEL_LOG2B, tensor_log2b: float | None = None):
    """log2 of the block size for each run.

    Parameters
    ----------
    B : array-like of str or int
        Block size, or ``"channel"``, ``"tensor"``, ``"none"`` (unquantized: 0, no penalty).
    channel_log2b : float
        Effective log2(B) of channel-wise scaling (Sun et al.: 13.1567).
    tensor_log2b : float or None
        Effective log2(B) of tensor-wise scaling. Sun et al. report no constant for it, so it must
        be given (or modelled) when tensor-wise runs are present.

    Returns
    -------
    numpy.ndarray of float, shape (run,)
    """
    out = []
    for b in np.asarray(B, dtype=object):
        s = str(b).strip().lower()
        if s == "none":
            out.append(0.0)
        elif s == "channel":
            out.append(channel_log2b)
        elif s == "tensor":
            if tensor_log2b is None:
                raise BayesfpInputError("B: tensor-wise runs need an effective log2(B) "
                                        "(pass tensor_log2b, or use a law variant that fits it)")
            out.append(tensor_log2b)
        else:
            try:
                v = int(float(s))
            except ValueError:
                raise BayesfpInputError(f"B: unknown granularity {b!r}") from None
            if v <= 0:
                raise BayesfpInputError(f"B: block size must be positive, got {b!r}")
            out.append(np.log2(v))
    return np.asarray(out, dtype=float)


TENSOR_UNPLACED = "tensor-wise, no effective log2(B) (--tensor-log2b)"


def unplaced_runs(df: pd.DataFrame, tensor_log2b: float | None = None) -> np.ndarray:
    """Runs a law cannot place on its block-size axis: quantized tensor-wise runs when no
    effective log2(B) for tensor-wise scaling is given. Boolean, shape (run,)."""
    if tensor_log2b is not None:
        return np.zeros(len(df), dtype=bool)
    quant = (df["operands"].astype(str).str.lower() != "none").to_numpy()
    tensor = (df["B"].astype(str).str.strip().str.lower() == "tensor").to_numpy()
    return quant & tensor


def law_inputs(df: pd.DataFrame, channel_log2b: float = CHANNEL_LOG2B,
               tensor_log2b: float | None = None, high_bits: float = 16.0) -> dict:
    """Input arrays for every law from a run table.

    Parameters
    ----------
    df : pandas.DataFrame
        Validated run table (columns N, D, E, M, B, operands; see ``docs/runs.md``).
    channel_log2b, tensor_log2b : float
        See :func:`block_log2`.
    high_bits : float
        Bits of an operand that was not quantized (Kumar's P for high precision).

    Returns
    -------
    dict of numpy.ndarray, each of shape (run,)
        ``N``, ``D``, ``E``, ``M``, ``P``, ``log2B`` (0 for unquantized runs) and Kumar's
        ``P_w`` (bits of the weight operands), ``P_a`` (bits of the activation operand x) and
        ``P_kv`` (always high precision: the KV cache is not quantized in these runs).
    """
    E = df["E"].to_numpy(dtype=float)
    M = df["M"].to_numpy(dtype=float)
    P = 1.0 + E + M
    ops = df["operands"].astype(str).str.lower()
    quant = (ops != "none").to_numpy()
    opsets = [set(o.split("+")) if o != "none" else set() for o in ops]
    has_w = np.array([bool(s & {"w", "w_bwd"}) for s in opsets])
    has_a = np.array([bool(s & {"x", "x_bwd"}) for s in opsets])
    log2B = np.where(quant, block_log2(np.where(quant, df["B"].astype(str), "none"),
                                       channel_log2b, tensor_log2b), 0.0)
    return {
        "N": df["N"].to_numpy(dtype=float),
        "D": df["D"].to_numpy(dtype=float),
        "E": E,
        "M": M,
        "P": P,
        "log2B": log2B,
        "P_w": np.where(has_w, P, high_bits),
        "P_a": np.where(has_a, P, high_bits),
        "P_kv": np.full(len(df), high_bits),
    }
