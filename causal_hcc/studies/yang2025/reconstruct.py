"""Generator of the bundled RECONSTRUCTED pseudo-patient cohort (not the study's patients).

The patient-level data of Yang et al. 2025 (Chin J Gen Surg 34(7):1371-1381; 40 local
therapy vs 36 no local therapy, CNLC IIIb HCC) are not public. This module builds 76
pseudo-patients whose aggregates reproduce the published ones, read with the corrections
of ``paper/audit.md``:

1. Four fixed cells (arm x oligometastasis: 25, 15, 15, 21). Every categorical variable
   gets its exact per-cell count (Table 2; non-oligometastatic = Table 1 - Table 2, with the
   audit's B3 correction), and every continuous variable per-cell values with the published
   (or complement-derived) mean and SD.
2. A simulated-annealing search over individual (time, event) pairs and over swaps of
   covariate values between patients of the same cell (which keep every count, mean and SD
   exact) fits the Kaplan-Meier landmarks and medians, log-rank P values, follow-up and the
   Table 3 Cox models (Efron ties, reversed label convention, audit C1). It works on
   individual patients, not smooth curves, so differential censoring can reconcile the
   local-arm and oligo-local tails (audit A3/A5).
3. Treatment times, NED and diagnosis dates are then attached, consistent with each
   patient's follow-up.

Step 1 is in :mod:`.reconstruct_start`, step 2 in :mod:`.reconstruct_search` (targets and
loss) and :mod:`.reconstruct_anneal` (moves and schedule); this module holds the parameters,
step 3 and the assembly. The search uses the small vectorised estimators of
:mod:`.reconstruct_fast` (:func:`km_fast`, :func:`logrank_fast`, :func:`cox_efron_fast`),
which agree with lifelines to rtol 1e-6; :mod:`causal_hcc.studies.yang2025.calibration`
checks the result with lifelines itself.
Every output of this module is reconstructed pseudo-data.
"""

from __future__ import annotations

import datetime as dt
import math
import warnings
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from causal_hcc.errors import ConvergenceWarning
from causal_hcc.studies.yang2025.dictionary import RECONSTRUCTED_LABEL
from causal_hcc.studies.yang2025.reconstruct_anneal import anneal
from causal_hcc.studies.yang2025.reconstruct_search import SearchState, search_targets
from causal_hcc.studies.yang2025.reconstruct_start import (LESION_CODES, initial_covariates,
                                                           initial_survival, milan_within)
from causal_hcc.studies.yang2025.targets import (CELLS, COLUMNS, CUTOFF_DATE, ENROLMENT_END,
                                                 ENROLMENT_START, MONTH_DAYS, cell_targets,
                                                 load_paper_targets)

DEFAULT_SEED = 20250711
BUNDLED_FILENAME = "reconstructed_pseudo_cohort.csv"

__all__ = ["DEFAULT_SEED", "ReconstructionParams", "reconstruct_cohort", "write_bundled",
           "bundled_csv_path", "read_cohort_csv"]


