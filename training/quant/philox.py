"""Philox4x32-10 counter-based random bits in plain torch integer arithmetic.

Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3" (the Random123 generator that
cuRAND's Philox also implements). The CUDA kernel (``csrc/fakequant.cu``) computes the same
function, so stochastic rounding is bit-identical between the reference and the kernel.

Stream layout used by fake-quant: element ``i`` of a tensor (row-major flat index) takes word
``i % 4`` of ``philox(key=(seed_lo, seed_hi), counter=(i//4 lo, i//4 hi, off_lo, off_hi))`` with
``off = step * 16 + stream``, where ``(seed, step)`` is the seed state and ``stream`` (0..15)
separates the operands quantized in the same step.
"""

import torch

MASK32 = 0xFFFFFFFF
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
STREAMS = 16


def _mulhilo(a: torch.Tensor, m: int):
    """High and low 32-bit words of ``a * m`` for int64 tensors ``a < 2**32`` (no overflow)."""
    a_hi = a >> 16
    a_lo = a & 0xFFFF
    p_hi = a_hi * m  # < 2**48
    p_lo = a_lo * m  # < 2**48
    lo = (((p_hi & 0xFFFF) << 16) + p_lo) & MASK32
    hi = (p_hi + (p_lo >> 16)) >> 16
    return hi, lo


def philox4x32(counter, key, rounds: int = 10):
    """Philox4x32 block function.

    Parameters
    ----------
    counter : sequence of 4 int64 tensors (or ints), each in [0, 2**32)
    key : sequence of 2 int64 tensors (or ints), each in [0, 2**32)

    Returns
    -------
    tuple of 4 int64 tensors in [0, 2**32), broadcast over the inputs.
    """
    c0, c1, c2, c3 = (torch.as_tensor(c, dtype=torch.int64) for c in counter)
    k0, k1 = (torch.as_tensor(k, dtype=torch.int64) for k in key)
    for r in range(rounds):
        if r > 0:
            k0 = (k0 + PHILOX_W0) & MASK32
            k1 = (k1 + PHILOX_W1) & MASK32
        hi0, lo0 = _mulhilo(c0, PHILOX_M0)
        hi1, lo1 = _mulhilo(c2, PHILOX_M1)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
    return c0, c1, c2, c3


def seed_state(seed, device) -> torch.Tensor:
    """The int64 ``[seed, step]`` state tensor from an int seed (step 0) or a state tensor."""
    if isinstance(seed, torch.Tensor):
        if seed.dtype != torch.int64 or seed.numel() != 2:
            raise ValueError("seed tensor must be int64 with 2 elements [seed, step]")
        return seed.reshape(2).to(device)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or an int64 [seed, step] tensor, "
                         f"got {seed!r}")
    return torch.tensor([seed, 0], dtype=torch.int64, device=device)


def random_bits(numel: int, state: torch.Tensor, stream: int = 0) -> torch.Tensor:
    """32 random bits per flat element index, as int64 values in [0, 2**32).

    Parameters
    ----------
    numel : int
        Number of elements.
    state : torch.Tensor
        int64 ``[seed, step]`` (see :func:`seed_state`).
    stream : int
        Operand stream 0..15.

    Returns
    -------
    torch.Tensor
        Shape ``(numel,)``, int64, on ``state.device``.
    """
    if not 0 <= stream < STREAMS:
        raise ValueError(f"stream must be in 0..{STREAMS - 1}, got {stream}")
    idx = torch.arange(numel, dtype=torch.int64, device=state.device)
    ctr = idx >> 2
    seed, step = state[0], state[1]
    off = step * STREAMS + stream
    words = philox4x32((ctr & MASK32, ctr >> 32, off & MASK32, (off >> 32) & MASK32),
                       (seed & MASK32, (seed >> 32) & MASK32))
    words = torch.stack(torch.broadcast_tensors(*words), dim=-1)
    return words.gather(-1, (idx & 3).unsqueeze(-1)).squeeze(-1)
