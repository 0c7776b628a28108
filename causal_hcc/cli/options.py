"""Command-line options: argument types with their allowed ranges, the data and role
flags every data command shares, and the configuration they build (defaults, then
``--config``, then flags)."""

from __future__ import annotations

import argparse
import sys



def positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be a whole number >= 1")
    return value


def count_arg(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be a whole number >= 0")
    return value


def caliper_arg(text: str) -> float:
    value = _number(text, float)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number >= 0 (SD of the "
                                         "logit PS; 0 = no caliper)")
    return value


def jobs_arg(text: str) -> int:
    value = _number(text, int)
    if value == 0 or value < -1:
        raise argparse.ArgumentTypeError(f"{value}: use a whole number >= 1 (workers), or -1 "
                                         "for one per core")
    return value


def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {'whole ' if kind is int else ''}"
                                         "number") from None


FORMATS = ("png", "svg", "pdf")


def formats_arg(text: str) -> str:
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if parts == ["none"]:
        return "none"
    bad = [p for p in parts if p not in FORMATS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed formats are {', '.join(FORMATS)} "
                                         "(comma-separated), or none")
    return ",".join(parts)


def times_arg(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give times as numbers, e.g. 12,24,36") \
            from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: times must be finite numbers > 0")
    return values


def add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "data (default: the bundled reconstructed pseudo-cohort of Yang et al. 2025)")
    group.add_argument("--data", metavar="FILE",
                       help="patient-level file: .csv, .xlsx, .parquet, .sav (SPSS), .dta (Stata)")
    group.add_argument("--config", metavar="FILE", help="TOML options (see causal-hcc config "
                       "--defaults); flags override it")
    group.add_argument("--study", choices=("auto", "yang2025", "none"), default=None,
                       help="study profile: auto (default: yang2025 for the bundled cohort or "
                            "a file in data_dictionary.md's names; none when --time/--event/"
                            "--treatment name the roles), yang2025, or none")
    group.add_argument("--map", action="append", default=[], metavar="NAME=SOURCE",
                       help="rename a source column, e.g. --map os_months=OS_months (repeatable)")
    group.add_argument("--recode", action="append", default=[], metavar="NAME:SRC=DST,...",
                       help="recode values of a column, e.g. --recode death:2=1,1=0 (repeatable)")
    group.add_argument("--mapping", metavar="FILE",
                       help="TOML/JSON mapping file with [columns] and [values.NAME] tables")
    group.add_argument("--missing", choices=("raise", "drop"), default=None,
                       help="missing values in needed columns: raise (default) or drop rows "
                            "(complete-case; exclusions listed in exclusions.csv)")
    roles = parser.add_argument_group("roles (any study: name your columns)")
    for flag, text in (("id", "patient id column (default: row numbers)"),
                       ("time", "follow-up time column"),
                       ("event", "event column (1 = event, 0 = censored)"),
                       ("treatment", "treatment column (two groups)"),
                       ("treated", "value of the treatment column that marks the treated "
                                   "group, when it is not 1/yes"),
                       ("treatment-start", "time from time zero to the start of treatment "
                                           "(immortal-time analyses)"),
                       ("outcome", "outcome name for labels, e.g. death"),
                       ("time-zero", "what time zero is, e.g. 'randomisation'"),
                       ("title", "report title")):
        roles.add_argument(f"--{flag}", metavar="TEXT" if flag in ("outcome", "time-zero",
                                                                   "title") else "COL",
                           help=text)
    for flag, text in (("covariates", "propensity-score covariates"),
                       ("outcome-covariates", "extra covariates of the outcome models"),
                       ("subgroup", "subgroup variables (repeat the arm comparison)"),
                       ("candidates", "covariates the specification grid may add"),
                       ("categorical", "covariates to treat as categorical"),
                       ("post-baseline", "covariates measured after time zero (flagged)")):
        roles.add_argument(f"--{flag}", metavar="A,B,C", help=text)
    roles.add_argument("--time-unit", choices=("days", "weeks", "months", "years"),
                       help="unit of the time column (default months)")
    roles.add_argument("--arm-labels", metavar="TREATED,CONTROL", help="names of the arms")
    roles.add_argument("--landmarks", type=times_arg, metavar="T1,T2,...",
                       help="landmark times (default: round years within follow-up)")
    roles.add_argument("--horizons", type=times_arg, metavar="T1,T2",
                       help="RMST horizons (default: the latest landmarks both arms reach)")
    reading = parser.add_argument_group("reading files")
    reading.add_argument("--sheet", help="Excel sheet (name or 0-based index)")
    reading.add_argument("--header-row", type=count_arg, help="0-based header row")
    reading.add_argument("--encoding", help="text encoding (default utf-8; a BOM is dropped)")
    reading.add_argument("--decimal", choices=(".", ","), help="decimal mark of a CSV")


DATA_FLAGS = {"data": "path", "study": "study", "mapping": "mapping", "missing": "missing",
               "id": "id", "time": "time", "event": "event", "treatment": "treatment",
               "treated": "treated", "treatment_start": "treatment_start",
               "outcome": "outcome", "time_zero": "time_zero", "title": "title",
               "covariates": "covariates", "outcome_covariates": "outcome_covariates",
               "subgroup": "subgroups", "candidates": "candidates",
               "categorical": "categorical", "post_baseline": "post_baseline",
               "time_unit": "time_unit", "arm_labels": "arm_labels", "sheet": "sheet",
               "header_row": "header_row", "encoding": "encoding", "decimal": "decimal"}


def config_from_args(args):
    """The configuration: defaults, then the --config file, then the flags."""
    from causal_hcc.config import as_tuple, load_config
    config = load_config(getattr(args, "config", None))
    changes = {}
    for flag, key in DATA_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        changes[key] = as_tuple(value) if isinstance(getattr(config.data, key), tuple) \
            else value
    config = config.updated("data", **changes)
    if getattr(args, "landmarks", None):
        config = config.updated("crude", landmarks=args.landmarks)
    if getattr(args, "horizons", None):
        config = config.updated("adjust", horizons=args.horizons)
    return config


def load_from_args(args, config=None, require=()):
    from causal_hcc.api import open_cohort
    from causal_hcc.data import ColumnMapping
    config = config or config_from_args(args)
    mapping = ColumnMapping.from_cli(args.map, args.recode, config.data.mapping or None)
    return open_cohort(None, config.data, mapping=mapping, require=tuple(require))


def landmarks_for(cohort, config):
    """(landmarks, horizons): configured, else the study's, else from the follow-up."""
    from causal_hcc.api import study_of
    study = study_of(cohort)
    landmarks = config.crude.landmarks or (study.LANDMARKS if study else None)
    horizons = config.adjust.horizons or (study.RMST_HORIZONS if study else None)
    return landmarks, horizons


def progress_bar(args, what: str):
    """A one-line progress counter on stderr for long loops; None with --quiet."""
    if getattr(args, "quiet", False):
        return None

    def show(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            end = "\n" if done == total else ""
            print(f"\r{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)
    return show


def adjust_config(args, config):
    return config.updated("adjust", caliper_sd=getattr(args, "caliper", None),
                          ties=getattr(args, "ties", None),
                          ratio=getattr(args, "ratio", None),
                          replace=True if getattr(args, "replace", False) else None,
                          bootstrap=getattr(args, "bootstrap", None),
                          seed=getattr(args, "seed", None)) \
        .updated("report", jobs=getattr(args, "jobs", None))