@dataclass(frozen=True)
class ReconstructionParams:
    """Named choices the paper does not determine, for the reconstructed pseudo-cohort.

    Each default is documented; change one to regenerate the pseudo-cohort under another
    assumption (``reconstruct_cohort(params=ReconstructionParams(log_hr_vascular_invasion=0.7))``).

    Parameters
    ----------
    log_hr_vascular_invasion : float
        Target univariable log hazard ratio of vascular invasion (yes vs no). Not in Table 3;
        default log(1.5), a modest adverse effect.
    log_hr_combination_regimen : float
        Target univariable log HR of targeted + immune vs single-class systemic therapy.
        Not reported; default 0 (no effect).
    milan_multiple_max_cm : float or None
        Milan status is derived, not drawn: within = no vascular invasion and (no viable
        lesion, or a single lesion <= 5 cm, or multiple lesions with the largest <= this
        value, i.e. assumed <= 3 nodules). None: multiple lesions are always beyond Milan.
    child_pugh_b_requires_cirrhosis : bool
        Every Child-Pugh B patient has cirrhosis (clinical plausibility).
    diameter_advanced_corr : float
        Minimum correlation of log intrahepatic diameter with "vascular invasion or multiple
        lesions" (plausibility; soft, hinge penalty).
    min_milan_untreated : int
        Minimum number of untreated patients within Milan (soft). Without it the search can
        put every within-Milan patient in the treated arm, which would make Milan status
        separate the arms perfectly in a propensity model.
    age_min_cell, age_max_cell : str
        Cells holding the published age extremes 31 and 84 (Section 1.1).
    intrahepatic_diameter_min_cm, extrahepatic_diameter_min_cm : float
        Lower bounds of the generated diameters.
    local_interval_sigma : float
        Log-scale SD of the lognormal time from diagnosis to local therapy (medians 1 and 2
        months, oligo / non-oligo, from the Discussion; range 0-31).
    ned_fraction_beta : tuple of float
        Beta(a, b) shape of cumulative NED time as a fraction of follow-up after local therapy.
    ned_requires_ccr : bool
        NED patients are drawn among intrahepatic cCR patients (NED means no tumour anywhere).
    lost_to_follow_up_share : float
        Share of censored patients (among those an administrative cut-off can explain) made
        lost to follow-up, i.e. censored before the cut-off date allows. Low by default: the
        paper excluded patients without regular re-examination.
    early_censoring_weight : float
        Penalty per patient censored alive before 6 months (the shortest administrative
        follow-up: enrolment ends 2023-12-31, cut-off 2024-06-30), who must then be lost.
    n_iterations : int
        Annealing iterations per round.
    n_restarts, n_rounds : int
        Phase 1 (survival) makes up to ``n_restarts`` independent restarts; phases 2 and 3
        (associations, joint polish) up to ``n_rounds`` rounds each. A phase ends once every
        hard target of the phase is within ``stop_margin`` of its tolerance (log-rank P: of
        the distance from the published P to the nearer edge of its band).
    temperature_start, temperature_end : float
        Geometric annealing schedule of each round.
    weight_landmark_tail : float
        Weight of the 60-month landmarks of the local and oligo-local arms, the softest survival
        targets (audit A3/A5): it scales the quadratic pull only, the tolerance is still
        enforced.
    weight_soft_cox : float
        Weight of the univariable Cox rows without a hard tolerance (sex, age, hepatitis,
        cirrhosis, Child-Pugh, AFP, extrahepatic diameter, and the two chosen above).
    hinge_margin : float
        Fraction of a tolerance beyond which the loss steepens (30-fold, unweighted).
    """

    log_hr_vascular_invasion: float = math.log(1.5)
    log_hr_combination_regimen: float = 0.0
    milan_multiple_max_cm: float | None = 3.0
    child_pugh_b_requires_cirrhosis: bool = True
    diameter_advanced_corr: float = 0.25
    min_milan_untreated: int = 4
    age_min_cell: str = "local_oligo"
    age_max_cell: str = "no_local_non_oligo"
    intrahepatic_diameter_min_cm: float = 0.8
    extrahepatic_diameter_min_cm: float = 0.5
    local_interval_sigma: float = 1.0
    ned_fraction_beta: tuple[float, float] = (2.0, 1.5)
    ned_requires_ccr: bool = True
    lost_to_follow_up_share: float = 0.05
    early_censoring_weight: float = 1.0
    n_iterations: int = 6000
    n_restarts: int = 8
    n_rounds: int = 4
    stop_margin: float = 0.95
    temperature_start: float = 2.0
    temperature_end: float = 0.002
    weight_landmark_tail: float = 0.3
    weight_soft_cox: float = 0.3
    hinge_margin: float = 0.6


# --------------------------------------------------------------------------------------
# Attached after the search: time to local therapy, NED, diagnosis dates, identifiers
# --------------------------------------------------------------------------------------

