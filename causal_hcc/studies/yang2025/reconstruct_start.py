"""Starting state of the reconstruction search: the baseline covariates with their exact
per-cell counts and moments (Tables 1-2, audit B3), the hard per-patient consistency rules,
and the seed survival times.

Used by :mod:`causal_hcc.studies.yang2025.reconstruct` (and the search's covariate moves,
which keep every count, mean and SD exact). Every output is reconstructed pseudo-data.
"""

from __future__ import annotations

import math

import numpy as np

from causal_hcc.studies.yang2025.targets import CELLS


#: Binary/categorical state arrays of the search, with the output value coded 1 (or 1, 2).
_BINARY = ("female", "hepatitis", "cirrhosis", "ecog", "child_pugh_b", "afp_positive",
           "vascular_invasion", "intrahepatic_ccr", "extrahepatic_multiple", "combination")
_CONTINUOUS = ("age", "intrahepatic_max_diameter_cm", "extrahepatic_max_diameter_cm")
_BINARY_SOURCE = {"female": ("sex", "female"), "hepatitis": ("hepatitis", 1),
                  "cirrhosis": ("cirrhosis", 1), "ecog": ("ecog", 1),
                  "child_pugh_b": ("child_pugh", "B"), "afp_positive": ("afp_positive", 1),
                  "vascular_invasion": ("vascular_invasion", 1),
                  "intrahepatic_ccr": ("intrahepatic_ccr", 1),
                  "extrahepatic_multiple": ("extrahepatic_lesions", "multiple"),
                  "combination": ("systemic_regimen", "combination")}
LESION_CODES = ("none", "single", "multiple")


def _affine_to_moments(free, pinned, mean, sd):
    """a + b * free such that (a + b * free) together with ``pinned`` has this mean and SD."""
    n = len(free) + len(pinned)
    pinned = np.asarray(pinned, dtype=float)
    f_mean, f_var = free.mean(), free.var()
    rest_sum = n * mean - pinned.sum()
    m_free = rest_sum / len(free)
    # Total sum of squares about the overall mean, split into free and pinned parts.
    ss_target = (n - 1) * sd ** 2 - ((pinned - mean) ** 2).sum() - len(free) * (m_free - mean) ** 2
    b = math.sqrt(max(ss_target, 1e-12) / (len(free) * f_var))
    return m_free + b * (free - f_mean)


def _values_with_moments(rng, n, mean, sd, lognormal, lo, hi, decimals, pinned=()):
    """n values (``pinned`` included) with this sample mean and SD (n - 1), within [lo, hi].

    Normal draws are mapped affinely; lognormal draws (diameters, skewed) are mapped in
    the log scale so that the values stay positive. Values hitting a bound are held there
    and the others re-solved, so the moments are exact before rounding.
    """
    z = np.clip(rng.standard_normal(n - len(pinned)), -2.5, 2.5)
    if lognormal:
        def moments_gap(s):
            full = np.concatenate((np.exp(s * z), pinned))
            return full.std(ddof=1) / full.mean() - sd / mean
        lo_s, hi_s = 1e-3, 3.0
        for _ in range(60):  # bisection on the log-scale SD: the CV grows with it
            mid = 0.5 * (lo_s + hi_s)
            lo_s, hi_s = (mid, hi_s) if moments_gap(mid) < 0 else (lo_s, mid)
        base = np.exp(0.5 * (lo_s + hi_s) * z)
        x = base * (n * mean - np.sum(pinned)) / base.sum()
    else:
        x = _affine_to_moments(z, pinned, mean, sd)
    held = np.zeros(len(x), dtype=bool)
    for _ in range(50):
        out = (x < lo) | (x > hi)
        if not out.any():
            break
        held |= out
        x = np.clip(x, lo, hi)
        free = ~held
        x[free] = _affine_to_moments(x[free], np.concatenate((x[held], pinned)), mean, sd)
    values = np.concatenate((_round_keeping_sum(x, decimals), pinned))
    return values[rng.permutation(n)]


def _round_keeping_sum(x, decimals):
    """Round to ``decimals`` so that the total is the rounded total (largest remainders).

    Plain rounding of 15-25 values can move a cell mean by a tenth; this keeps it.
    """
    scale = 10.0 ** decimals
    y = x * scale
    base = np.floor(y)
    extra = int(round(y.sum() - base.sum()))
    base[np.argsort(-(y - base), kind="stable")[:extra]] += 1.0
    return np.round(base / scale, decimals)


