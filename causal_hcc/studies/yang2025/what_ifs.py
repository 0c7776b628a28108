"""What-ifs of the Yang et al. 2025 study on its reconstructed cohort, and its grid sets.

- :func:`covariate_sets`: the specification grid's covariate sets for this study (the
  default three confounders; plus Child-Pugh, AFP or oligometastatic status; intrahepatic
  control coded by Milan, lesion count or largest diameter instead of cCR
  (:func:`~causal_hcc.studies.yang2025.dictionary.confounders_for`); all Table 1
  variables).
- :func:`vascular_invasion_sensitivity`: audit B6, how the default PSM and IPTW ATE HRs
  move when vascular invasion in the treated arm is altered.
- :func:`extra_analyses`: the study's extra sensitivity stages (this what-if and the NED
  null correlation) for :func:`causal_hcc.sensitivity.run_sensitivity`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED
from causal_hcc.effects.spec import Specification
from causal_hcc.sensitivity._memo import shared_rows
from causal_hcc.sensitivity.grid import evaluate_set
from causal_hcc.studies.yang2025.dictionary import (DEFAULT_CONFOUNDERS, ROLES,
                                                    confounders_for)
from causal_hcc.studies.yang2025.ned import ned_null_correlation


def covariate_sets(cohort: Cohort | None = None) -> dict[str, tuple[str, ...]]:
    """The PS covariate sets of the study's specification grid, by name (8 sets).

    ``cohort``: when given, "all Table 1 variables" lists those present in it. A set naming
    a column the cohort lacks gives rows that are not estimable (with the reason).
    """
    base = tuple(DEFAULT_CONFOUNDERS)
    table1 = tuple(dict.fromkeys(base + tuple(
        v for v in ROLES.descriptive if cohort is None or v in cohort.data)))
    return {
        "default": base,
        "default + child_pugh": base + ("child_pugh",),
        "default + afp_positive": base + ("afp_positive",),
        "default + oligometastatic": base + ("oligometastatic",),
        "intrahepatic control: Milan": confounders_for("milan"),
        "intrahepatic control: lesion count": confounders_for("lesions"),
        "intrahepatic control: largest diameter": confounders_for("diameter"),
        "all Table 1 variables": table1,
    }


@dataclass(frozen=True)
class VascularInvasionSensitivity:
    """Default PSM and IPTW ATE HRs when vascular invasion in the treated arm is altered.

    ``rows``: one per scenario (k, draw) and method with the patients flipped;
    ``by_k``: per k and method the number of draws, the HR range (min, median, max) and
    the number of draws whose CI excludes 1.
    """

    label: str
    observed_k: int
    rows: pd.DataFrame
    by_k: pd.DataFrame
    n_draws: int
    seed: int
    notes: tuple

    def to_frame(self) -> pd.DataFrame:
        return self.rows.copy()

    def to_dict(self) -> dict:
        """The ``vascular_invasion`` entry of ``sensitivity.json``."""
        return {"observed_k": self.observed_k, "n_draws": self.n_draws, "seed": self.seed,
                "by_k": self.by_k.to_dict("records"), "rows": self.rows.to_dict("records"),
                "notes": self.notes}

    def sentences(self) -> list[str]:
        """One sentence for the sensitivity summary."""
        parts = []
        for method, part in self.by_k.groupby("method", sort=False):
            parts.append(f"{method} HR {part['hr_min'].min():.2f}-"
                         f"{part['hr_max'].max():.2f}, CI excluding 1 in "
                         f"{int(part['n_ci_excludes_1'].sum())} of "
                         f"{int(part['n_estimable'].sum())} scenarios")
        ks = self.by_k["k"]
        return [f"Vascular invasion in the treated arm set to k = {ks.min()}-{ks.max()} "
                f"(reconstructed {self.observed_k}; a what-if on the reconstruction): "
                + "; ".join(parts) + "."]

    def summary(self) -> str:
        lines = [self.label,
                 f"What-if on the reconstruction (audit B6): vascular invasion in the local "
                 f"therapy arm set to k patients (as reconstructed: {self.observed_k}) by "
                 f"flipping randomly chosen treated patients ({self.n_draws} draws per k, "
                 f"seed {self.seed}); default PSM and IPTW ATE re-run, PS re-estimated."]
        for r in self.by_k.itertuples():
            rng = (f"HR {r.hr_min:.3f} to {r.hr_max:.3f} (median {r.hr_median:.3f})"
                   if r.n_estimable else "not estimable")
            lines.append(f"  k = {r.k}, {r.method}: {rng}; {r.n_estimable} of {r.n_draws} "
                         f"estimable; CI excludes 1 in {r.n_ci_excludes_1}.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


_ROW_COLUMNS = ("estimand", "hr", "ci_lower", "ci_upper", "p_value", "n_treated",
                "n_control", "events", "estimable", "reason")


def _flip(frame, treated_vi, k, rng) -> tuple[pd.DataFrame, list]:
    rows_treated = np.flatnonzero(frame["local_therapy"].to_numpy() == 1)
    vi = frame["vascular_invasion"].to_numpy().copy()
    pool = rows_treated[vi[rows_treated] == (1 if k < treated_vi else 0)]
    chosen = np.sort(rng.choice(pool, size=abs(k - treated_vi), replace=False))
    vi[chosen] = 0 if k < treated_vi else 1
    ids = frame["patient_id"].to_numpy()[chosen]
    # A shallow copy with the column replaced (pandas never writes a replaced column into
    # the shared array): the other columns are the cohort's, read-only downstream.
    data = frame.copy(deep=False)
    data["vascular_invasion"] = vi
    return data, [str(i) for i in ids]


def vascular_invasion_sensitivity(cohort: Cohort, k_values=range(3, 9), *,
                                  n_draws: int = 10, covariates=None,
                                  seed: int = SEED) -> VascularInvasionSensitivity:
    """Audit B6 what-if: how the default PSM and IPTW ATE HRs move with vascular invasion.

    Table 1 prints 5/17 for both multiple intrahepatic lesions and vascular invasion; a
    copy error cannot be excluded. On the bundled reconstruction, vascular invasion in the
    local therapy arm is set to each k by flipping randomly chosen treated patients (from 1
    to 0 when k is below the reconstructed count, from 0 to 1 above it), ``n_draws`` times
    per k; the PS is re-estimated and the default PSM (1:1, caliper 0.2 SD, largest first)
    and IPTW ATE (stabilised) HRs recomputed.

    Parameters
    ----------
    cohort : Cohort
        The bundled reconstructed cohort (``cohort.reconstructed``); real data record what
        they record, so this what-if is refused for them.
    k_values : sequence of int
        Treated patients with vascular invasion (default 3 to 8).
    n_draws : int
        Random draws of the flipped patients per k (one row at the reconstructed k).
    covariates : sequence of str, optional
        PS covariates (default ECOG, cCR, vascular invasion); must include vascular_invasion.
    seed : int
        One stream per k (``numpy.random.default_rng([seed, k])``): bit-for-bit
        reproducible, and a k's draws do not depend on the other k values asked for.

    Returns
    -------
    VascularInvasionSensitivity
    """
    if not cohort.reconstructed:
        raise ValueError("The vascular-invasion what-if (audit B6) is defined for the bundled "
                         "reconstructed cohort only; patient-level data record vascular "
                         "invasion as observed.")
    covariates = tuple(DEFAULT_CONFOUNDERS if covariates is None else covariates)
    if "vascular_invasion" not in covariates:
        raise ValueError("covariates must include 'vascular_invasion' for this what-if.")
    frame = cohort.data
    treated = frame["local_therapy"].to_numpy() == 1
    observed = int(frame.loc[treated, "vascular_invasion"].sum())
    k_values = [int(k) for k in k_values]
    bad = [k for k in k_values if not 0 <= k <= int(treated.sum())]
    if bad:
        raise ValueError(f"k values {bad} outside 0..{int(treated.sum())} treated patients.")
    specs = (Specification.psm(covariates), Specification.iptw(covariates))
    rows = []
    # Draws that flip the same patients, and the reconstructed k (the specification grid's
    # default rows inside run_sensitivity), are computed once (shared_rows).
    with shared_rows():
        for k in k_values:
            rng = np.random.default_rng([seed, k])   # one stream per k, whatever else is asked
            for draw in range(1 if k == observed else n_draws):
                data, flipped = ((frame, []) if k == observed
                                 else _flip(frame, observed, k, rng))
                sub = cohort if k == observed else dataclasses.replace(cohort, data=data)
                for spec, row in zip(specs, evaluate_set(sub, specs)):
                    rows.append({"k": k, "draw": draw + 1, "flipped_ids": ", ".join(flipped),
                                 "method": spec.family,
                                 **{c: row[c] for c in _ROW_COLUMNS}})
    table = pd.DataFrame(rows)
    by_k = []
    for (k, method), part in table.groupby(["k", "method"], sort=False):
        ok = part[part["estimable"].astype(bool)]
        excl = (ok["ci_upper"] < 1) | (ok["ci_lower"] > 1)
        by_k.append({"k": k, "method": method, "n_draws": len(part), "n_estimable": len(ok),
                     "hr_min": ok["hr"].min(), "hr_median": ok["hr"].median(),
                     "hr_max": ok["hr"].max(), "n_ci_excludes_1": int(excl.sum())})
    notes = ("A what-if on the RECONSTRUCTED cohort, not on the study's patients: which "
             "treated patients had vascular invasion is itself reconstructed.",
             "Flipping changes only vascular_invasion; the other variables and the outcome "
             "stay as reconstructed.")
    return VascularInvasionSensitivity(cohort.label, observed, table, pd.DataFrame(by_k),
                                       n_draws, seed, notes)



def extra_analyses(*, vascular_invasion_draws: int = 10, n_sim_ned: int = 2000) -> dict:
    """The study's extra sensitivity stages for ``run_sensitivity(extra_analyses=...)``.

    name -> ``fn(cohort, covariates, seed)``: "vascular_invasion" (audit B6; on the
    reconstruction with vascular_invasion among the PS covariates only) and "ned_null"
    (audit A4). A stage that does not apply raises CohortError and is listed as
    unavailable with the reason.
    """
    from causal_hcc.errors import CohortError

    def vascular_invasion(cohort, covariates, seed):
        if not cohort.reconstructed or "vascular_invasion" not in covariates:
            raise CohortError(["the vascular-invasion what-if (audit B6) is run on the "
                               "bundled reconstruction only, with vascular_invasion among "
                               "the PS covariates"])
        return vascular_invasion_sensitivity(cohort, covariates=covariates,
                                             n_draws=vascular_invasion_draws, seed=seed)

    def ned_null(cohort, covariates, seed):
        return ned_null_correlation(cohort, n_sim=n_sim_ned, seed=seed)

    return {"vascular_invasion": vascular_invasion, "ned_null": ned_null}


#: The paper's immortal-time landmarks (months): 1, 3 and 6 months after time zero.
IMMORTAL_LANDMARKS = (1.0, 3.0, 6.0)


def sensitivity_extras(cohort: Cohort, *, n_sim_ned: int = 2000,
                       vascular_invasion_draws: int = 10, seed: int | None = None) -> dict:
    """Keyword arguments of ``run_sensitivity`` for this study: its grid covariate sets,
    its immortal-time landmarks and its extra analyses (``seed`` is run_sensitivity's)."""
    return {"covariate_sets": covariate_sets(cohort), "landmarks": IMMORTAL_LANDMARKS,
            "extra_analyses": extra_analyses(vascular_invasion_draws=vascular_invasion_draws,
                                             n_sim_ned=n_sim_ned)}
