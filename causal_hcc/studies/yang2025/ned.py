"""How large the NED-duration / OS correlation is when NED has nothing to do with survival.

The paper reports r = 0.851 (P < 0.001) between cumulative time in NED (no evidence of
disease) and overall survival "in patients who received local therapy" (audit A4). Time
in NED is part of follow-up: it can only accrue while the patient is alive, so it is
bounded by the follow-up available after local therapy, and long survivors have more room
for it. A high r is therefore expected even if NED did nothing for survival.

:func:`ned_null_correlation` simulates NED durations that are unrelated to survival except
through that bound and reports the null distribution of r next to the observed r and the
published 0.851. Two nulls are offered (both by default):

- ``"permuted_fraction"``: each NED patient's fraction of available follow-up spent in
  NED, f = ned_cumulative_months / available, is shuffled across the NED patients (so the
  observed distribution of fractions is kept, but which patient gets which is random);
- ``"uniform"``: the fraction is drawn from U(0, 1).

Simulated NED = fraction x available follow-up, where available follow-up is
``os_months - months_to_local_therapy`` for treated patients (NED counted after local
therapy) and ``os_months`` for an untreated NED patient.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import rankdata
from causal_hcc.defaults import SEED
from causal_hcc.data.cohort import Cohort
from causal_hcc.errors import CohortError

PUBLISHED_R = 0.851
NULLS = ("permuted_fraction", "uniform")


@dataclass(frozen=True)
class NedNullRow:
    """Observed r and its null distribution for one population and one null."""

    population: str
    null: str
    method: str
    n: int
    n_ned: int
    r_observed: float
    r_null_median: float
    r_null_lower: float
    r_null_upper: float
    p_null_ge_observed: float
    r_published: float
    published_within_null_interval: bool
    observed_within_null_interval: bool
    estimable: bool = True
    reason: str = ""


@dataclass(frozen=True)
class NedNullCorrelation:
    """NED-duration / OS correlation under a null of no effect of NED on survival.

    ``rows``: per population ("NED patients", "all treated (NED = 0 if never)") and null:
    observed r, null median and central 95% interval of r, the Monte-Carlo proportion of
    null r >= observed ((1 + count) / (1 + n_sim)), and the published 0.851.
    """

    rows: tuple[NedNullRow, ...]
    n_sim: int
    seed: int
    method: str
    cohort_label: str
    notes: tuple[str, ...]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([dataclasses.asdict(r) for r in self.rows])

    def to_dict(self) -> dict:
        """The ``ned_null`` entry of ``sensitivity.json``."""
        return {"rows": self.to_frame().to_dict("records"), "n_sim": self.n_sim,
                "seed": self.seed, "method": self.method, "notes": self.notes}

    def sentences(self) -> list[str]:
        """The sensitivity summary's sentences: observed vs null r per population."""
        out = []
        for row in self.rows:
            if row.estimable and row.null == "permuted_fraction":
                out.append(f"NED time vs OS ({row.population}): observed r "
                           f"{row.r_observed:.2f}; with no NED effect r is "
                           f"{row.r_null_median:.2f} (95% {row.r_null_lower:.2f}-"
                           f"{row.r_null_upper:.2f}) by construction; the published r "
                           f"{row.r_published} is "
                           f"{'inside' if row.published_within_null_interval else 'outside'} "
                           "that interval.")
        return out

    def summary(self) -> str:
        lines = [self.cohort_label,
                 f"{self.method.capitalize()} correlation of cumulative NED time with OS under "
                 f"a null of no NED effect ({self.n_sim} simulations, seed {self.seed}):"]
        for r in self.rows:
            lines.append(
                f"  {r.population}, null '{r.null}' (n={r.n}, {r.n_ned} NED): observed r "
                f"{r.r_observed:.3f}; null median {r.r_null_median:.3f} (95% "
                f"{r.r_null_lower:.3f} to {r.r_null_upper:.3f}); P(null r >= observed) "
                f"{r.p_null_ge_observed:.3g}; published {r.r_published} "
                f"{'inside' if r.published_within_null_interval else 'outside'} the null "
                "interval.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _correlations(sims: np.ndarray, os_m: np.ndarray, method: str) -> np.ndarray:
    """Correlation of each row of ``sims`` with ``os_m`` (vectorised)."""
    if method == "spearman":
        sims = rankdata(sims, axis=1)
        os_m = rankdata(os_m)
    x = sims - sims.mean(axis=1, keepdims=True)
    y = os_m - os_m.mean()
    denom = np.sqrt((x ** 2).sum(axis=1) * (y ** 2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x @ y) / denom


def _not_estimable(ned_time: np.ndarray, os_m: np.ndarray) -> str:
    if ned_time.size < 3:
        return f"{ned_time.size} patients; a correlation needs at least 3"
    if np.ptp(ned_time) == 0 or np.ptp(os_m) == 0:
        return "NED time or OS is constant in this population"
    return ""


def _ned_inputs(cohort: Cohort):
    df = cohort.data
    needed = [c for c in ("ned_achieved", "ned_cumulative_months") if c not in df]
    if needed:
        raise CohortError([f"Column '{c}': not in the data. The NED correlation needs "
                           "ned_achieved (1/0) and ned_cumulative_months (months in NED)."
                           for c in needed])
    ned = (df["ned_achieved"] == 1).to_numpy()
    dur = df["ned_cumulative_months"].to_numpy(dtype=float)
    unknown = ned & np.isnan(dur)
    treated = (df["local_therapy"] == 1).to_numpy()
    ttl = (df["months_to_local_therapy"].to_numpy(dtype=float)
           if "months_to_local_therapy" in df else np.full(len(df), np.nan))
    if np.any(treated & ned & np.isnan(ttl)):
        raise CohortError(["Column 'months_to_local_therapy': missing for treated NED "
                           "patients; the available follow-up after local therapy (the bound "
                           "on NED time) cannot be computed. Fill it in."])
    available = df["os_months"].to_numpy(dtype=float) - np.where(treated, ttl, 0.0)
    return df, ned, np.where(ned, dur, 0.0), unknown, treated, np.clip(available, 0, None)


def ned_null_correlation(cohort: Cohort, n_sim: int = 2000, seed: int = SEED,
                         method: str = "pearson", nulls=NULLS,
                         interval: float = 0.95) -> NedNullCorrelation:
    """Null distribution of the NED-duration / OS correlation, beside the observed r.

    Parameters
    ----------
    cohort : Cohort
        Needs ned_achieved, ned_cumulative_months and (for treated NED patients)
        months_to_local_therapy.
    n_sim : int
        Simulated data sets per null.
    seed : int
        Seed of the ``numpy.random.Generator``: same seed, same output, bit for bit.
    method : {"pearson", "spearman"}
        The paper does not say which it used (audit A4).
    nulls : sequence of {"permuted_fraction", "uniform"}
        Which nulls to simulate (see the module docstring); both by default.
    interval : float
        Central coverage of the reported null interval.

    Returns
    -------
    NedNullCorrelation
        Rows for "NED patients" (ned_achieved = 1, any arm) and "all treated" (local
        therapy = 1, NED time 0 for those never in NED), per null.

    Notes
    -----
    NED patients with unknown ned_cumulative_months are left out and counted in the notes.
    Fractions above 1 (NED time longer than the follow-up after local therapy, e.g. NED
    reached on systemic therapy first) are capped at 1 for the permuted null and counted.
    Observed r: ``cor(ned, os, method = ...)`` in R.
    """
    if method not in ("pearson", "spearman"):
        raise ValueError("method must be 'pearson' or 'spearman'.")
    bad = [n for n in nulls if n not in NULLS]
    if bad or not nulls:
        raise ValueError(f"nulls must be a non-empty subset of {NULLS}; got {nulls!r}.")
    df, ned, dur, unknown, treated, available = _ned_inputs(cohort)
    os_m = df["os_months"].to_numpy(dtype=float)
    keep = ~unknown
    notes = []
    if unknown.any():
        notes.append(f"{int(unknown.sum())} NED patients with unknown ned_cumulative_months "
                     "left out.")
    ned_k = ned & keep
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(available > 0, dur / available, 0.0)
    over = ned_k & (frac > 1)
    if over.any():
        notes.append(f"{int(over.sum())} NED patients have more NED time than follow-up after "
                     "local therapy; their fraction is capped at 1 in the permuted null.")
    frac = np.clip(frac, 0, 1)
    # One child stream per null, so a null's draws do not depend on which others are run.
    streams = dict(zip(NULLS, np.random.SeedSequence(seed).spawn(len(NULLS))))
    populations = (("NED patients", ned_k), ("all treated (NED = 0 if never)", treated & keep))
    alpha = (1 - interval) / 2
    rows = []
    for null in nulls:
        rng = np.random.default_rng(streams[null])
        idx = np.flatnonzero(ned_k)
        if null == "permuted_fraction":
            draws = rng.permuted(np.tile(frac[idx], (n_sim, 1)), axis=1)
        else:
            draws = rng.uniform(size=(n_sim, idx.size))
        sim_all = np.zeros((n_sim, len(df)))
        sim_all[:, idx] = draws * available[idx]
        for name, mask in populations:
            reason = _not_estimable(dur[mask], os_m[mask])
            if reason:
                nan = float("nan")
                rows.append(NedNullRow(name, null, method, int(mask.sum()),
                                       int((mask & ned).sum()), nan, nan, nan, nan, nan,
                                       PUBLISHED_R, False, False, False, reason))
                continue
            observed = _correlations(dur[mask][None, :], os_m[mask], method)[0]
            null_r = _correlations(sim_all[:, mask], os_m[mask], method)
            lo, med, hi = np.nanquantile(null_r, [alpha, 0.5, 1 - alpha])
            p = (1 + np.sum(null_r >= observed)) / (1 + n_sim)
            rows.append(NedNullRow(name, null, method, int(mask.sum()), int((mask & ned).sum()),
                                   float(observed), float(med), float(lo), float(hi), float(p),
                                   PUBLISHED_R, bool(lo <= PUBLISHED_R <= hi),
                                   bool(lo <= observed <= hi)))
    notes.append("Available follow-up = os_months - months_to_local_therapy (treated) or "
                 "os_months (untreated NED patient); simulated NED = fraction x available.")
    notes.append("NED time is part of OS by construction (audit A4): a high r under this null "
                 "is mechanical, not evidence that NED prolongs survival.")
    return NedNullCorrelation(tuple(rows), n_sim, seed, method, cohort.label, tuple(notes))
