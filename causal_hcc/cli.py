"""Command-line interface: ``causal-hcc SUBCOMMAND``.

Parses arguments and wires the pipeline stages together; computes nothing itself.
Exit codes: 0 success, 2 invalid input (one readable message, no traceback), 1 internal
failure.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

from causal_hcc import __version__
from causal_hcc.defaults import SEED
from causal_hcc.errors import CausalHccWarning, CohortError, NotEstimableError


def _positive_int(text: str) -> int:
    value = _number(text, int)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: must be a whole number >= 1")
    return value


def _count(text: str) -> int:
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value}: must be a whole number >= 0")
    return value


def _caliper(text: str) -> float:
    value = _number(text, float)
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number >= 0 (SD of the "
                                         "logit PS; 0 = no caliper)")
    return value


def _jobs(text: str) -> int:
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


def _formats(text: str) -> str:
    parts = [p.strip().lower() for p in text.split(",") if p.strip()]
    if parts == ["none"]:
        return "none"
    bad = [p for p in parts if p not in FORMATS]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"{text!r}: allowed formats are {', '.join(FORMATS)} "
                                         "(comma-separated), or none")
    return ",".join(parts)


def _times(text: str) -> tuple:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give times as numbers, e.g. 12,24,36") \
            from None
    if not values or any(not v > 0 or v == float("inf") for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: times must be finite numbers > 0")
    return values


def _add_data_options(parser: argparse.ArgumentParser) -> None:
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
    roles.add_argument("--landmarks", type=_times, metavar="T1,T2,...",
                       help="landmark times (default: round years within follow-up)")
    roles.add_argument("--horizons", type=_times, metavar="T1,T2",
                       help="RMST horizons (default: the latest landmarks both arms reach)")
    reading = parser.add_argument_group("reading files")
    reading.add_argument("--sheet", help="Excel sheet (name or 0-based index)")
    reading.add_argument("--header-row", type=_count, help="0-based header row")
    reading.add_argument("--encoding", help="text encoding (default utf-8; a BOM is dropped)")
    reading.add_argument("--decimal", choices=(".", ","), help="decimal mark of a CSV")


_DATA_FLAGS = {"data": "path", "study": "study", "mapping": "mapping", "missing": "missing",
               "id": "id", "time": "time", "event": "event", "treatment": "treatment",
               "treated": "treated", "treatment_start": "treatment_start",
               "outcome": "outcome", "time_zero": "time_zero", "title": "title",
               "covariates": "covariates", "outcome_covariates": "outcome_covariates",
               "subgroup": "subgroups", "candidates": "candidates",
               "categorical": "categorical", "post_baseline": "post_baseline",
               "time_unit": "time_unit", "arm_labels": "arm_labels", "sheet": "sheet",
               "header_row": "header_row", "encoding": "encoding", "decimal": "decimal"}


def _config(args):
    """The configuration: defaults, then the --config file, then the flags."""
    from causal_hcc.api import _tuple
    from causal_hcc.config import load_config
    config = load_config(getattr(args, "config", None))
    changes = {}
    for flag, key in _DATA_FLAGS.items():
        value = getattr(args, flag, None)
        if value is None:
            continue
        changes[key] = _tuple(value) if isinstance(getattr(config.data, key), tuple) \
            else value
    config = config.updated("data", **changes)
    if getattr(args, "landmarks", None):
        config = config.updated("crude", landmarks=args.landmarks)
    if getattr(args, "horizons", None):
        config = config.updated("adjust", horizons=args.horizons)
    return config


def _load(args, config=None, require=()):
    from causal_hcc.api import open_cohort
    from causal_hcc.data import ColumnMapping
    config = config or _config(args)
    mapping = ColumnMapping.from_cli(args.map, args.recode, config.data.mapping or None)
    return open_cohort(None, config.data, mapping=mapping, require=tuple(require))


def _landmarks(cohort, config):
    """(landmarks, horizons): configured, else the study's, else from the follow-up."""
    from causal_hcc.api import study_of
    study = study_of(cohort)
    landmarks = config.crude.landmarks or (study.LANDMARKS if study else None)
    horizons = config.adjust.horizons or (study.RMST_HORIZONS if study else None)
    return landmarks, horizons


