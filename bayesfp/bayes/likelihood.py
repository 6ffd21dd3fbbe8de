"""The noise model of a run's measured log-loss, written once for fitting, prediction and
decisions.

A run's measured log-loss is the law's log-loss plus noise,

.. math:: \\log L_i = \\log \\hat L_i + \\sigma z_i, \\qquad z_i \\sim \\mathrm{Normal}(0, 1)

or, for robust fits, :math:`z_i \\sim t_\\nu` with :data:`ROBUST_NU` degrees of freedom.
:func:`observe` puts it into a PyMC model, :func:`standard_noise` draws ``z`` and
:func:`log_density` evaluates it on NumPy arrays.
"""

import numpy as np

# Degrees of freedom of the Student-t noise of robust fits.
ROBUST_NU = 4.0


def observe(name: str, mu, sigma, observed, robust: bool = False, dims=None):
    """The observed log-loss of a PyMC model (call inside a ``pm.Model`` context).

    Parameters
    ----------
    name : str
        Name of the observed variable.
    mu, sigma : pytensor variable or array, shape (run,)
        Law log-loss and noise sd (log nats/token).
    observed : pytensor variable or array, shape (run,)
        Measured log-losses.
    robust : bool
        Student-t with :data:`ROBUST_NU` degrees of freedom instead of Normal.
    dims : str, optional
        Dim name of the runs.
    """
    import pymc as pm

    if robust:
        return pm.StudentT(name, nu=ROBUST_NU, mu=mu, sigma=sigma, observed=observed, dims=dims)
    return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, dims=dims)


def standard_noise(rng: np.random.Generator, shape, robust: bool = False) -> np.ndarray:
    """Standardised noise ``z`` of the given shape: Normal(0, 1), or t with ROBUST_NU d.o.f."""
    return rng.standard_t(ROBUST_NU, shape) if robust else rng.standard_normal(shape)


def log_density(y, mu, sigma, robust: bool = False) -> np.ndarray:
    """Log density of outcomes ``y`` under each draw, up to an additive constant.

    Parameters
    ----------
    y : array, shape (J,)
        Measured log-losses.
    mu, sigma : array, shape (S,)
        Law log-loss and noise sd per posterior draw.
    robust : bool
        Student-t with :data:`ROBUST_NU` degrees of freedom instead of Normal.

    Returns
    -------
    numpy.ndarray, shape (J, S)
    """
    y = np.asarray(y, dtype=float)[:, None]
    sigma = np.asarray(sigma, dtype=float)
    r = (y - np.asarray(mu, dtype=float)[None, :]) / sigma[None, :]
    if robust:
        return -np.log(sigma)[None, :] - 0.5 * (ROBUST_NU + 1.0) * np.log1p(r * r / ROBUST_NU)
    return -np.log(sigma)[None, :] - 0.5 * r * r
