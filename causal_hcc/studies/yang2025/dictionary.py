"""The Yang et al. 2025 data dictionary (``data_dictionary.md``) as a study profile.

Variables, codings and cross-column rules of the CNLC IIIb HCC study; the default roles
(time ``os_months``, event ``death``, treatment ``local_therapy``, PS covariates ECOG PS,
intrahepatic cCR and vascular invasion) and labels. The generic gate
(:func:`causal_hcc.data.schema.validate_frame`) calls :func:`coerce` and :func:`check`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Labels, Roles
from causal_hcc.data.coerce import coerce_binary, rows_text
from causal_hcc.data.schema import StudyProfile

RECONSTRUCTED_LABEL = (
    "RECONSTRUCTED PSEUDO-DATA: 76 pseudo-patients generated from the published aggregates "
    "of Yang et al. 2025 (Chin J Gen Surg 34(7):1371-1381), not the study's patients"
)
MAX_LISTED = 5


@dataclass(frozen=True)
class Variable:
    """One variable of the data contract.

    ``kind`` is one of ``id``, ``binary`` (integer 1/0), ``category`` (one of ``levels``),
    ``continuous`` (float, with ``bounds``), ``date`` (ISO date).
    """

    name: str
    kind: str
    required: bool
    description: str
    levels: tuple = ()
    reference: object = None
    unit: str = ""
    bounds: tuple[float, float] | None = None
    paper: str = ""
    missing_means: str = "unknown"


VARIABLES: tuple[Variable, ...] = (
    Variable("patient_id", "id", True, "Unique patient identifier.", paper="-",
             missing_means="not allowed"),
    Variable("local_therapy", "binary", True,
             "Local therapy (resection, ablation or radiotherapy) of extrahepatic metastases "
             "added to systemic therapy; 1 = treated arm.", reference=0,
             paper="Table 1 columns; Table 3 'local therapy'", missing_means="not allowed"),
    Variable("os_months", "continuous", True,
             "Overall survival: diagnosis of extrahepatic metastasis to death or last "
             "follow-up.", unit="months", bounds=(0.0, np.inf), paper="Section 1.4, 2.2",
             missing_means="not allowed"),
    Variable("death", "binary", True, "1 = died, 0 = alive at last follow-up (censored).",
             reference=0, paper="Section 2.2 (32 deaths)", missing_means="not allowed"),
    Variable("ecog", "binary", True, "ECOG performance status at baseline (0 or 1).",
             reference=0, paper="Table 1/2 'ECOG PS'; Table 3", missing_means="not allowed"),
    Variable("intrahepatic_ccr", "binary", True,
             "Intrahepatic control, default coding: clinical complete response (mRECIST) "
             "of the intrahepatic lesions, 1 = yes.", reference=0,
             paper="Table 1/2 'intrahepatic cCR'; Table 3", missing_means="not allowed"),
    Variable("vascular_invasion", "binary", True, "Macrovascular invasion, 1 = yes.",
             reference=0, paper="Table 1/2 'vascular invasion'", missing_means="not allowed"),
    Variable("sex", "category", False, "Sex.", levels=("male", "female"), reference="male",
             paper="Table 1/2; Table 3"),
    Variable("age", "continuous", False, "Age at diagnosis of extrahepatic metastasis.",
             unit="years", bounds=(0.0, 120.0), paper="Table 1/2; Table 3 (cut at 50)"),
    Variable("hepatitis", "binary", False, "Viral hepatitis (HBV or HCV), 1 = yes.",
             reference=0, paper="Table 1/2; Table 3"),
    Variable("cirrhosis", "binary", False, "Cirrhosis, 1 = yes.", reference=0,
             paper="Table 1/2; Table 3"),
    Variable("child_pugh", "category", False, "Child-Pugh class.", levels=("A", "B"),
             reference="A", paper="Table 1/2; Table 3"),
    Variable("afp_positive", "binary", False, "Alpha-fetoprotein positive, 1 = yes.",
             reference=0, paper="Table 1/2; Table 3"),
    Variable("intrahepatic_lesions", "category", False,
             "Number of viable intrahepatic lesions at baseline.",
             levels=("none", "single", "multiple"), reference="none",
             paper="Table 1/2 'intrahepatic lesions'"),
    Variable("intrahepatic_max_diameter_cm", "continuous", False,
             "Largest intrahepatic tumour diameter (original tumour when no viable lesion "
             "remains).", unit="cm", bounds=(0.0, 40.0), paper="Table 1/2"),
    Variable("milan_within", "binary", False,
             "Intrahepatic disease within the Milan criteria, 1 = within.", reference=0,
             paper="Table 3 only"),
    Variable("extrahepatic_lesions", "category", False, "Number of extrahepatic lesions.",
             levels=("single", "multiple"), reference="single", paper="Table 1/2"),
    Variable("extrahepatic_max_diameter_cm", "continuous", False,
             "Largest extrahepatic lesion diameter.", unit="cm", bounds=(0.0, 40.0),
             paper="Table 1/2; Table 3 (cut at 2 cm)"),
    Variable("systemic_regimen", "category", False,
             "Systemic therapy: one drug class (targeted or immune) or targeted plus immune.",
             levels=("single_agent", "combination"), reference="single_agent",
             paper="Table 1/2"),
    Variable("oligometastatic", "binary", False,
             "One extrahepatic organ and <= 5 extrahepatic lesions, 1 = yes.", reference=0,
             paper="Table 1; Section 2.3; Table 3"),
    Variable("months_to_local_therapy", "continuous", False,
             "Months from diagnosis of extrahepatic metastasis (time zero) to the first "
             "local therapy; treated patients only, empty for untreated.", unit="months",
             bounds=(0.0, np.inf), paper="Discussion (interval 0-31 months)",
             missing_means="untreated: not applicable; treated: unknown (immortal-time "
                           "analyses then refuse to run)"),
    Variable("ned_achieved", "binary", False, "Reached no evidence of disease, 1 = yes.",
             reference=0, paper="Section 2.5"),
    Variable("ned_cumulative_months", "continuous", False,
             "Sum of all periods in NED; empty or 0 when NED was never reached.",
             unit="months", bounds=(0.0, np.inf), paper="Section 2.5; Figure 5",
             missing_means="NED not reached (or unknown when ned_achieved is 1)"),
    Variable("diagnosis_date", "date", False,
             "Date of diagnosis of extrahepatic metastasis (ISO yyyy-mm-dd).",
             paper="Section 1.1 (2017-01 to 2023-12)"),
)

VARIABLE_BY_NAME = {v.name: v for v in VARIABLES}
REQUIRED = tuple(v.name for v in VARIABLES if v.required)
DEFAULT_CONFOUNDERS = ("ecog", "intrahepatic_ccr", "vascular_invasion")

#: How "intrahepatic control", one of the default confounders, can be coded.
INTRAHEPATIC_CONTROL_CODINGS = {
    "ccr": ("intrahepatic_ccr",),
    "milan": ("milan_within",),
    "lesions": ("intrahepatic_lesions",),
    "diameter": ("intrahepatic_max_diameter_cm",),
}

#: Short names a user may give instead of the canonical ones (CLI ``--map os=OS``).
ALIASES = {
    "id": "patient_id", "os": "os_months", "time": "os_months", "event": "death",
    "status": "death", "treatment": "local_therapy", "treated": "local_therapy",
}



def confounders_for(coding: str = "ccr") -> tuple[str, ...]:
    """Default propensity covariates with intrahepatic control coded as asked.

    Parameters
    ----------
    coding : {"ccr", "milan", "lesions", "diameter"}
        ``ccr`` (default): intrahepatic clinical complete response; ``milan``: within the
        Milan criteria; ``lesions``: viable lesions none/single/multiple; ``diameter``:
        largest intrahepatic diameter (cm, linear).
    """
    if coding not in INTRAHEPATIC_CONTROL_CODINGS:
        raise ValueError(f"Unknown intrahepatic control coding {coding!r}; use one of "
                         f"{sorted(INTRAHEPATIC_CONTROL_CODINGS)}.")
    return ("ecog", *INTRAHEPATIC_CONTROL_CODINGS[coding], "vascular_invasion")




ROLES = Roles(time="os_months", event="death", treatment="local_therapy", id="patient_id",
              covariates=DEFAULT_CONFOUNDERS, subgroups=("oligometastatic",),
              post_baseline=("intrahepatic_ccr",),
              descriptive=tuple(v.name for v in VARIABLES
                                if "Table 1" in v.paper and v.name != "local_therapy"),
              treatment_start="months_to_local_therapy")
LABELS = Labels(treated="local therapy", control="no local therapy", outcome="death",
                time_unit="months", time_zero="diagnosis of extrahepatic metastasis",
                title="Re-analysis of Yang et al. 2025 (CNLC IIIb HCC, local therapy of "
                      "extrahepatic metastases)",
                variables={"ecog": "ECOG PS 1", "intrahepatic_ccr": "intrahepatic cCR",
                           "vascular_invasion": "vascular invasion", "sex": "sex",
                           "age": "age (years)", "hepatitis": "hepatitis",
                           "cirrhosis": "cirrhosis", "child_pugh": "Child-Pugh class",
                           "afp_positive": "AFP positive",
                           "intrahepatic_lesions": "intrahepatic lesions",
                           "intrahepatic_max_diameter_cm": "largest intrahepatic diameter (cm)",
                           "milan_within": "within Milan criteria",
                           "extrahepatic_lesions": "extrahepatic lesions",
                           "extrahepatic_max_diameter_cm":
                               "largest extrahepatic diameter (cm)",
                           "systemic_regimen": "systemic regimen",
                           "oligometastatic": "oligometastatic"})
#: Categorical variables: levels with the dictionary's reference first.
LEVELS = {v.name: (v.reference,) + tuple(x for x in v.levels if x != v.reference)
          for v in VARIABLES if v.kind == "category"}


def coerce(df: pd.DataFrame, problems: list, notes: list) -> pd.DataFrame:
    """The dictionary's variables present in ``df``, in canonical codings."""
    out = pd.DataFrame(index=df.index)
    for var in VARIABLES:
        if var.name not in df:
            continue
        col = df[var.name]
        if var.kind == "id":
            out[var.name] = col.astype("string").str.strip().astype(object)
        elif var.kind == "binary":
            out[var.name] = coerce_binary(col, var.name, df, problems, notes,
                                          _role(var), "patient_id")
        elif var.kind == "category":
            out[var.name] = _coerce_category(col, var, df, problems)
        elif var.kind == "continuous":
            out[var.name] = _coerce_continuous(col, var, df, problems)
        else:
            out[var.name] = _coerce_date(col, var, df, problems)
    return out


