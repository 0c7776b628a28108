"""Data stage: load, map columns, validate against the data dictionary -> Cohort."""

from causal_hcc.data.io import (ColumnMapping, bundled_cohort_path, load, load_bundled,
                                load_cohort, read_table)
from causal_hcc.data.schema import (DEFAULT_CONFOUNDERS, REQUIRED, VARIABLES, Cohort,
                                    confounders_for, validate_frame)

__all__ = ["ColumnMapping", "Cohort", "DEFAULT_CONFOUNDERS", "REQUIRED", "VARIABLES",
           "bundled_cohort_path", "confounders_for", "load", "load_bundled", "load_cohort",
           "read_table", "validate_frame"]