def _local_therapy_tenths(rng, s, targets, params, ned_anchor):
    """Months from diagnosis to local therapy (tenths), treated patients only.

    Lognormal around the Discussion's medians (1 month oligo, 2 months non-oligo), shifted
    so each cell's median draw sits exactly on it; then the range is pinned to the
    published 0-31 months (the latest start goes to the longest-followed treated patient
    other than ``ned_anchor``), and every start leaves at least a month of follow-up (and
    room for the 64.6-month NED of ``ned_anchor``).
    """
    timing = targets["treatment_timing"]
    medians = {0: timing["median_interval_oligometastatic_months"],
               1: timing["median_interval_non_oligometastatic_months"]}
    t_max = float(timing["systemic_to_local_interval_months"]["range_max"])
    t_min = float(timing["systemic_to_local_interval_months"]["range_min"])
    n = len(s.tenths)
    raw = np.full(n, np.nan)
    for c in (0, 1):
        idx = s.cells[c]
        z = rng.standard_normal(len(idx))
        raw[idx] = medians[c] * np.exp(params.local_interval_sigma * (z - np.median(z)))
    treated = np.flatnonzero(s.local)
    os_m = s.tenths / 10.0
    cap = np.maximum(os_m - 1.0, 0.0)
    cap[ned_anchor] = max(0.0, min(cap[ned_anchor], os_m[ned_anchor] - s.tg.ned_max))
    late_ok = treated[(os_m[treated] >= t_max + 1.0) & (treated != ned_anchor)]
    late = int(late_ok[np.argmax(os_m[late_ok])]) if len(late_ok) else -1
    # The draws of a cell are exchangeable: move them between patients (never changing
    # the cell's set of values, hence its median) so that the latest start goes to ``late``
    # and no draw exceeds its patient's follow-up.
    for c in (0, 1):
        idx = s.cells[c]
        if late in idx:
            top = idx[np.argmax(raw[idx])]
            raw[[late, top]] = raw[[top, late]]
        for i in idx:
            if raw[i] <= cap[i] or i == late:
                continue
            fits = [j for j in rng.permutation(idx) if j != late and raw[j] <= cap[i]
                    and raw[i] <= cap[j]]
            if fits:
                raw[[i, fits[0]]] = raw[[fits[0], i]]
    tenths = np.full(n, -1, dtype=np.int64)
    tenths[treated] = np.floor(np.minimum(np.minimum(raw[treated], cap[treated]), t_max) * 10
                               + 1e-9).astype(np.int64)
    if late >= 0:
        tenths[late] = int(round(t_max * 10))
    tenths[treated[np.argmin(raw[treated])]] = int(round(t_min * 10))
    return tenths


def _ned(rng, s, targets, params, lt_tenths, ned_anchor):
    """NED status and cumulative NED months (tenths, -1 = not reached).

    23 NED patients (18 oligo, 5 non-oligo), all in the treated arm, drawn among cCR
    patients (if ``ned_requires_ccr``) with probability rising with follow-up after local
    therapy; ``ned_anchor`` carries the longest NED (64.6 months). Cumulative NED is a
    Beta-distributed fraction of follow-up after local therapy, scaled so that the median is
    the published 10.2 months; the extremes are pinned to 0.6 and 64.6 months.
    """
    ned = targets["ned"]
    want = {0: ned["ned_oligometastatic"]["value"], 1: ned["ned_non_oligometastatic"]["value"]}
    summary = ned["median_cumulative_ned_months"]
    after = s.tenths - np.where(lt_tenths >= 0, lt_tenths, 0)     # tenths after local therapy
    chosen = []
    for c in (0, 1):
        idx = s.cells[c]
        if params.ned_requires_ccr:
            idx = idx[s.cov["intrahepatic_ccr"][idx] == 1]
        key = np.log(np.maximum(after[idx], 1)) + rng.gumbel(size=len(idx))
        key[idx == ned_anchor] = np.inf
        chosen.append(idx[np.argsort(-key, kind="stable")[:want[c]]])
    chosen = np.sort(np.concatenate(chosen))
    frac = rng.beta(*params.ned_fraction_beta, size=len(chosen))
    room = after[chosen].astype(float)

    def med(scale):
        return np.median(np.floor(np.minimum(scale * frac, 1.0) * room) / 10.0)
    lo, hi = 1e-3, 1e3
    for _ in range(80):   # the median is non-decreasing in the scale: bisection
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if med(mid) < summary["value"] else (lo, mid)
    shortest = int(round(summary["range_min"] * 10))
    ned_t = np.floor(np.minimum(hi * frac, 1.0) * room).astype(np.int64)
    ned_t = np.maximum(ned_t, np.minimum(shortest, room).astype(np.int64))
    ned_t[chosen == ned_anchor] = min(int(round(summary["range_max"] * 10)),
                                      int(room[chosen == ned_anchor][0]))
    others = np.flatnonzero(chosen != ned_anchor)
    low = others[np.argmin(ned_t[others])]
    ned_t[low] = min(shortest, int(room[low]))
    out = np.full(len(s.tenths), -1, dtype=np.int64)
    out[chosen] = ned_t
    return out


