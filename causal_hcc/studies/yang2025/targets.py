"""The published numbers of Yang et al. 2025 the reconstructed pseudo-cohort is built to.

``paper_targets.json`` (a byte copy of the paper's ``targets.json``, shipped with the
package) through :func:`load_paper_targets`; the output columns of the pseudo-cohort; its
four cells (arm x oligometastasis) with their exact per-cell counts and moments
(:func:`cell_targets`, Tables 1-2 with the audit's B3 correction); the study dates; and the
log-rank P bands. Read by :mod:`causal_hcc.studies.yang2025.reconstruct` (the generator)
and :mod:`causal_hcc.studies.yang2025.calibration` (the check).
"""

from __future__ import annotations

import datetime as dt
import json
from functools import lru_cache
from importlib import resources

LABEL = "reconstructed pseudo-cohort (not the study's patients)"

#: Output columns of the reconstructed pseudo-cohort, in order (the data contract's names).
COLUMNS = ("patient_id", "local_therapy", "os_months", "death", "sex", "age", "hepatitis",
           "cirrhosis", "ecog", "child_pugh", "afp_positive", "intrahepatic_lesions",
           "vascular_invasion", "intrahepatic_max_diameter_cm", "intrahepatic_ccr",
           "milan_within", "extrahepatic_lesions", "extrahepatic_max_diameter_cm",
           "systemic_regimen", "oligometastatic", "months_to_local_therapy", "ned_achieved",
           "ned_cumulative_months", "diagnosis_date")

#: The four fixed cells: (name, local_therapy, oligometastatic).
CELLS = (("local_oligo", 1, 1), ("local_non_oligo", 1, 0),
         ("no_local_oligo", 0, 1), ("no_local_non_oligo", 0, 0))

CUTOFF_DATE = dt.date(2024, 6, 30)      # Section 1.4
ENROLMENT_START = dt.date(2017, 1, 1)   # Section 1.1
ENROLMENT_END = dt.date(2023, 12, 31)
MONTH_DAYS = 365.25 / 12.0              # days per month when dates become months

#: Categorical variables: (targets.json key, output column, {json level: output value}).
CATEGORICAL = (
    ("sex", "sex", {"male": "male", "female": "female"}),
    ("hepatitis", "hepatitis", {"yes": 1, "no": 0}),
    ("cirrhosis", "cirrhosis", {"yes": 1, "no": 0}),
    ("ecog_ps", "ecog", {"0": 0, "1": 1}),
    ("child_pugh_class", "child_pugh", {"A": "A", "B": "B"}),
    ("afp", "afp_positive", {"negative": 0, "positive": 1}),
    ("intrahepatic_viable_lesions", "intrahepatic_lesions",
     {"none": "none", "single": "single", "multiple": "multiple"}),
    ("vascular_invasion", "vascular_invasion", {"yes": 1, "no": 0}),
    ("intrahepatic_ccr", "intrahepatic_ccr", {"yes": 1, "no": 0}),
    ("extrahepatic_lesion_count", "extrahepatic_lesions",
     {"single": "single", "multiple": "multiple"}),
    ("systemic_regimen", "systemic_regimen",
     {"targeted_or_immune_single_class": "single_agent", "targeted_plus_immune": "combination"}),
)
#: Continuous variables: (targets.json key, output column).
CONTINUOUS = (("age_years", "age"),
              ("intrahepatic_max_diameter_cm", "intrahepatic_max_diameter_cm"),
              ("extrahepatic_max_diameter_cm", "extrahepatic_max_diameter_cm"))
ARMS = (("local", 1), ("no_local", 0))


@lru_cache(maxsize=1)
def _targets_text() -> str:
    return resources.files(__package__).joinpath(
        "paper_targets.json").read_text("utf-8")


def load_paper_targets() -> dict:
    """The published numbers of Yang et al. 2025 (``paper_targets.json``, a fresh copy).

    Returns
    -------
    dict
        The parsed ``targets.json`` of the paper (every printed number with its source,
        the audit's derived values and corrections). The caller may modify it freely.
    """
    return json.loads(_targets_text())


def table2_counts(targets: dict, key: str) -> dict:
    """Table 2 (oligometastatic) counts of one variable, with the audit B3 correction.

    The printed local-arm extrahepatic lesion counts (14 single / 11 multiple) leave a
    non-oligometastatic patient with a single lesion, which the definition forbids; the
    printed P 0.748 is the Fisher P of 15 / 10, used here.
    """
    var = targets["baseline_table2_oligometastatic"]["variables"][key]
    counts = {lev: {arm: var["levels"][lev][arm]["n"] for arm, _ in ARMS} for lev in var["levels"]}
    if key == "extrahepatic_lesion_count":
        fixed = var["corrected_counts_recommended"]
        counts = {lev: {arm: fixed[arm][lev] for arm, _ in ARMS} for lev in counts}
    return counts


def cell_targets(targets: dict | None = None) -> dict:
    """Exact per-cell counts and per-cell mean/SD targets of the pseudo-cohort.

    Cells are arm x oligometastasis (local_oligo 25, local_non_oligo 15, no_local_oligo 15,
    no_local_non_oligo 21). Oligometastatic cells take Table 2 (corrected, audit B3);
    non-oligometastatic cells take Table 1 - Table 2. Means/SDs of non-oligometastatic
    cells are the complement of the pooled sample (``baseline_non_oligometastatic_derived``).

    Returns
    -------
    dict
        ``{"sizes": {cell: n}, "counts": {column: {cell: {value: n}}},
        "moments": {column: {cell: (mean, sd)}}}``.
    """
    targets = targets or load_paper_targets()
    t1 = targets["baseline_table1"]["variables"]
    t2m = targets["baseline_table2_oligometastatic"]["variables"]
    derived = targets["baseline_non_oligometastatic_derived"]["variables"]
    sizes = {"local_oligo": 25, "local_non_oligo": 15, "no_local_oligo": 15,
             "no_local_non_oligo": 21}
    counts = {}
    for key, column, coding in CATEGORICAL:
        t2 = table2_counts(targets, key)
        per_cell = {}
        for cell, local, oligo in CELLS:
            arm = "local" if local else "no_local"
            per_cell[cell] = {coding[lev]: (t2[lev][arm] if oligo
                                            else t1[key]["levels"][lev][arm]["n"] - t2[lev][arm])
                              for lev in coding}
        counts[column] = per_cell
    moments = {}
    for key, column in CONTINUOUS:
        moments[column] = {}
        for cell, local, oligo in CELLS:
            arm = "local" if local else "no_local"
            src = t2m[key][arm] if oligo else derived[key][arm]
            moments[column][cell] = (float(src["mean"]), float(src["sd"]))
    return {"sizes": sizes, "counts": counts, "moments": moments}


#: Bands of the published log-rank P values (arms, oligo and non-oligo subgroups).
LOGRANK_BANDS = {"arms": (0.001, 0.01), "oligo": (0.002, 0.03), "non_oligo": (0.05, 0.30)}