def initial_covariates(rng, cells, cell_index, params):
    """Per-cell exact counts, assigned at random subject to the hard consistency rules.

    Rules: no viable intrahepatic lesion implies cCR and no vascular invasion (audit B9:
    such patients are within Milan); Child-Pugh B implies cirrhosis (if the parameter says so).
    """
    n = len(cell_index)
    cov = {name: np.zeros(n, dtype=np.int64) for name in _BINARY}
    cov["lesions"] = np.zeros(n, dtype=np.int64)
    for name in _CONTINUOUS:
        cov[name] = np.zeros(n)
    counts, moments = cells["counts"], cells["moments"]
    for c, (cell, _local, _oligo) in enumerate(CELLS):
        idx = np.flatnonzero(cell_index == c)
        m = len(idx)
        lesion_counts = counts["intrahepatic_lesions"][cell]
        lesions = np.repeat([0, 1, 2], [lesion_counts[k] for k in LESION_CODES])
        cov["lesions"][idx] = lesions[rng.permutation(m)]
        none = cov["lesions"][idx] == 0
        for name in _BINARY:
            column, level = _BINARY_SOURCE[name]
            k = counts[column][cell][level]
            forced = np.zeros(m, dtype=bool)   # must be 1
            banned = np.zeros(m, dtype=bool)   # must be 0
            if name == "intrahepatic_ccr":
                forced = none
            elif name == "vascular_invasion":
                banned = none
            elif name == "cirrhosis" and params.child_pugh_b_requires_cirrhosis:
                forced = cov["child_pugh_b"][idx] == 1
            free = np.flatnonzero(~forced & ~banned)
            chosen = np.concatenate((np.flatnonzero(forced),
                                     rng.permutation(free)[:k - int(forced.sum())]))
            values = np.zeros(m, dtype=np.int64)
            values[chosen] = 1
            cov[name][idx] = values
        for name in _CONTINUOUS:
            mean, sd = moments[name][cell]
            if name == "age":
                pinned = ([31.0] if cell == params.age_min_cell else []) + \
                         ([84.0] if cell == params.age_max_cell else [])
                vals = _values_with_moments(rng, m, mean, sd, False, 31.0, 84.0, 0, pinned)
            else:
                lo = (params.intrahepatic_diameter_min_cm if name.startswith("intra")
                      else params.extrahepatic_diameter_min_cm)
                vals = _values_with_moments(rng, m, mean, sd, True, lo, 25.0, 1)
            cov[name][idx] = vals
    return cov


def milan_within(cov, params):
    """Milan status derived from lesions, largest diameter and vascular invasion."""
    single_ok = (cov["lesions"] == 1) & (cov["intrahepatic_max_diameter_cm"] <= 5.0)
    multi_ok = np.zeros_like(single_ok)
    if params.milan_multiple_max_cm is not None:
        multi_ok = (cov["lesions"] == 2) & (
            cov["intrahepatic_max_diameter_cm"] <= params.milan_multiple_max_cm)
    return ((cov["vascular_invasion"] == 0)
            & ((cov["lesions"] == 0) | single_ok | multi_ok)).astype(np.int64)


def valid_patient(cov, i, params):
    """The hard per-patient rules (see :func:`initial_covariates`)."""
    if cov["lesions"][i] == 0 and (cov["intrahepatic_ccr"][i] == 0
                                   or cov["vascular_invasion"][i] == 1):
        return False
    if params.child_pugh_b_requires_cirrhosis and cov["child_pugh_b"][i] == 1:
        return cov["cirrhosis"][i] == 1
    return True


#: Rough per-cell survival curves (months, S) that seed the search: oligo cells from
#: Section 2.3; non-oligo cells from the n-weighted complements (targets.json
#: consistency_checks_derived), the negative local tail replaced by a small positive one.
_SEED_CURVES = (((0, 12, 24, 36, 60, 84), (1.0, 0.909, 0.818, 0.667, 0.25, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.858, 0.351, 0.12, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.786, 0.309, 0.111, 0.0)),
                ((0, 12, 24, 36, 60), (1.0, 0.582, 0.218, 0.07, 0.0)))


def initial_survival(rng, cell_index, n_deaths):
    """Death times drawn from the seed curves, heavy early censoring, exactly ``n_deaths``."""
    n = len(cell_index)
    death = np.empty(n)
    for c, (months, surv) in enumerate(_SEED_CURVES):
        idx = np.flatnonzero(cell_index == c)
        u = rng.random(len(idx))
        death[idx] = np.interp(-u, -np.asarray(surv), np.asarray(months, dtype=float))
    censor = 3.0 + rng.exponential(14.0, n)
    time = np.clip(np.minimum(death, censor), 2.5, 72.0)
    event = (death <= censor).astype(np.int64)
    excess = int(event.sum()) - n_deaths
    if excess > 0:     # flip random deaths to censored (or back), keeping the times
        event[rng.choice(np.flatnonzero(event == 1), excess, replace=False)] = 0
    elif excess < 0:
        event[rng.choice(np.flatnonzero(event == 0), -excess, replace=False)] = 1
    return np.round(time * 10).astype(np.int64), event