def _diagnosis_dates(rng, s, params):
    """Diagnosis dates (2017-01-01..2023-12-31) consistent with follow-up to 2024-06-30.

    A death needs diagnosis + OS <= cut-off. A censored patient is censored at the cut-off
    (diagnosis = cut-off - OS) when enrolment allows it, except round(share x eligible) of
    them chosen at random (``lost_to_follow_up_share``); those, and patients censored
    before 6 months (whom enrolment cannot explain), are lost to follow-up: diagnosed
    earlier, with at least 2 more months of follow-up available.
    """
    start = (ENROLMENT_START - CUTOFF_DATE).days      # day offsets from the cut-off (< 0)
    end = (ENROLMENT_END - CUTOFF_DATE).days
    n = len(s.tenths)
    need = np.array([math.ceil(t / 10.0 * MONTH_DAYS) for t in s.tenths])
    admin_ok = (s.event == 0) & (-need >= start) & (-need <= end)
    eligible = np.flatnonzero(admin_ok)
    n_lost = int(round(params.lost_to_follow_up_share * len(eligible)))
    admin_ok[rng.permutation(eligible)[:n_lost]] = False
    u_date = rng.random(n)
    dates = []
    for i in range(n):
        if admin_ok[i]:
            offset = -need[i]
        else:
            extra = 0 if s.event[i] == 1 else math.ceil(2.0 * MONTH_DAYS)
            latest = min(end, -need[i] - extra)
            offset = start + int(u_date[i] * (latest - start + 1))
        dates.append(CUTOFF_DATE + dt.timedelta(days=int(offset)))
    return dates


def _assemble(s, lt_tenths, ned_tenths, dates, rng):
    """The output frame in the data contract's names and codings, sorted by patient_id.

    Identifiers follow the order of diagnosis (ties broken at random), as a registry's would.
    """
    c, n = s.cov, len(s.tenths)
    tie = rng.permutation(n)
    rank = np.lexsort((tie, np.array([d.toordinal() for d in dates])))
    ids = np.empty(n, dtype=object)
    ids[rank] = [f"P{k + 1:03d}" for k in range(n)]
    lesions = np.array(LESION_CODES, dtype=object)[c["lesions"]]
    frame = pd.DataFrame({
        "patient_id": ids,
        "local_therapy": s.local.astype(np.int64),
        "os_months": s.tenths / 10.0,
        "death": s.event.astype(np.int64),
        "sex": np.where(c["female"] == 1, "female", "male").astype(object),
        "age": c["age"].astype(np.int64),
        "hepatitis": c["hepatitis"], "cirrhosis": c["cirrhosis"], "ecog": c["ecog"],
        "child_pugh": np.where(c["child_pugh_b"] == 1, "B", "A").astype(object),
        "afp_positive": c["afp_positive"],
        "intrahepatic_lesions": lesions,
        "vascular_invasion": c["vascular_invasion"],
        "intrahepatic_max_diameter_cm": c["intrahepatic_max_diameter_cm"],
        "intrahepatic_ccr": c["intrahepatic_ccr"],
        "milan_within": milan_within(c, s.params),
        "extrahepatic_lesions": np.where(c["extrahepatic_multiple"] == 1, "multiple",
                                         "single").astype(object),
        "extrahepatic_max_diameter_cm": c["extrahepatic_max_diameter_cm"],
        "systemic_regimen": np.where(c["combination"] == 1, "combination",
                                     "single_agent").astype(object),
        "oligometastatic": s.oligo.astype(np.int64),
        "months_to_local_therapy": np.where(lt_tenths >= 0, lt_tenths / 10.0, np.nan),
        "ned_achieved": (ned_tenths >= 0).astype(np.int64),
        "ned_cumulative_months": np.where(ned_tenths >= 0, ned_tenths / 10.0, np.nan),
        "diagnosis_date": np.array([d.isoformat() for d in dates], dtype=object),
    }, columns=list(COLUMNS))
    for col in ("hepatitis", "cirrhosis", "ecog", "afp_positive", "vascular_invasion",
                "intrahepatic_ccr", "milan_within"):
        frame[col] = frame[col].astype(np.int64)
    return frame.sort_values("patient_id", kind="stable").reset_index(drop=True)


