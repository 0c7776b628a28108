"""The robust variance of the batched Cox fit (:func:`causal_hcc.survival.cox_many.fit_cox_many`
with ``robust=True``): score residuals of many weight vectors at once, and cluster codes.

The sandwich itself (dfbeta = residuals x model variance x weight, summed within
clusters) is assembled in :mod:`causal_hcc.survival.cox_many`, whose likelihood terms
these residuals reuse; agreement with ``fit_cox(robust=True)`` and R's ``coxph(...,
robust = TRUE)`` is in tests/test_cox_many.py.
"""

from __future__ import annotations

import numpy as np


def score_residuals_many(risk, row_h, cum, part, cell, h, frac, mean, k, n_groups, rs):
    """Score residuals (k, n, p) in sorted order, as risk_sets.score_residuals (R's
    ``coxscore2``) for each vector: -r_i (x_i H_i - HM_i) + [event] (x_i - mean of its
    group's slot means). Rows of weight 0 give NaN or junk here; callers weight them 0."""
    p = rs.x.shape[1]
    out = np.empty((k, rs.x.shape[0], p))
    n_slots = np.bincount(cell, minlength=k * n_groups).reshape(k, n_groups)
    for j in range(p):
        hm = h * mean[:, j]
        full = np.bincount(cell, weights=hm, minlength=k * n_groups).reshape(k, n_groups)
        part_m = np.bincount(cell, weights=frac * hm,
                             minlength=k * n_groups).reshape(k, n_groups)
        cum_m = np.zeros((k, n_groups + 1))
        np.cumsum(full, axis=1, out=cum_m[:, 1:])
        row_hm = cum_m[:, rs.row_hi] - cum_m[:, rs.row_lo]
        row_hm[:, rs.dead] -= part_m[:, rs.dead_group]
        out[:, :, j] = -risk * (rs.x[:, j] * row_h - row_hm)
        with np.errstate(invalid="ignore", divide="ignore"):
            mbar = np.bincount(cell, weights=mean[:, j],
                               minlength=k * n_groups).reshape(k, n_groups) / n_slots
        out[:, rs.dead, j] += rs.x[rs.dead, j] - mbar[:, rs.dead_group]
    return out


def cluster_codes(cluster, n_vec: int, n: int) -> np.ndarray:
    """Cluster codes (B, n) >= 0; None: every row its own cluster (robust, on row)."""
    if cluster is None:
        return np.broadcast_to(np.arange(n), (n_vec, n))
    c = np.asarray(cluster)
    c = np.broadcast_to(c, (n_vec, n)) if c.shape == (n,) else c
    if c.shape != (n_vec, n) or not np.issubdtype(c.dtype, np.integer) or (c < 0).any():
        raise ValueError(f"cluster must be non-negative integer codes of shape ({n},) or "
                         f"({n_vec}, {n}), not {np.shape(cluster)}")
    return c
