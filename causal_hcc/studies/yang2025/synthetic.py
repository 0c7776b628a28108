"""Synthetic registry cohorts with known truth, for scale tests, benchmarks and simulation.

:func:`synthetic_registry` draws a registry-sized cohort in the canonical columns of
``data_dictionary.md``: confounded treatment (patients with ECOG PS 1 or vascular
invasion are treated less often, those with intrahepatic cCR more often, as in the
paper's cohort) and proportional-hazards survival with a known conditional log hazard
ratio of local therapy. It is simulated, not real or reconstructed data; the frame says
so in ``attrs``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: log odds of local therapy: intercept, then per confounder (ECOG 1, cCR, vascular invasion)
TREATMENT_MODEL = {"intercept": -0.3, "ecog": -0.8, "intrahepatic_ccr": 1.5,
                   "vascular_invasion": -1.0}
#: log hazard ratios of death per confounder (conditional on the others and on treatment)
OUTCOME_MODEL = {"ecog": 0.5, "intrahepatic_ccr": -0.8, "vascular_invasion": 0.7}
#: prevalence of each confounder
PREVALENCE = {"ecog": 0.4, "intrahepatic_ccr": 0.35, "vascular_invasion": 0.3}


def synthetic_registry(n: int, seed: int, *, true_log_hr: float = -0.3,
                       baseline_median_months: float = 14.0, weibull_shape: float = 1.2,
                       accrual_months: float = 48.0, min_follow_up_months: float = 12.0,
                       dropout_per_month: float = 0.005) -> pd.DataFrame:
    """Draw a synthetic registry cohort with confounded treatment and a known true HR.

    Parameters
    ----------
    n : int
        Patients (rows).
    seed : int
        Seed of the ``numpy.random.Generator`` every draw comes from: the same
        arguments give the same frame, bit for bit.
    true_log_hr : float
        Conditional log hazard ratio of local therapy (yes vs no), given ECOG PS,
        intrahepatic cCR and vascular invasion.
    baseline_median_months : float
        Median OS (months) of untreated patients with every confounder 0.
    weibull_shape : float
        Shape of the Weibull baseline hazard (1 = exponential).
    accrual_months, min_follow_up_months : float
        Patients enter uniformly over ``accrual_months``; follow-up ends
        ``min_follow_up_months`` after the last entry (administrative censoring).
    dropout_per_month : float
        Rate of an independent exponential loss to follow-up (censoring).

    Returns
    -------
    pandas.DataFrame
        Canonical columns: ``patient_id`` ("S000001", ...), ``local_therapy``,
        ``os_months`` (rounded to 0.1 month, at least 0.1), ``death``, ``ecog``,
        ``intrahepatic_ccr``, ``vascular_invasion`` (all 0/1), and the optional ``sex``,
        ``age`` (years), ``child_pugh``, ``afp_positive``, which are independent of
        treatment and survival. ``attrs`` holds ``true_log_hr``, the treatment and
        outcome models and a description. Passes
        :func:`causal_hcc.data.validate_frame`.

    Notes
    -----
    Treatment: logistic in the three confounders (:data:`TREATMENT_MODEL`), so the crude
    HR is confounded. Survival: Weibull proportional hazards,
    ``h(t) = h0(t) exp(true_log_hr * local_therapy + sum OUTCOME_MODEL * confounder)``,
    drawn by inversion. ``true_log_hr`` is the *conditional* log HR: a Cox model with
    the three confounders estimates it without bias. The marginal HR targeted by IPTW
    (ATE) is smaller in absolute value (non-collapsibility of the HR), so compare IPTW
    with ``true_log_hr`` only loosely.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of patients, not {n!r}")
    rng = np.random.default_rng(seed)
    conf = {name: (rng.random(n) < p).astype(np.int64) for name, p in PREVALENCE.items()}
    logit = TREATMENT_MODEL["intercept"] + sum(TREATMENT_MODEL[k] * conf[k] for k in conf)
    treated = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    risk = true_log_hr * treated + sum(OUTCOME_MODEL[k] * conf[k] for k in conf)
    # Weibull S0(t) = exp(-log 2 (t / median)^shape): invert S(t | x) = U.
    scale = np.log(2) ** (-1 / weibull_shape) * baseline_median_months
    death_time = scale * (-np.log(rng.random(n)) / np.exp(risk)) ** (1 / weibull_shape)
    entry = rng.uniform(0, accrual_months, n)
    admin = accrual_months + min_follow_up_months - entry
    dropout = rng.exponential(1 / dropout_per_month, n) if dropout_per_month > 0 \
        else np.full(n, np.inf)
    censor = np.minimum(admin, dropout)
    death = (death_time <= censor).astype(np.int64)
    os_months = np.maximum(np.round(np.minimum(death_time, censor), 1), 0.1)
    frame = pd.DataFrame({
        "patient_id": [f"S{i:06d}" for i in range(1, n + 1)],
        "local_therapy": treated, "os_months": os_months, "death": death,
        "ecog": conf["ecog"], "intrahepatic_ccr": conf["intrahepatic_ccr"],
        "vascular_invasion": conf["vascular_invasion"],
        "sex": np.where(rng.random(n) < 0.85, "male", "female"),
        "age": np.clip(np.round(rng.normal(58, 10, n)), 20, 90),
        "child_pugh": np.where(rng.random(n) < 0.85, "A", "B"),
        "afp_positive": (rng.random(n) < 0.55).astype(np.int64),
    })
    frame.attrs.update({
        "true_log_hr": float(true_log_hr), "treatment_model": dict(TREATMENT_MODEL),
        "outcome_model": dict(OUTCOME_MODEL),
        "description": f"synthetic registry (simulated, not patient data): n = {n}, seed "
                       f"{seed}, true conditional log HR of local therapy {true_log_hr:g}"})
    return frame
