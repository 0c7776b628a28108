"""The verbs a notebook user needs: ``crude``, ``adjust``, ``sensitivity``, ``report``.

Each takes data as a pandas DataFrame (with role names), a file path, a validated
:class:`~causal_hcc.data.Cohort`, or nothing (the bundled study), and returns the stage's
frozen result, which has ``.to_frame()`` and ``.summary()``::

    import causal_hcc as ch
    from lifelines.datasets import load_rossi
    fit = ch.adjust(load_rossi(), time="week", event="arrest", treatment="fin",
                    covariates=["age", "prio", "wexp"], time_unit="weeks", n_boot=200)
    fit.to_frame()[["method", "estimand", "hr", "ci_lower", "ci_upper"]]

The CLI goes through :func:`open_cohort` too, so both give the same numbers.
"""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path

import pandas as pd

from causal_hcc.config import DataOptions, as_tuple  # noqa: F401  (as_tuple re-exported)
from causal_hcc.data.cohort import Cohort, Roles
from causal_hcc.data.io import ColumnMapping, load_cohort
from causal_hcc.data.schema import validate_frame
from causal_hcc.errors import CohortError

ROLE_KEYS = ("id", "time", "event", "treatment", "treated", "covariates",
             "outcome_covariates", "subgroups", "candidates", "categorical", "post_baseline",
             "treatment_start", "time_unit", "arm_labels", "outcome", "time_zero", "title",
             "study", "missing", "sheet", "header_row", "encoding", "decimal")


def _study(name: str):
    from causal_hcc.studies import get_study
    return get_study(name)


def study_of(cohort: Cohort):
    """The study profile module of a cohort (None for a generic one)."""
    return _study(cohort.study) if cohort.study else None


def data_options(**kwargs) -> DataOptions:
    """DataOptions from keyword arguments (lists or comma-separated text for tuples)."""
    known = {f.name: f for f in fields(DataOptions)}
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"unknown data options {unknown}; use {sorted(known)}")
    values = {}
    for key, value in kwargs.items():
        if value is None:
            continue
        default = known[key].default
        values[key] = as_tuple(value) if isinstance(default, tuple) else value
    return replace(DataOptions(), **values)


def _which_study(opts: DataOptions, has_data: bool) -> str | None:
    if opts.study not in ("auto", "none", "yang2025"):
        raise CohortError([f"study {opts.study!r}: allowed values are auto, none, yang2025."])
    if opts.study == "none":
        if not has_data:
            raise CohortError(["study none without data: give --data FILE and name the "
                               "roles (--time --event --treatment --covariates)."])
        return None
    if opts.study == "yang2025":
        return "yang2025"
    named = opts.time or opts.event or opts.treatment
    return None if (has_data and named) else "yang2025"


def _roles(opts: DataOptions, base: Roles | None) -> Roles:
    if base is None:
        missing = [k for k in ("time", "event", "treatment") if not getattr(opts, k)]
        if missing:
            raise CohortError([f"The {k} column is not named (--{k} COL)." for k in missing],
                              header="Name the roles of your columns:")
    base = base or Roles(time=opts.time, event=opts.event, treatment=opts.treatment)
    changes = {k: getattr(opts, k) for k in ("time", "event", "treatment") if getattr(opts, k)}
    changes.update({k: getattr(opts, k) for k in ("covariates", "outcome_covariates",
                                                  "subgroups", "candidates", "categorical",
                                                  "post_baseline") if getattr(opts, k)})
    if opts.id:
        changes["id"] = opts.id
    if opts.treatment_start:
        changes["treatment_start"] = opts.treatment_start
    return replace(base, **changes)


def _labels(opts: DataOptions) -> dict:
    arms = as_tuple(opts.arm_labels)
    return {"time_unit": opts.time_unit or None, "arm_labels": arms or None,
            "outcome": opts.outcome or None, "time_zero": opts.time_zero or None,
            "title": opts.title or None}


def _read_options(opts: DataOptions) -> dict:
    sheet = opts.sheet
    if isinstance(sheet, str) and sheet.strip().isdigit():
        sheet = int(sheet)
    out = {"header_row": opts.header_row, "encoding": opts.encoding, "decimal": opts.decimal}
    if sheet != "":
        out["sheet"] = sheet
    return out


def open_cohort(data=None, options: DataOptions | None = None, *,
                mapping: ColumnMapping | None = None, require: tuple = ()) -> Cohort:
    """A validated Cohort from a DataFrame, a file, an existing Cohort or the bundled study.

    ``options`` names the roles and labels (:class:`~causal_hcc.config.DataOptions`); a
    study profile supplies defaults for whatever is not named (the bundled study when no
    data is given, or when a file is given without role flags: it then follows
    ``data_dictionary.md``).
    """
    opts = options or DataOptions()
    if isinstance(data, Cohort):
        return data
    if data is None and opts.path:
        data = opts.path
    if mapping is None and opts.mapping and data is not None:
        mapping = ColumnMapping.from_file(opts.mapping)
    study_name = _which_study(opts, data is not None)
    if data is None and mapping is not None and (mapping.columns or mapping.values):
        raise CohortError(["--map/--recode/--mapping given without --data: the bundled "
                           "cohort already uses the dictionary's names."],
                          header="The column mapping is not valid:")
    study = _study(study_name) if study_name else None
    base = study.ROLES if study else None
    roles = _roles(opts, base)
    labels = _labels(opts)
    treated = opts.treated or None
    if data is None:
        return study.load_bundled(require=tuple(require), roles=roles)
    profile = study.PROFILE if study else None
    if isinstance(data, pd.DataFrame):
        frame = data
        if mapping is not None:
            frame, notes = mapping.apply(frame, profile.known_columns if profile else None,
                                         study.ALIASES if study else None)
        return validate_frame(frame, roles=roles, study=profile, labels=labels,
                              require=tuple(require), missing=opts.missing,
                              treated_value=treated, source="data frame")
    return as_reconstruction(load_cohort(
        Path(data), mapping, roles=roles, study=profile, require=tuple(require),
        missing=opts.missing, treated_value=treated, labels=labels,
        read_options=_read_options(opts), aliases=study.ALIASES if study else None))


