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

A cell-level Gaussian term shared across cells, such as the Brownian discrepancy over the
levels of log N and log D, adds :math:`B\\,\\mathrm{diag}(s)\\,z` to the cell shifts
(:math:`B`: a fixed design of shape (cell, q), :math:`s`: the scale of each column,
:math:`z \\sim N(0, I_q)`). With :math:`\\delta_k = 1 + \\tau_{c,k}^2 W_k`,
:math:`\\tilde u_k = U_k / \\sqrt{W_k}`, :math:`V = \\mathrm{diag}(\\sqrt W)\\, B\\,
\\mathrm{diag}(s)` and :math:`C = I_q + V^\\top \\mathrm{diag}(\\delta)^{-1} V`, the cell part
of the density becomes

.. math:: \\sum_k [\\log \\delta_k + \\tilde u_k^2 (1/\\delta_k - 1)] + \\log\\det C
          - b^\\top C^{-1} b, \\qquad b = V^\\top (\\tilde u / \\delta)

(Woodbury over the q columns; with q = 0 it is the expression above). The column effects are
drawn back first (:func:`draw_design_effects`), then the cells and seeds given them.
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


def log_density_pt(r, groups: Groups, sigma2, tau_s2, tau_c2, design=None, design_sd=None):
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
    design : numpy.ndarray, shape (K, q), optional
        Cell design of a shared Gaussian term (module docstring); None or q = 0: none.
    design_sd : pytensor vector, shape (q,)
        Scale of each design column.
    """
    import pytensor.tensor as pt

    n = groups.n
    sum_r = pt.zeros(groups.J)[groups.seed_idx].inc(r)
    sum_r2 = pt.zeros(groups.J)[groups.seed_idx].inc(r * r)
    mean = sum_r / n
    within = sum_r2 - n * mean * mean
    v = sigma2 if tau_s2 is None else sigma2 + n * tau_s2
    out = pt.sum((n - 1.0) * pt.log(sigma2) + pt.log(v) + within / sigma2 + n * mean * mean / v)
    shared = design is not None and np.shape(design)[1] > 0
    if tau_c2 is not None or shared:
        w = n / v
        W = pt.zeros(groups.K)[groups.cell_of_group].inc(w)
        U = pt.zeros(groups.K)[groups.cell_of_group].inc(w * mean)
        tc2 = 0.0 if tau_c2 is None else tau_c2
        a = tc2 * W
        out = out + pt.sum(pt.log1p(a) - tc2 * U * U / (1.0 + a))
        if shared:
            delta = 1.0 + a
            sw = pt.sqrt(W)
            V = sw[:, None] * np.asarray(design, dtype=float) * design_sd[None, :]
            C = pt.eye(np.shape(design)[1]) + pt.dot(V.T, V / delta[:, None])
            L = pt.linalg.cholesky(C)
            b = pt.dot(V.T, U / sw / delta)
            y = pt.linalg.solve_triangular(L, b, lower=True)
            out = out + 2.0 * pt.sum(pt.log(pt.diagonal(L))) - pt.sum(y * y)
    return -0.5 * (out + len(groups.seed_idx) * LOG_2PI)


def draw_design_effects(r, groups: Groups, sigma2, tau_s2, tau_c2, design, design_sd, rng):
    """Exact draws of the standard normal column effects z of a shared cell-level term
    (``design`` of :func:`log_density_pt`) given residuals, with cells and seeds integrated out.

    Parameters
    ----------
    r : numpy.ndarray, shape (S, run)
        Residual log-losses per draw, the term left out.
    groups : Groups
    sigma2, tau_s2, tau_c2 : numpy.ndarray or None
        As in :func:`draw_effects`.
    design : numpy.ndarray, shape (K, q)
    design_sd : numpy.ndarray, shape (S, q)
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray, shape (S, q)
        z; the term's cell shifts are ``(design_sd * z) @ design.T``.
    """
    S, q = r.shape[0], np.shape(design)[1]
    mean, v = _group_stats(r, groups, sigma2, tau_s2)
    w = groups.n / v
    W, U = _cell_sums(w, w * mean, groups)
    delta = 1.0 + (0.0 if tau_c2 is None else tau_c2 * W)
    # each cell's weighted mean U/W is z's term observed with variance 1/W + tau_c^2
    G = np.asarray(design, dtype=float)[None, :, :] * design_sd[:, None, :]  # (S, K, q)
    prec = np.eye(q)[None] + np.einsum("skq,sk,skp->sqp", G, W / delta, G)
    rhs = np.einsum("skq,sk->sq", G, U / delta)
    L = np.linalg.cholesky(prec)
    m = np.linalg.solve(prec, rhs[..., None])[..., 0]
    # m + L^-T e has covariance (L L^T)^-1 = prec^-1
    e = rng.standard_normal((S, q))
    return m + np.linalg.solve(np.swapaxes(L, 1, 2), e[..., None])[..., 0]


def _group_stats(r, groups: Groups, sigma2, tau_s2):
    """Per draw and seed group: the mean residual and the variance of that mean times the
    group's size, sigma^2 + n tau_s^2 (shapes (S, J))."""
    sum_r = np.zeros((r.shape[0], groups.J))
    np.add.at(sum_r.T, groups.seed_idx, r.T)
    mean = sum_r / groups.n
    return mean, (sigma2 if tau_s2 is None else sigma2 + groups.n * tau_s2)


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
    mean, v = _group_stats(r, groups, sigma2, tau_s2)
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