def cmd_validate(args) -> int:
    """Read, map and check a file; print what was read and every problem."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        cohort = _load(args)
    print(cohort.summary())
    for w in caught:
        print(f"Warning: {w.message}")
    contract = ("data_dictionary.md (study yang2025)" if cohort.study == "yang2025"
                else "the roles named")
    print(f"Valid: the data follow {contract}.")
    return 0


def cmd_reconstruct(args) -> int:
    """Regenerate the reconstructed pseudo-cohort and print its calibration table."""
    from causal_hcc.studies.yang2025.calibration import calibration_table
    from causal_hcc.studies.yang2025.reconstruct import reconstruct_cohort
    from causal_hcc.reporting import frame_to_text
    start = time.perf_counter()
    frame = reconstruct_cohort(seed=args.seed) if args.seed is not None else reconstruct_cohort()
    elapsed = time.perf_counter() - start
    table = calibration_table(frame)
    if args.out:
        out = Path(args.out)
        if "reconstructed" not in out.name and "pseudo" not in out.name:
            out = out.with_name(f"{out.stem}_reconstructed_pseudo{out.suffix or '.csv'}")
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(out, index=False)
        print(f"Wrote {out} ({len(frame)} reconstructed pseudo-patients).")
    from causal_hcc.studies.yang2025 import RECONSTRUCTED_LABEL
    print(RECONSTRUCTED_LABEL)
    print(frame_to_text(table))
    checked = table["passed"].dropna()
    print(f"{int(checked.sum())} of {len(checked)} targets passed; "
          f"{int(table['passed'].isna().sum())} rows are report-only. "
          f"Generated in {elapsed:.1f} s.")
    return 0 if checked.all() else 1


def _out_dir(args, cohort, default: str) -> Path:
    """Output folder; for the bundled cohort the default name says it is pseudo-data."""
    if args.out:
        return Path(args.out)
    return Path(f"{default}_reconstructed_pseudodata" if cohort.reconstructed else default)


def _claims(args, config, cohort):
    """The claims check: --claims FILE, else the study's own claims, else None."""
    from causal_hcc.api import study_of
    from causal_hcc.claims import load_claims, verify_claims
    study = study_of(cohort)
    path = getattr(args, "claims", None) or config.crude.claims or \
        (study.claims_path() if study else None)
    return None if path is None else verify_claims(cohort, load_claims(path))


def _report_extras(cohort):
    """What the cohort's study adds to the report (None for a generic cohort)."""
    if cohort.study != "yang2025":
        return None
    from causal_hcc.studies.yang2025.report_extras import report_extras
    return report_extras(cohort)


def _crude(cohort, config):
    from causal_hcc.api import study_of
    from causal_hcc.survival import crude_analysis
    study = study_of(cohort)
    c = config.crude
    landmarks, _ = _landmarks(cohort, config)
    return crude_analysis(cohort, landmarks, conf_type=c.conf_type,
                          subgroup_col=c.subgroup or "default", ties=c.ties,
                          select_p=c.select_p,
                          cox_variables=study.table3.TABLE3_VARIABLES if study else None)


