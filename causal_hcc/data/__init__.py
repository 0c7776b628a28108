"""Data stage: load, map columns, validate the roles -> Cohort."""

from causal_hcc.data.cohort import Cohort, Exclusion, Labels, Roles
from causal_hcc.data.io import ColumnMapping, file_sha256, load_cohort, read_table
from causal_hcc.data.schema import StudyProfile, validate_frame

__all__ = ["Cohort", "ColumnMapping", "Exclusion", "Labels", "Roles", "StudyProfile",
           "file_sha256", "load_cohort", "read_table", "validate_frame"]
