"""Chinchilla base law (Hoffmann et al. 2022, arXiv 2203.15556).

.. math:: L(N, D) = \\varepsilon + n N^{-\\alpha} + d D^{-\\beta}

with N non-embedding parameters, D training tokens and L in nats/token. The paper writes
E, A, B for eps, n, d; bayesfp uses the same names in every law so that the base terms of the
Kumar and Sun laws line up with these.
"""

from bayesfp.laws.base import Law, Param

BASE_PARAMS = (
    Param("n", True, "A", "scale of the model-size term (nats/token * N^alpha)"),
    Param("alpha", False, "alpha", "model-size exponent"),
    Param("d", True, "B", "scale of the data term (nats/token * D^beta)"),
    Param("beta", False, "beta", "data exponent"),
    Param("eps", False, "E", "irreducible loss (nats/token)"),
)


def base_terms(get, logN, logD, xp):
    """The Chinchilla terms ``n N^-alpha`` and ``d D^-beta``, written in log space."""
    t_n = xp.exp(get.log("n") - get("alpha") * logN)
    t_d = xp.exp(get.log("d") - get("beta") * logD)
    return t_n, t_d


def _loss(get, x, xp):
    t_n, t_d = base_terms(get, xp.log(x["N"]), xp.log(x["D"]), xp)
    return t_n + t_d + get("eps")


CHINCHILLA = Law(
    name="chinchilla",
    params=BASE_PARAMS,
    inputs=("N", "D"),
    fn=_loss,
    reference="Hoffmann et al. 2022, arXiv 2203.15556",
)
