"""Fitting laws to run tables: point fits (Huber + L-BFGS + bootstrap)."""

from bayesfp.fit.point import PointFit, fit_point

__all__ = ["PointFit", "fit_point"]