def reconstruct_cohort(seed: int = DEFAULT_SEED,
                       params: ReconstructionParams | None = None) -> pd.DataFrame:
    """Generate the 76-patient RECONSTRUCTED pseudo-cohort (not the study's patients).

    Parameters
    ----------
    seed : int
        Seed of the ``numpy.random.Generator`` behind every random choice. The default
        seed gives the bundled ``reconstructed_pseudo_cohort.csv``.
    params : ReconstructionParams, optional
        The generator's assumptions where the paper is silent (defaults documented there).

    Returns
    -------
    pandas.DataFrame
        One row per pseudo-patient, columns :data:`~causal_hcc.studies.yang2025.targets.COLUMNS`
        in the data contract's codings, sorted by ``patient_id``. ``attrs`` records the label,
        seed, parameters and the search's outcome.

    Warns
    -----
    causal_hcc.errors.ConvergenceWarning
        When the search ends with some hard target unmet (the calibration table shows which).

    Notes
    -----
    Deterministic: the same seed and parameters give the same frame bit for bit on a given
    platform (no global random state, no wall-clock limits; losses rounded to 10 significant
    digits before each accept/reject decision). Steps: exact per-cell counts and moments
    (Tables 1-2, audit B3); simulated annealing over (time, event) pairs and within-cell
    swaps (:func:`anneal`); then time to local therapy, NED and diagnosis dates.
    Check the result with :func:`causal_hcc.studies.yang2025.calibration.calibration_table`.
    """
    params = params or ReconstructionParams()
    rng = np.random.default_rng(seed)
    targets = load_paper_targets()
    cells = cell_targets(targets)
    cell_index = np.repeat(np.arange(len(CELLS)), [cells["sizes"][c] for c, _, _ in CELLS])
    cov = initial_covariates(rng, cells, cell_index, params)
    tg = search_targets(targets, params)
    tenths, event = initial_survival(rng, cell_index, tg.n_deaths)
    search = SearchState(cov, cell_index, tenths, event, tg, params)
    outcome = anneal(search, rng, params)
    if not outcome["met"]:
        warnings.warn(ConvergenceWarning(
            f"Reconstruction search (seed {seed}) ended with some hard target unmet; see "
            "calibration_table()."), stacklevel=2)
    treated_ccr = np.flatnonzero(search.local & (cov["intrahepatic_ccr"] == 1))
    anchor = int(treated_ccr[np.argmax(search.tenths[treated_ccr])])
    lt = _local_therapy_tenths(rng, search, targets, params, anchor)
    ned = _ned(rng, search, targets, params, lt, anchor)
    dates = _diagnosis_dates(rng, search, params)
    frame = _assemble(search, lt, ned, dates, rng)
    frame.attrs.update({"description": RECONSTRUCTED_LABEL, "seed": seed,
                        "params": asdict(params), "search": outcome})
    return frame


def bundled_csv_path() -> Path:
    """Path of the bundled reconstructed pseudo-cohort CSV inside the package."""
    return Path(str(resources.files(__package__).joinpath("bundled", BUNDLED_FILENAME)))


def write_bundled(path: str | Path | None = None, seed: int = DEFAULT_SEED,
                  params: ReconstructionParams | None = None) -> Path:
    """Regenerate the reconstructed pseudo-cohort and write it as a plain CSV.

    Parameters
    ----------
    path : str or Path, optional
        Destination; the package's ``bundled/reconstructed_pseudo_cohort.csv`` by default.
    seed, params
        As for :func:`reconstruct_cohort`.

    Returns
    -------
    Path
        The file written (UTF-8, ``\\n`` line ends, no index, no comment lines).
    """
    path = Path(path) if path is not None else bundled_csv_path()
    frame = reconstruct_cohort(seed, params)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, lineterminator="\n")
    return path


def read_cohort_csv(path: str | Path) -> pd.DataFrame:
    """Read a reconstructed pseudo-cohort CSV with the dtypes :func:`reconstruct_cohort` gives."""
    return pd.read_csv(path, dtype={"patient_id": object, "sex": object, "child_pugh": object,
                                    "intrahepatic_lesions": object,
                                    "extrahepatic_lesions": object, "systemic_regimen": object,
                                    "diagnosis_date": object})
