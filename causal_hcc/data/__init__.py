"""Data stage: load, map columns, validate the roles -> Cohort.

The names are resolved lazily (PEP 562): ``causal_hcc.data.units`` and the CLI's option
parsing do not load pandas.
"""

_LAZY = {"Cohort": "cohort", "Exclusion": "cohort", "Labels": "cohort", "Roles": "cohort",
         "ColumnMapping": "io", "file_sha256": "io", "load_cohort": "io", "read_table": "io",
         "StudyProfile": "schema", "validate_frame": "schema"}

__all__ = ["Cohort", "ColumnMapping", "Exclusion", "Labels", "Roles", "StudyProfile",
           "file_sha256", "load_cohort", "read_table", "validate_frame"]


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'causal_hcc.data' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(f"causal_hcc.data.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
