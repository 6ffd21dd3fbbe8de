"""Names used everywhere in bayesfp, defined once.

Variables
---------
N : non-embedding parameters (count)
D : training tokens (count)
C : training compute (FLOPs)
E, M : exponent and mantissa bits of the training format (sign bit extra, P = 1 + E + M)
B : block size, the number of elements that share one scale factor; the granularity words
    ``"tensor"`` and ``"channel"`` stand for one scale per tensor or per row
loss : final validation loss in nats/token
"""

N = "N"
D = "D"
C = "C"
E = "E"
M = "M"
P = "P"
B = "B"
LOSS = "loss"

# posterior / run dims
CHAIN = "chain"
DRAW = "draw"
RUN = "run"
FORMAT = "format"
TARGET = "target"
GROUP = "group"

# GEMM operands that can be quantized. Forward Y = X W^T (x, w); input gradient dX = dY W
# (dy, w_bwd); weight gradient dW = dY^T X (dy2, x_bwd).
OPERANDS = ("x", "w", "dy", "w_bwd", "dy2", "x_bwd")
# The operands quantized in the runs Sun et al. fitted.
PAPER_OPERANDS = ("w", "w_bwd", "x_bwd")
NO_OPERANDS = "none"

GRANULARITY_WORDS = ("tensor", "channel")
# Sun et al.: channel-wise scaling behaves like a constant log2(B).
CHANNEL_LOG2B = 13.1567
