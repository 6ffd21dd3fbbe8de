"""Cell and seed effects integrated out of the likelihood, and drawn back afterwards.

With Normal noise, the cell effect :math:`c_k \\sim N(0, \\tau_{c,k}^2)` and the seed effect
:math:`s_j \\sim N(0, \\tau_{s,j}^2)` of the structured models enter log-loss additively, so the
runs of one cell are jointly Normal around the law with covariance

.. math:: \\Sigma_k = \\mathrm{blockdiag}_j(\\sigma_j^2 I_{n_j} + \\tau_{s,j}^2 \\mathbf 1
          \\mathbf 1^\\top) + \\tau_{c,k}^2 \\mathbf 1 \\mathbf 1^\\top

(j: the seed groups of cell k, n_j runs each; the noise sd depends on D only, so it is one
value per group). Its log density needs only per-group sums of the residuals r = log L - mu:
with :math:`\\bar r_j` the group mean, :math:`S_j` the within-group sum of squares,
:math:`v_j = \\sigma_j^2 + n_j \\tau_{s,j}^2`, :math:`w_j = n_j / v_j`,
:math:`W_k = \\sum_j w_j`, :math:`U_k = \\sum_j w_j \\bar r_j`,

.. math:: -2 \\log p = n \\log 2\\pi + \\sum_j [(n_j - 1)\\log\\sigma_j^2 + \\log v_j
          + S_j / \\sigma_j^2 + n_j \\bar r_j^2 / v_j]
          + \\sum_k [\\log(1 + \\tau_{c,k}^2 W_k) - \\tau_{c,k}^2 U_k^2 / (1 + \\tau_{c,k}^2 W_k)]

(matrix determinant lemma and Sherman-Morrison on the cell's rank-one term). Sampling the
law's coefficients and the effects' scales against this density removes one latent variable per
cell and per seed group, and with them the funnels between each scale and its effects.

The effects themselves are Normal given the coefficients, so each posterior draw gets an exact
draw of them afterwards (:func:`draw_effects`):
:math:`c_k \\mid r \\sim N(\\tau_c^2 U_k / (1 + \\tau_c^2 W_k), \\tau_c^2 / (1 + \\tau_c^2 W_k))`,
then :math:`s_j \\mid c_k, r \\sim N(n_j \\tau_s^2 (\\bar r_j - c_k) / v_j,
\\tau_s^2 \\sigma_j^2 / v_j)`.
"""

import numpy as np

LOG_2PI = float(np.log(2.0 * np.pi))


class Groups:
    """Run -> seed group -> cell indices of a run table (all int arrays).

    Parameters
    ----------
    seed_idx : array of int, shape (run,)
        Seed group (cell x seed) of each run, 0..J-1.
    cell_of_group : array of int, shape (J,)
        Cell of each seed group, 0..K-1.
    """

    def __init__(self, seed_idx, cell_of_group):
        self.seed_idx = np.asarray(seed_idx, dtype=int)
        self.cell_of_group = np.asarray(cell_of_group, dtype=int)
        self.J = len(self.cell_of_group)
        self.K = int(self.cell_of_group.max()) + 1 if self.J else 0
        self.n = np.bincount(self.seed_idx, minlength=self.J).astype(float)
        if (self.n == 0).any():
            raise ValueError("every seed group needs at least one run")


def log_density_pt(r, groups: Groups, sigma2, tau_s2, tau_c2):
    """The marginal log density of residuals (PyTensor graph, a scalar).

    Parameters
    ----------
    r : pytensor vector, shape (run,)
        Residual log-losses, log L - mu.
    groups : Groups
    sigma2, tau_s2 : pytensor vectors, shape (J,), or None
        Noise variance and seed-effect variance of each seed group (None: no seed effect).
    tau_c2 : pytensor vector, shape (K,), or scalar, or None
        Cell-effect variance of each cell (None: no cell effect).
    """
    import pytensor.tensor as pt

    n = groups.n
    sum_r = pt.zeros(groups.J)[groups.seed_idx].inc(r)
    sum_r2 = pt.zeros(groups.J)[groups.seed_idx].inc(r * r)
    mean = sum_r / n
    within = sum_r2 - n * mean * mean
    v = sigma2 if tau_s2 is None else sigma2 + n * tau_s2
    out = pt.sum((n - 1.0) * pt.log(sigma2) + pt.log(v) + within / sigma2 + n * mean * mean / v)
    if tau_c2 is not None:
        w = n / v
        W = pt.zeros(groups.K)[groups.cell_of_group].inc(w)
        U = pt.zeros(groups.K)[groups.cell_of_group].inc(w * mean)
        a = tau_c2 * W
        out = out + pt.sum(pt.log1p(a) - tau_c2 * U * U / (1.0 + a))
    return -0.5 * (out + len(groups.seed_idx) * LOG_2PI)


def _cell_sums(w, wm, groups: Groups):
    S = w.shape[0]
    W = np.zeros((S, groups.K))
    U = np.zeros((S, groups.K))
    np.add.at(W.T, groups.cell_of_group, w.T)
    np.add.at(U.T, groups.cell_of_group, wm.T)
    return W, U


def draw_effects(r, groups: Groups, sigma2, tau_s2, tau_c2, rng):
    """Exact draws of the cell and seed effects given residuals, one per posterior draw.

    Parameters
    ----------
    r : numpy.ndarray, shape (S, run)
        Residual log-losses per draw (log L - mu).
    groups : Groups
    sigma2 : numpy.ndarray, shape (S, J)
        Noise variance per draw and seed group.
    tau_s2 : numpy.ndarray, shape (S, J), or None
        Seed-effect variance (None: no seed effect).
    tau_c2 : numpy.ndarray, shape (S, K), or None
        Cell-effect variance (None: no cell effect).
    rng : numpy.random.Generator

    Returns
    -------
    cell : numpy.ndarray, shape (S, K), or None
    seed : numpy.ndarray, shape (S, J), or None
        Effects on log-loss.
    """
    S = r.shape[0]
    n = groups.n
    sum_r = np.zeros((S, groups.J))
    np.add.at(sum_r.T, groups.seed_idx, r.T)
    mean = sum_r / n
    v = sigma2 if tau_s2 is None else sigma2 + n * tau_s2
    cell = None
    if tau_c2 is not None:
        w = n / v
        W, U = _cell_sums(w, w * mean, groups)
        a = tau_c2 * W
        cell = (tau_c2 * U / (1.0 + a)
                + np.sqrt(tau_c2 / (1.0 + a)) * rng.standard_normal((S, groups.K)))
    seed = None
    if tau_s2 is not None:
        shift = mean - (cell[:, groups.cell_of_group] if cell is not None else 0.0)
        seed = (n * tau_s2 * shift / v
                + np.sqrt(tau_s2 * sigma2 / v) * rng.standard_normal((S, groups.J)))
    return cell, seed