def _role(var: Variable) -> str:
    if var.name in DEFAULT_CONFOUNDERS:
        return "covariate"
    return {"local_therapy": "treatment", "death": "event", "os_months": "time"}.get(
        var.name, "dictionary")


def _coerce_category(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    text = col.astype("string").str.strip()
    canon = {lvl.lower(): lvl for lvl in var.levels}
    mapped = text.str.lower().map(canon)
    present = col.notna() & (text != "")
    bad = present & mapped.isna()
    if bad.any():
        found = sorted(set(col[bad].astype(str)))[:MAX_LISTED]
        problems.append(
            f"Column '{var.name}': values {found} in {rows_text(df, bad, 'patient_id')}. "
            f"Allowed: {list(var.levels)} (case-insensitive). Recode each source value with "
            f"--recode {var.name}:SOURCE=LEVEL; nothing is guessed.")
    return mapped.astype(object).where(present & ~bad, None)


def _coerce_continuous(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    text = col.astype("string").str.strip()
    bad = col.notna() & (text != "") & values.isna()
    if bad.any():
        found = sorted(set(col[bad].astype(str)))[:MAX_LISTED]
        problems.append(f"Column '{var.name}': non-numeric values {found} in "
                        f"{rows_text(df, bad, 'patient_id')}. Give numbers in "
                        f"{var.unit or 'the stated unit'}.")
    infinite = np.isinf(values)
    if infinite.any():
        problems.append(f"Column '{var.name}': infinite values in "
                        f"{rows_text(df, infinite, 'patient_id')}. Give finite numbers.")
    lo, hi = var.bounds or (-np.inf, np.inf)
    below, above = values < lo, ~infinite & (values > hi)
    if below.any():
        what = "negative values" if lo == 0 else f"values below {lo}"
        problems.append(f"Column '{var.name}': {int(below.sum())} {what} "
                        f"({rows_text(df, below, 'patient_id')}). Values must be >= {lo:g} "
                        f"{var.unit}.")
    if above.any():
        problems.append(f"Column '{var.name}': {int(above.sum())} values above {hi:g} "
                        f"({rows_text(df, above, 'patient_id')}). Check the unit ({var.unit}).")
    return values.astype(float)


def _coerce_date(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    values = pd.to_datetime(col, errors="coerce")
    text = col.astype("string").str.strip()
    bad = col.notna() & (text != "") & values.isna()
    if bad.any():
        problems.append(f"Column '{var.name}': unreadable dates in "
                        f"{rows_text(df, bad, 'patient_id')}. Use ISO dates (yyyy-mm-dd).")
    return values


def check(out: pd.DataFrame, df: pd.DataFrame, problems, notes) -> None:
    """Cross-column rules: treatment timing and NED time within follow-up."""
    if {"months_to_local_therapy", "local_therapy", "os_months"} <= set(out):
        ttl, treated, os_m = out["months_to_local_therapy"], out["local_therapy"], out["os_months"]
        # Only where the time itself is valid, so one bad time is reported once.
        late = (treated == 1) & (os_m >= 0) & (ttl > os_m)
        if late.any():
            problems.append(f"Column 'months_to_local_therapy': {int(late.sum())} treated "
                            f"patients start local therapy after their follow-up ends "
                            f"({rows_text(df, late, 'patient_id')}). Check both dates; time "
                            "to local therapy must be <= os_months.")
        stray = (treated == 0) & ttl.notna()
        if stray.any():
            problems.append(f"Column 'months_to_local_therapy': values for untreated "
                            f"patients ({rows_text(df, stray, 'patient_id')}). Leave it empty "
                            "when local_therapy = 0, or check the treatment column.")
    if {"ned_cumulative_months", "os_months"} <= set(out):
        over = out["ned_cumulative_months"] > out["os_months"] + 1e-9
        if over.any():
            problems.append(f"Column 'ned_cumulative_months': exceeds os_months in "
                            f"{rows_text(df, over, 'patient_id')}. Time in NED is part of "
                            "follow-up.")


def provenance(source: str, reconstructed: bool) -> str:
    return RECONSTRUCTED_LABEL if reconstructed else f"Patient-level data from {source}"


PROFILE = StudyProfile(name="yang2025", roles=ROLES, labels=LABELS, levels=LEVELS,
                       coerce=coerce, check=check, required=REQUIRED,
                       provenance=provenance,
                       known_columns=tuple(v.name for v in VARIABLES),
                       integer_columns=tuple(v.name for v in VARIABLES if v.kind == "binary"))
