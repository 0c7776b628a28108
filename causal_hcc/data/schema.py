"""The data contract (``data_dictionary.md``) in code, and the one validation gate.

Every stage after this one trusts a :class:`Cohort`: canonical column names, canonical
codings (yes/no variables as integers 1/0, categories as the lower-case labels of the
dictionary), no silent row loss. :func:`validate_frame` checks everything once, collects
every problem and raises a single :class:`~causal_hcc.errors.CohortError` listing them,
each naming the column, what was found, which rows (1-based data rows of the source file,
with patient ids) and the fix.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc import RECONSTRUCTED_LABEL
from causal_hcc.errors import CohortError, DataWarning


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

# Unambiguous spellings of yes/no accepted without a value map; anything else (e.g. 1/2
# codings) needs an explicit recode, because its direction cannot be guessed.
_YES = {"1", "1.0", "yes", "y", "true", "t"}
_NO = {"0", "0.0", "no", "n", "false", "f"}
MAX_LISTED = 5


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


@dataclass(frozen=True)
class Exclusion:
    """A row left out of the analysis, and why (only with ``missing="drop"``)."""

    row: int
    patient_id: str
    reason: str


@dataclass(frozen=True)
class Cohort:
    """A validated analysis dataset in canonical names and codings.

    Attributes
    ----------
    data : pandas.DataFrame
        Canonical columns only (unknown source columns are kept in ``extra``). Treat as
        read-only; stages copy before changing anything.
    source : str
        Where the data came from (a path, or the bundled reconstruction).
    reconstructed : bool
        True for the bundled pseudo-cohort. Every artefact made from it says so.
    n_read : int
        Rows read from the source, before any opt-in exclusion.
    exclusions : tuple of Exclusion
        Rows excluded (complete-case analysis only), with reasons.
    notes : tuple of str
        What was assumed or recoded while reading.
    sha256 : str or None
        SHA-256 of the source file, for provenance.
    """

    data: pd.DataFrame
    source: str
    reconstructed: bool = False
    n_read: int = 0
    exclusions: tuple[Exclusion, ...] = ()
    notes: tuple[str, ...] = ()
    sha256: str | None = None
    extra: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def n(self) -> int:
        return len(self.data)

    @property
    def n_treated(self) -> int:
        return int(self.data["local_therapy"].sum())

    @property
    def n_control(self) -> int:
        return self.n - self.n_treated

    @property
    def events(self) -> int:
        return int(self.data["death"].sum())

    @property
    def label(self) -> str:
        """Provenance line to print on every artefact made from this cohort."""
        if self.reconstructed:
            return RECONSTRUCTED_LABEL
        return f"Patient-level data from {self.source}"

    def subset(self, mask, description: str) -> "Cohort":
        """Rows where ``mask`` is true, as a new Cohort (e.g. a subgroup)."""
        mask = np.asarray(mask, dtype=bool)
        extra = None if self.extra is None else self.extra.loc[mask].reset_index(drop=True)
        return Cohort(self.data.loc[mask].reset_index(drop=True),
                      f"{self.source} [{description}]", self.reconstructed, self.n_read,
                      self.exclusions, self.notes, self.sha256, extra)

    def summary(self) -> str:
        lines = [self.label,
                 f"{self.n_read} rows read; {self.n} analysed "
                 f"({self.n_treated} local therapy, {self.n_control} no local therapy); "
                 f"{self.events} deaths."]
        if self.exclusions:
            lines.append(f"{len(self.exclusions)} rows excluded (complete-case analysis, "
                         "missing='drop'):")
            lines += [f"  row {e.row} ({e.patient_id}): {e.reason}" for e in self.exclusions]
        optional = [v.name for v in VARIABLES if not v.required and v.name in self.data]
        lines.append(f"Optional variables present: {', '.join(optional) or 'none'}.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _rows(df: pd.DataFrame, mask) -> str:
    """'rows 3, 7 (ids P003, P007)' for the first few offending rows, 1-based."""
    idx = np.flatnonzero(np.asarray(mask, dtype=bool))
    shown = idx[:MAX_LISTED]
    rows = ", ".join(str(int(df["_row"].iloc[i])) for i in shown)
    text = f"row{'s' if len(idx) > 1 else ''} {rows}"
    if "patient_id" in df and df["patient_id"].notna().iloc[shown].all():
        text += " (id " + ", ".join(str(df["patient_id"].iloc[i]) for i in shown) + ")"
    if len(idx) > MAX_LISTED:
        text += f" and {len(idx) - MAX_LISTED} more"
    return text


def _coerce_binary(col: pd.Series, name: str, df, problems, notes) -> pd.Series:
    text = col.astype("string").str.strip().str.lower()
    present = col.notna()
    out = pd.Series(np.nan, index=col.index, dtype=float)
    out[present & text.isin(_YES)] = 1.0
    out[present & text.isin(_NO)] = 0.0
    bad = present & out.isna()
    if bad.any():
        found = sorted(set(col[bad].astype(str)))[:MAX_LISTED]
        problems.append(
            f"Column '{name}': values {found} in {_rows(df, bad)}. Expected 1/0 (yes/no). "
            f"Recode, or give a value map (e.g. --recode {name}:Yes=1,No=0 or "
            f"--recode {name}:2=1,1=0).")
    spelled = present & ~bad & ~text.isin({"0", "1", "0.0", "1.0"})
    if spelled.any():
        notes.append(f"'{name}': read {sorted(set(col[spelled].astype(str)))} as 1/0.")
    return out


def _coerce_category(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    text = col.astype("string").str.strip()
    canon = {lvl.lower(): lvl for lvl in var.levels}
    mapped = text.str.lower().map(canon)
    present = col.notna()
    bad = present & mapped.isna()
    if bad.any():
        found = sorted(set(col[bad].astype(str)))[:MAX_LISTED]
        problems.append(
            f"Column '{var.name}': values {found} in {_rows(df, bad)}. Allowed: "
            f"{list(var.levels)}. Recode, or give a value map (e.g. --recode "
            f"{var.name}:{found[0]}={var.levels[0]}).")
    return mapped.astype(object).where(present & ~bad, None)


def _coerce_continuous(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    values = pd.to_numeric(col, errors="coerce")
    bad = col.notna() & values.isna()
    if bad.any():
        found = sorted(set(col[bad].astype(str)))[:MAX_LISTED]
        problems.append(f"Column '{var.name}': non-numeric values {found} in "
                        f"{_rows(df, bad)}. Give numbers in {var.unit or 'the stated unit'}.")
    lo, hi = var.bounds or (-np.inf, np.inf)
    below, above = values < lo, values > hi
    if below.any():
        what = "negative values" if lo == 0 else f"values below {lo}"
        problems.append(f"Column '{var.name}': {int(below.sum())} {what} ({_rows(df, below)}). "
                        f"Values must be >= {lo:g} {var.unit}.")
    if above.any():
        problems.append(f"Column '{var.name}': {int(above.sum())} values above {hi:g} "
                        f"({_rows(df, above)}). Check the unit ({var.unit}).")
    return values.astype(float)


def _coerce_date(col: pd.Series, var: Variable, df, problems) -> pd.Series:
    values = pd.to_datetime(col, errors="coerce")
    bad = col.notna() & values.isna()
    if bad.any():
        problems.append(f"Column '{var.name}': unreadable dates in {_rows(df, bad)}. "
                        "Use ISO dates (yyyy-mm-dd).")
    return values


def _missing_problem(name: str, df, mask) -> str:
    return (f"Column '{name}' (required): {int(mask.sum())} missing values "
            f"({_rows(df, mask)}). Fill them in, or pass missing='drop' "
            f"(CLI --missing drop) for a complete-case analysis; excluded rows are then "
            f"reported in every result.")


def validate_frame(frame: pd.DataFrame, *, source: str = "data frame",
                   require: tuple[str, ...] = (), missing: str = "raise",
                   reconstructed: bool = False, sha256: str | None = None,
                   notes: tuple[str, ...] = ()) -> Cohort:
    """Check a frame in canonical column names against the data contract.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per patient, columns already named as in ``data_dictionary.md`` (use
        :func:`causal_hcc.data.io.apply_mapping` first). Not modified.
    source : str
        Description of where the frame came from, carried into every result.
    require : tuple of str
        Optional variables the intended analysis needs (e.g. extra PS covariates); they
        are then checked like the required ones.
    missing : {"raise", "drop"}
        Missing values in required (or ``require``-d) columns raise by default;
        ``"drop"`` excludes those rows and records each exclusion with its reason.

    Returns
    -------
    Cohort

    Raises
    ------
    CohortError
        Listing every problem found, one line each (column, what, rows, fix).
    """
    if missing not in ("raise", "drop"):
        raise ValueError("missing must be 'raise' or 'drop'")
    problems: list[str] = []
    notes = list(notes)
    df = frame.reset_index(drop=True).copy()
    df["_row"] = np.arange(1, len(df) + 1)
    needed = list(dict.fromkeys(REQUIRED + tuple(require)))
    unknown_required = [c for c in require if c not in VARIABLE_BY_NAME]
    for name in unknown_required:
        problems.append(f"Column '{name}': not a variable of the data contract. Use one of "
                        f"{[v.name for v in VARIABLES]}, or map your column onto one.")
    for name in needed:
        if name in VARIABLE_BY_NAME and name not in df:
            problems.append(f"Column '{name}' (required): not found. Columns read: "
                            f"{[c for c in frame.columns][:30]}. Rename it or map it "
                            f"(e.g. --map {name}=YOUR_COLUMN).")
    if len(df) == 0:
        problems.append("The data has no rows.")

    out = pd.DataFrame(index=df.index)
    for var in VARIABLES:
        if var.name not in df:
            continue
        col = df[var.name]
        if var.kind == "id":
            out[var.name] = col.astype("string").str.strip().astype(object)
        elif var.kind == "binary":
            out[var.name] = _coerce_binary(col, var.name, df, problems, notes)
        elif var.kind == "category":
            out[var.name] = _coerce_category(col, var, df, problems)
        elif var.kind == "continuous":
            out[var.name] = _coerce_continuous(col, var, df, problems)
        else:
            out[var.name] = _coerce_date(col, var, df, problems)
    extra_cols = [c for c in frame.columns if c not in VARIABLE_BY_NAME]
    extra = frame.reset_index(drop=True)[extra_cols] if extra_cols else None

    # Missing values in the columns the analysis needs.
    drop = pd.Series(False, index=df.index)
    reasons: dict[int, list[str]] = {}
    for name in needed:
        if name not in out:
            continue
        miss = df[name].isna() | (df[name].astype("string").str.strip() == "")
        if not miss.any():
            continue
        if missing == "raise":
            problems.append(_missing_problem(name, df, miss))
        else:
            drop |= miss
            for i in np.flatnonzero(miss):
                reasons.setdefault(int(i), []).append(f"missing {name}")

    _check_consistency(out, df, problems, notes)

    if problems:
        raise CohortError(problems, header=f"{source}: {len(problems)} problem"
                          f"{'s' if len(problems) > 1 else ''} found; nothing was analysed.")

    exclusions = tuple(Exclusion(int(df["_row"].iloc[i]), str(out["patient_id"].iloc[i]),
                                 "; ".join(r)) for i, r in sorted(reasons.items()))
    keep = ~drop
    for col in [v.name for v in VARIABLES if v.kind == "binary" and v.name in out]:
        if not out[col].isna().any():
            out[col] = out[col].astype(int)
    data = out.loc[keep].reset_index(drop=True)
    extra = None if extra is None else extra.loc[keep.to_numpy()].reset_index(drop=True)
    if exclusions:
        notes.append(f"{len(exclusions)} of {len(df)} rows excluded (missing='drop').")
    # Post-exclusion checks that need the final analysis set.
    post: list[str] = []
    _check_arms(data, post)
    if post:
        raise CohortError(post, header=f"{source}: {len(post)} problem"
                          f"{'s' if len(post) > 1 else ''} found; nothing was analysed.")
    return Cohort(data, source, reconstructed, len(df), exclusions, tuple(notes), sha256,
                  extra)


def _check_consistency(out: pd.DataFrame, df: pd.DataFrame, problems, notes) -> None:
    """Cross-column rules: unique ids, zero times, treatment timing, NED bounds."""
    if "patient_id" in out:
        ids = out["patient_id"]
        dup = ids.notna() & ids.duplicated(keep=False)
        if dup.any():
            problems.append(f"Column 'patient_id': duplicate ids "
                            f"{sorted(set(ids[dup]))[:MAX_LISTED]} ({_rows(df, dup)}). "
                            "Each patient must appear once (one row per patient).")
    if "os_months" in out:
        zero = out["os_months"] == 0
        if zero.any():
            warnings.warn(f"Column 'os_months': {int(zero.sum())} zero follow-up times "
                          f"({_rows(df, zero)}). Kept; check they are not missing dates.",
                          DataWarning, stacklevel=3)
            notes.append(f"'os_months': {int(zero.sum())} zero times kept ({_rows(df, zero)}).")
    if {"months_to_local_therapy", "local_therapy", "os_months"} <= set(out):
        ttl, treated, os_m = out["months_to_local_therapy"], out["local_therapy"], out["os_months"]
        # Only where the time itself is valid, so one bad time is reported once.
        late = (treated == 1) & (os_m >= 0) & (ttl > os_m)
        if late.any():
            problems.append(f"Column 'months_to_local_therapy': {int(late.sum())} treated "
                            f"patients start local therapy after their follow-up ends "
                            f"({_rows(df, late)}). Check both dates; time to local therapy "
                            "must be <= os_months.")
        stray = (treated == 0) & ttl.notna()
        if stray.any():
            problems.append(f"Column 'months_to_local_therapy': values for untreated "
                            f"patients ({_rows(df, stray)}). Leave it empty when "
                            "local_therapy = 0, or check the treatment column.")
    if {"ned_cumulative_months", "os_months"} <= set(out):
        over = out["ned_cumulative_months"] > out["os_months"] + 1e-9
        if over.any():
            problems.append(f"Column 'ned_cumulative_months': exceeds os_months in "
                            f"{_rows(df, over)}. Time in NED is part of follow-up.")


def _check_arms(data: pd.DataFrame, problems) -> None:
    """Treatment must have two arms, each with at least one death."""
    if data.empty:
        problems.append("No rows left to analyse.")
        return
    levels = sorted(set(data["local_therapy"]))
    if len(levels) < 2:
        problems.append(f"Column 'local_therapy' (treatment): only one level {levels} in "
                        f"{len(data)} rows. Expected two groups (1 = local therapy, 0 = none); "
                        "check the column or the recode.")
        return
    for arm, name in ((1, "local therapy"), (0, "no local therapy")):
        if data.loc[data["local_therapy"] == arm, "death"].sum() == 0:
            problems.append(f"Column 'death': no deaths in the {name} arm "
                            f"(local_therapy = {arm}). Hazard ratios are not estimable; "
                            "check the event coding (1 = died).")
