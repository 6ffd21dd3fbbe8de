"""Kumar et al. 2024, "Scaling Laws for Precision" (arXiv 2411.04330).

Training in low precision shrinks the effective parameter count:

.. math::

    L = n N_{eff}^{-\\alpha} + d D^{-\\beta} + \\varepsilon, \\qquad
    N_{eff} = N \\prod_{x \\in \\{w, a, kv\\}} \\left(1 - e^{-(P_x - n_x)/\\gamma_x}\\right)

with P_w, P_a, P_kv the bits of weights, activations and KV cache during training. The offsets
n_x default to 0 (the paper's main-text form); the fitted constants of its appendix carry them.
The factor is only defined for P_x > n_x (it is NaN otherwise).

Post-training quantization of the weights to P_post bits adds a degradation that grows with D:

.. math:: \\delta_{PTQ} = C_T \\frac{D^{\\gamma_D}}{N^{\\gamma_N}} e^{-P_{post}/\\gamma_{post}}
"""

from bayesfp.laws.base import Law, Param
from bayesfp.laws.chinchilla import BASE_PARAMS, base_terms

_TARGETS = ("w", "a", "kv")

TRAIN_PARAMS = BASE_PARAMS + tuple(
    Param(f"gamma_{t}", True, f"gamma_{t}", f"precision sensitivity of {t} (bits)")
    for t in _TARGETS
) + tuple(
    Param(f"n_{t}", False, f"n_{t}", f"offset of the bits of {t} (bits)", optional=0.0)
    for t in _TARGETS
)

PTQ_PARAMS = (
    Param("C_T", True, "C_T", "scale of the post-training-quantization degradation (nats/token)"),
    Param("gamma_D", False, "gamma_D", "data exponent of the PTQ degradation"),
    Param("gamma_N", False, "gamma_N", "model-size exponent of the PTQ degradation"),
    Param("gamma_post", True, "gamma_post", "bit scale of the PTQ degradation (bits)"),
)


def log_neff(get, logN, x, xp):
    """log N_eff: log N plus the log of each precision factor."""
    out = logN
    for t in _TARGETS:
        out = out + xp.log1p(-xp.exp(-(x[f"P_{t}"] - get(f"n_{t}")) / get(f"gamma_{t}")))
    return out


def _train_loss(get, x, xp):
    logD = xp.log(x["D"])
    t_n, t_d = base_terms(get, log_neff(get, xp.log(x["N"]), x, xp), logD, xp)
    return t_n + t_d + get("eps")


def _ptq_loss(get, x, xp):
    """Loss after post-training quantization of the weights to ``P_post`` bits."""
    logN, logD = xp.log(x["N"]), xp.log(x["D"])
    delta = xp.exp(get.log("C_T") + get("gamma_D") * logD - get("gamma_N") * logN
                   - x["P_post"] / get("gamma_post"))
    return _train_loss(get, x, xp) + delta


KUMAR = Law(name="kumar", params=TRAIN_PARAMS, inputs=("N", "D", "P_w", "P_a", "P_kv"),
             fn=_train_loss, reference="Kumar et al. 2024, arXiv 2411.04330",
             penalty_params=("gamma_w", "gamma_a", "gamma_kv"))

KUMAR_PTQ = Law(
    name="kumar_ptq",
    params=TRAIN_PARAMS + PTQ_PARAMS,
    inputs=("N", "D", "P_w", "P_a", "P_kv", "P_post"),
    fn=_ptq_loss,
    reference="Kumar et al. 2024, arXiv 2411.04330",
    penalty_params=("gamma_w", "gamma_a", "gamma_kv", "C_T", "gamma_D", "gamma_N", "gamma_post"),
)
