"""Helpers of the sensitivity test modules (not a test module itself)."""

from causal_hcc.data import Roles, validate_frame
from causal_hcc.studies import yang2025

HCC_CONFOUNDERS = ("ecog", "intrahepatic_ccr", "vascular_invasion")


def hcc_cohort(frame, source="test frame", covariates=None, **roles):
    """A cohort in the Yang 2025 column names, validated generically (no study profile):
    the roles a user would name for such data."""
    covariates = tuple(c for c in (HCC_CONFOUNDERS if covariates is None else covariates)
                       if c in frame)
    start = "months_to_local_therapy" if "months_to_local_therapy" in frame else None
    subgroups = ("oligometastatic",) if "oligometastatic" in frame else ()
    r = Roles(time="os_months", event="death", treatment="local_therapy",
              id="patient_id" if "patient_id" in frame else None, covariates=covariates,
              subgroups=subgroups, treatment_start=start, **roles)
    return validate_frame(frame, roles=r, labels=yang2025.LABELS, source=source)


def load_bundled():
    return yang2025.load_bundled()
