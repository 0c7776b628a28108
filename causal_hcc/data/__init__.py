"""Data stage: load, map columns, validate the roles -> Cohort.

The names are resolved lazily (PEP 562): ``causal_hcc.data.units`` and the CLI's option
parsing do not load pandas.
"""

from causal_hcc._lazy import lazy_names

_LAZY = {"Cohort": "cohort", "Exclusion": "cohort", "Labels": "cohort", "Roles": "cohort",
         "ColumnMapping": "io", "file_sha256": "io", "load_cohort": "io", "read_table": "io",
         "StudyProfile": "schema", "validate_frame": "schema"}

__all__ = ["Cohort", "ColumnMapping", "Exclusion", "Labels", "Roles", "StudyProfile",
           "file_sha256", "load_cohort", "read_table", "validate_frame"]


__getattr__, __dir__ = lazy_names('causal_hcc.data', _LAZY, globals())