def cmd_crude(args) -> int:
    """The crude survival analyses, written to DIR, and (for a study) the side-by-side table."""
    import causal_hcc.reporting as report
    config = _config(args)
    config = config.updated("crude", conf_type=args.conf_type)
    cohort = _load(args, config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        crude = _crude(cohort, config)
        check = _claims(args, config, cohort)
    out = _out_dir(args, cohort, "results")
    written = report.write_crude(crude, check, cohort, out, formats=args.formats,
                                 warnings_seen=[str(w.message) for w in caught],
                                 ci_bands=args.ci_bands, study=_report_extras(cohort))
    print(crude.summary())
    if check is not None:
        print()
        print(check.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (crude.json, tables, figures).")
    return 0


def cmd_verify(args) -> int:
    """Check a claims file against the data; print and optionally write the table."""
    import causal_hcc.reporting as report
    config = _config(args)
    cohort = _load(args, config)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", CausalHccWarning)
        check = _claims(args, config, cohort)
    if check is None:
        raise CohortError(["No claims file: pass --claims FILE (JSON; see "
                           "causal_hcc.claims)."], header="Nothing to verify:")
    print(check.summary())
    if args.out:
        for path in report.write_claims_table(check, Path(args.out)):
            print(f"Wrote {path}")
    return 0


def _progress(args, what: str):
    """A one-line progress counter on stderr for long loops; None with --quiet."""
    if getattr(args, "quiet", False):
        return None

    def show(done: int, total: int) -> None:
        if done == total or done % max(1, total // 20) == 0:
            end = "\n" if done == total else ""
            print(f"\r{what}: {done}/{total}", end=end, file=sys.stderr, flush=True)
    return show


def _adjust(args, cohort, config, progress=True):
    from causal_hcc.effects import adjust
    a = config.adjust
    landmarks, horizons = _landmarks(cohort, config)
    return adjust(cohort, a.covariates or None, caliper_sd=a.caliper_sd or None,
                  ratio=a.ratio, replace=a.replace, order=a.order, n_boot=a.bootstrap,
                  seed=a.seed, jobs=config.report.jobs, landmarks=landmarks,
                  horizons=horizons,
                  progress=_progress(args, "bootstrap") if progress and a.bootstrap else None,
                  dask_address=getattr(args, "dask", None))


def _adjust_config(args, config):
    return config.updated("adjust", caliper_sd=getattr(args, "caliper", None),
                          ratio=getattr(args, "ratio", None),
                          replace=True if getattr(args, "replace", False) else None,
                          bootstrap=getattr(args, "bootstrap", None),
                          seed=getattr(args, "seed", None)) \
        .updated("report", jobs=getattr(args, "jobs", None))


def cmd_adjust(args) -> int:
    """PS matching and IPTW: balance, adjusted HRs, adjusted curves, bootstrap CIs."""
    import causal_hcc.reporting as report
    config = _adjust_config(args, _config(args))
    cohort = _load(args, config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        result = _adjust(args, cohort, config)
    out = _out_dir(args, cohort, "results")
    written = report.write_adjust(result, cohort, out, formats=args.formats,
                                  warnings_seen=[str(w.message) for w in caught],
                                  study=_report_extras(cohort))
    print(result.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (effects.json, balance.csv, "
          "propensity.csv, matched_pairs.csv, figures).")
    return 0


def _sensitivity(args, cohort, effects, config, quiet=False):
    from causal_hcc.api import study_of
    from causal_hcc.sensitivity import run_sensitivity
    study = study_of(cohort)
    extras = {}
    if study is not None and hasattr(study, "sensitivity_extras"):
        extras = study.sensitivity_extras(cohort, n_sim_ned=config.sensitivity.n_sim_ned,
                                          seed=config.sensitivity.seed)
    return run_sensitivity(cohort, effects, covariates=config.adjust.covariates or None,
                           jobs=config.report.jobs, seed=config.sensitivity.seed,
                           progress=None if quiet else _progress(args, "specification grid"),
                           **extras)


def cmd_sensitivity(args) -> int:
    """E-values, specification grid, immortal time, tipping points, subgroups (+ study's)."""
    import causal_hcc.reporting as report
    config = _adjust_config(args, _config(args))
    config = config.updated("sensitivity", seed=args.seed, n_sim_ned=args.n_sim_ned)
    cohort = _load(args, config)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        effects = _adjust(args, cohort, config)
        result = _sensitivity(args, cohort, effects, config)
    out = _out_dir(args, cohort, "results")
    written, _ = report.write_sensitivity(result, out, formats=args.formats)
    print(result.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (sensitivity.json, CSVs, figures).")
    return 0


def cmd_report(args) -> int:
    """Everything in one run: validation, crude, PSM/IPTW, sensitivity, one report."""
    import platform
    from datetime import datetime, timezone

    import numpy as np

    import causal_hcc.reporting as report
    start = time.perf_counter()
    config = _adjust_config(args, _config(args))
    config = config.updated("report", quiet=args.quiet or None,
                            formats=tuple(args.formats.split(",")) if args.formats else None)
    if args.no_sensitivity:
        config = config.updated("sensitivity", run=False)
    quiet = config.report.quiet
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        cohort = _load(args, config)
    input_notes = [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        say("crude survival analyses ...")
        crude = _crude(cohort, config)
        check = _claims(args, config, cohort)
        say("propensity scores, matching, weighting ...")
        effects = _adjust(args, cohort, config, progress=not quiet)
        sensitivity = None
        if config.sensitivity.run:
            say("sensitivity analyses ...")
            sensitivity = _sensitivity(args, cohort, effects, config, quiet=quiet)
    out = _out_dir(args, cohort, "report")
    run_info = {"package_version": __version__, "command": "causal-hcc report",
                "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "data": cohort.source, "data_sha256": cohort.sha256,
                "reconstructed": cohort.reconstructed, "study": cohort.study,
                "n_excluded": cohort.n_excluded, "options": config.to_dict(),
                "seeds": {"bootstrap": config.adjust.seed,
                          "sensitivity": config.sensitivity.seed},
                "python": platform.python_version(), "numpy": np.__version__}
    say("writing the report ...")
    written = report.write_report(cohort, crude, check, effects, out, sensitivity=sensitivity,
                                  formats=config.report.formats,
                                  warnings_seen=[str(w.message) for w in caught],
                                  run_info=run_info, input_notes=input_notes,
                                  study=_report_extras(cohort))
    elapsed = time.perf_counter() - start
    run_info["seconds"] = round(elapsed, 2)
    report.write_json(run_info, out / "run.json")
    print(cohort.label)
    print(f"Report: {out / 'report.html'} ({len(written)} files in {out}/, "
          f"{elapsed:.1f} s).")
    return 0


def cmd_config(args) -> int:
    from causal_hcc.config import defaults_toml
    print(defaults_toml())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="causal-hcc",
        description="How much of a published survival benefit survives adjustment for "
                    "confounding, for any observational survival study: name your columns "
                    "with --data FILE --time COL --event COL --treatment COL --covariates "
                    "A,B,C. Without --data it runs on the bundled RECONSTRUCTED "
                    "pseudo-cohort of Yang et al. 2025 (not the study's patients).")
    parser.add_argument("--version", action="version", version=f"causal-hcc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("validate", help="read and check a data file against the dictionary")
    _add_data_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("reconstruct",
                       help="regenerate the reconstructed pseudo-cohort; print its calibration")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the bundled one)")
    p.add_argument("--out", metavar="FILE", help="write the cohort CSV here")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("crude", help="reproduce the paper's crude survival analyses (KM, "
                                     "log-rank, landmarks, medians, Cox) side by side with "
                                     "the published numbers")
    _add_data_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default results/, or "
                   "results_reconstructed_pseudodata/ for the bundled cohort)")
    p.add_argument("--claims", metavar="FILE", help="claims file (default: the study's own; "
                   "none for other data)")
    p.add_argument("--conf-type", choices=("log-log", "log", "plain"), default="log-log",
                   help="scale of KM confidence intervals (default log-log; R: log; SPSS: plain)")
    p.add_argument("--formats", type=_formats, default="png,svg",
                   help="figure formats: png, svg, pdf (comma-separated) or none")
    p.add_argument("--ci-bands", action="store_true", help="shade 95%% CI bands on the KM "
                   "figures")
    p.set_defaults(func=cmd_crude)

    p = sub.add_parser("adjust", help="propensity-score matching and IPTW: balance and "
                                      "adjusted hazard ratios of treatment")
    _add_data_options(p)
    p.add_argument("--caliper", type=_caliper, default=None,
                   help="caliper in SD of the logit PS (default 0.2; 0 = no caliper)")
    p.add_argument("--ratio", type=_positive_int, default=None,
                   help="controls per treated patient (default 1)")
    p.add_argument("--replace", action="store_true", help="match with replacement")
    p.add_argument("--bootstrap", type=_count, default=None, metavar="N",
                   help="bootstrap replicates (default 1000; 0 skips)")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--jobs", type=_jobs, default=None, help="parallel workers (default 1)")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap on this Dask "
                   "scheduler (needs the 'dask' extra); same results as locally")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--formats", type=_formats, default="png,svg",
                   help="figure formats: png, svg, pdf or none")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_adjust)

    p = sub.add_parser("sensitivity", help="E-values, specification grid, immortal time, "
                                           "unmeasured-confounder tipping points, subgroups")
    _add_data_options(p)
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--jobs", type=_jobs, default=None, help="parallel workers for the grid")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--bootstrap", type=_count, default=0, metavar="N",
                   help="bootstrap replicates of the adjusted HRs (default 0: Wald CIs)")
    p.add_argument("--n-sim-ned", type=_positive_int, default=None,
                   help="NED null simulations (study yang2025)")
    p.add_argument("--formats", type=_formats, default="png,svg",
                   help="figure formats: png, svg, pdf or none")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("report", help="everything in one run: validation, crude "
                                      "reproduction, PSM and IPTW, sensitivity, one HTML report")
    _add_data_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default report/, or "
                   "report_reconstructed_pseudodata/ for the bundled cohort)")
    p.add_argument("--bootstrap", type=_count, default=None, metavar="N")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--jobs", type=_jobs, default=None, help="parallel workers")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap on this Dask "
                   "scheduler (needs the 'dask' extra)")
    p.add_argument("--formats", type=_formats, default=None,
                   help="figure formats: png, svg, pdf or none (default png,svg)")
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity analyses")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="print every option with its default (TOML)")
    p.add_argument("--defaults", action="store_true", help="print the defaults (the only mode)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("verify", help="check a manuscript's claims file against the data")
    _add_data_options(p)
    p.add_argument("--claims", metavar="FILE", help="claims file (JSON; default: the study's "
                   "own)")
    p.add_argument("--out", metavar="DIR", help="write paper_vs_reproduced.csv/.md here")
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except (CohortError, NotEstimableError) as exc:
        print(f"causal-hcc {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal failure: one paragraph, exit 1
        print(f"causal-hcc {args.command}: internal error ({type(exc).__name__}: {exc}). "
              "Please report it with the command you ran.", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
