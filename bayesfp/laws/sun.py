"""Sun et al. 2025, "Scaling Laws for Floating-Point Quantization Training" (arXiv 2501.02423).

.. math::

    L(N, D, E, M, B) = n N^{-\\alpha} + d D^{-\\beta} + \\varepsilon
        + \\frac{D^{\\beta}}{N^{\\alpha}}
          \\frac{\\log_2 B}{\\gamma (E + 0.5)^{\\delta} (M + 0.5)^{\\nu}}

alpha and beta are shared between the base terms and the precision penalty. The input
``log2B`` is log2 of the block size (13.1567 for channel-wise scaling, see
:data:`bayesfp.dims.CHANNEL_LOG2B`); runs with no quantized operand carry ``log2B = 0`` and so no
penalty.

The variant ``sun_sep`` gives the penalty its own exponents (alpha_q, beta_q) on N and D, so that
the knowledge-intensity term is not forced to share the base exponents.
"""

from bayesfp.laws.base import Law, Param
from bayesfp.laws.chinchilla import BASE_PARAMS, base_terms

PENALTY_PARAMS = (
    Param("gamma", True, "gamma", "inverse scale of the precision penalty"),
    Param("delta", False, "delta", "exponent-bits exponent of the penalty"),
    Param("nu", False, "nu", "mantissa-bits exponent of the penalty"),
)


def log_penalty_format(get, x, xp):
    """log of 1 / (gamma (E+0.5)^delta (M+0.5)^nu)."""
    return (-get.log("gamma") - get("delta") * xp.log(x["E"] + 0.5)
            - get("nu") * xp.log(x["M"] + 0.5))


def _loss(get, x, xp):
    logN, logD = xp.log(x["N"]), xp.log(x["D"])
    t_n, t_d = base_terms(get, logN, logD, xp)
    pen = xp.exp(get("beta") * logD - get("alpha") * logN + log_penalty_format(get, x, xp))
    return t_n + t_d + get("eps") + pen * x["log2B"]


def _loss_sep(get, x, xp):
    logN, logD = xp.log(x["N"]), xp.log(x["D"])
    t_n, t_d = base_terms(get, logN, logD, xp)
    pen = xp.exp(get("beta_q") * logD - get("alpha_q") * logN + log_penalty_format(get, x, xp))
    return t_n + t_d + get("eps") + pen * x["log2B"]


SUN = Law(name="sun", params=BASE_PARAMS + PENALTY_PARAMS, inputs=("N", "D", "E", "M", "log2B"),
          fn=_loss, reference="Sun et al. 2025, arXiv 2501.02423",
          penalty_params=("gamma", "delta", "nu"))

SUN_SEP = Law(
    name="sun_sep",
    params=BASE_PARAMS + PENALTY_PARAMS + (
        Param("alpha_q", False, "-", "model-size exponent of the penalty"),
        Param("beta_q", False, "-", "data exponent of the penalty"),
    ),
    inputs=("N", "D", "E", "M", "log2B"),
    fn=_loss_sep,
    reference="Sun et al. 2025, arXiv 2501.02423 (separate penalty exponents)",
    penalty_params=("gamma", "delta", "nu", "alpha_q", "beta_q"),
)