def as_reconstruction(cohort: Cohort) -> Cohort:
    """``cohort``, marked reconstructed and labelled so when its file is a study's bundled
    pseudo-cohort (same SHA-256), whatever profile and roles it was read with."""
    from causal_hcc.studies import reconstruction_label
    label = reconstruction_label(cohort.sha256)
    if label is None or (cohort.reconstructed and cohort.provenance == label):
        return cohort
    return replace(cohort, reconstructed=True, provenance=label)


def _split(kwargs: dict) -> tuple[DataOptions, dict]:
    data_kw = {k: kwargs.pop(k) for k in list(kwargs) if k in ROLE_KEYS}
    return data_options(**data_kw), kwargs


def cohort(data=None, **roles) -> Cohort:
    """``open_cohort`` with roles as keywords: ``cohort(df, time="t", event="e", ...)``."""
    opts, rest = _split(dict(roles))
    if rest:
        raise TypeError(f"unknown arguments {sorted(rest)}")
    return open_cohort(data, opts)


def _study_defaults(c: Cohort) -> dict:
    study = study_of(c)
    if study is None:
        return {}
    return {"landmarks": study.LANDMARKS, "horizons": study.RMST_HORIZONS}


def crude(data=None, *, landmarks=None, **kwargs):
    """The crude survival analysis (:func:`causal_hcc.survival.crude_analysis`)."""
    from causal_hcc.survival.crude import crude_analysis
    opts, rest = _split(kwargs)
    c = open_cohort(data, opts)
    study = study_of(c)
    if landmarks is None:
        landmarks = _study_defaults(c).get("landmarks")
    if study is not None and "cox_variables" not in rest:
        rest["cox_variables"] = study.table3.TABLE3_VARIABLES
    return crude_analysis(c, landmarks, **rest)


def adjust(data=None, *, n_boot: int | None = None, **kwargs):
    """PS matching and IPTW with balance and adjusted HRs (:func:`causal_hcc.effects.adjust`).

    Role keywords (``time=``, ``event=``, ``treatment=``, ``covariates=``, ...) name the
    columns of a DataFrame or file; the rest go to :func:`causal_hcc.effects.adjust`
    (``caliper_sd``, ``ratio``, ``replace``, ``seed``, ``landmarks``, ``horizons`` ...).
    """
    import causal_hcc.defaults as defaults
    from causal_hcc.effects import adjust as _adjust
    opts, rest = _split(kwargs)
    c = open_cohort(data, opts)
    for key, value in _study_defaults(c).items():
        rest.setdefault(key, value)
    return _adjust(c, n_boot=defaults.N_BOOT if n_boot is None else n_boot, **rest)


def sensitivity(data=None, *, effects=None, **kwargs):
    """The sensitivity analyses (:func:`causal_hcc.sensitivity.run_sensitivity`)."""
    from causal_hcc.sensitivity import run_sensitivity
    opts, rest = _split(kwargs)
    c = open_cohort(data, opts)
    study = study_of(c)
    if study is not None and hasattr(study, "sensitivity_extras"):
        for key, value in study.sensitivity_extras(c).items():
            rest.setdefault(key, value)
    if effects is None:
        effects = adjust(c, n_boot=0)
    return run_sensitivity(c, effects, **rest)


def report(data=None, *, out, n_boot: int | None = None, formats="png", **kwargs) -> Path:
    """The whole re-analysis written to ``out`` (report.html and every table and figure)."""
    from causal_hcc.cli import main
    opts, rest = _split(kwargs)
    if rest:
        raise TypeError(f"unknown arguments {sorted(rest)}")
    if isinstance(data, (pd.DataFrame, Cohort)):
        raise TypeError("report() reads a file (it records the file's SHA-256); write the "
                        "frame to CSV first, or use crude/adjust/sensitivity on the frame.")
    argv = ["report", "--out", str(out), "--formats", formats if isinstance(formats, str)
            else ",".join(formats), "--quiet"]
    if data is not None:
        argv += ["--data", str(data)]
    if n_boot is not None:
        argv += ["--bootstrap", str(n_boot)]
    for f in fields(DataOptions):
        value = getattr(opts, f.name)
        if value in ("", (), None) or value == f.default or f.name == "path":
            continue
        flag = "--" + f.name.replace("_", "-")
        argv += [flag, ",".join(map(str, value)) if isinstance(value, tuple) else str(value)]
    code = main(argv)
    if code != 0:
        raise CohortError([f"causal-hcc report exited with {code}"])
    return Path(out)
