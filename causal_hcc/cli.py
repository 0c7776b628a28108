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
from causal_hcc.errors import CausalHccWarning, CohortError, NotEstimableError


def _add_data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data (default: the bundled reconstructed pseudo-cohort)")
    group.add_argument("--data", metavar="FILE",
                       help="patient-level file: .csv, .xlsx, .parquet, .sav (SPSS), .dta (Stata)")
    group.add_argument("--map", action="append", default=[], metavar="CANON=SOURCE",
                       help="map a source column onto a dictionary variable, e.g. "
                            "--map os_months=OS_months --map death=status (repeatable)")
    group.add_argument("--recode", action="append", default=[], metavar="NAME:SRC=DST,...",
                       help="recode values of a variable, e.g. --recode death:2=1,1=0 or "
                            "--recode sex:M=male,F=female (repeatable)")
    group.add_argument("--mapping", metavar="FILE",
                       help="TOML/JSON mapping file with [columns] and [values.NAME] tables")
    group.add_argument("--missing", choices=("raise", "drop"), default="raise",
                       help="missing values in needed columns: raise (default) or drop rows "
                            "(complete-case; exclusions reported)")


def _load(args, require=()):
    from causal_hcc.data import ColumnMapping, load
    for flag, canon in (("time", "os_months"), ("event", "death"), ("treatment", "local_therapy")):
        if getattr(args, flag, None):
            args.map = [*args.map, f"{canon}={getattr(args, flag)}"]
    if args.data is None and (args.map or args.recode or args.mapping):
        raise CohortError(["--map/--recode/--mapping given without --data: the bundled "
                           "cohort already uses the dictionary's names."],
                          header="The column mapping is not valid:")
    mapping = ColumnMapping.from_cli(args.map, args.recode, args.mapping)
    return load(args.data, mapping, require=tuple(require), missing=args.missing)


def cmd_validate(args) -> int:
    """Read, map and check a file; print what was read and every problem."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        cohort = _load(args)
    print(cohort.summary())
    for w in caught:
        print(f"Warning: {w.message}")
    print("Valid: the data follow data_dictionary.md.")
    return 0


def cmd_reconstruct(args) -> int:
    """Regenerate the reconstructed pseudo-cohort and print its calibration table."""
    from causal_hcc.data.calibration import calibration_table
    from causal_hcc.data.reconstruct import reconstruct_cohort
    from causal_hcc.report import frame_to_text
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
    from causal_hcc import RECONSTRUCTED_LABEL
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


def cmd_crude(args) -> int:
    """The paper's crude survival analyses, written to DIR, and the side-by-side table."""
    from causal_hcc import claims as claims_mod
    from causal_hcc import report
    from causal_hcc.survival import crude_analysis
    cohort = _load(args, require=())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        crude = crude_analysis(cohort, conf_type=args.conf_type)
        check = claims_mod.verify_claims(cohort, claims_mod.load_claims(args.claims))
    out = _out_dir(args, cohort, "results")
    written = report.write_crude(crude, check, cohort, out, formats=args.formats,
                                  warnings_seen=[str(w.message) for w in caught],
                                  ci_bands=args.ci_bands)
    print(crude.summary())
    print()
    print(check.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (crude.json, tables, figures).")
    return 0


def cmd_verify(args) -> int:
    """Check a claims file against the data; print and optionally write the table."""
    from causal_hcc import claims as claims_mod
    from causal_hcc import report
    cohort = _load(args)
    claims = claims_mod.load_claims(args.claims)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always", CausalHccWarning)
        check = claims_mod.verify_claims(cohort, claims)
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


def cmd_adjust(args) -> int:
    """PS matching and IPTW: balance, adjusted HRs, adjusted curves, bootstrap CIs."""
    from causal_hcc import report
    from causal_hcc.effects import adjust
    covariates = tuple(c.strip() for c in args.covariates.split(",")) if args.covariates \
        else None
    cohort = _load(args, require=covariates or ())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        result = adjust(cohort, covariates, caliper_sd=args.caliper, ratio=args.ratio,
                        replace=args.replace, n_boot=args.bootstrap, seed=args.seed,
                        jobs=args.jobs, progress=_progress(args, "bootstrap"),
                        dask_address=args.dask)
    out = _out_dir(args, cohort, "results")
    written = report.write_adjust(result, cohort, out, formats=args.formats,
                                  warnings_seen=[str(w.message) for w in caught])
    print(result.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (effects.json, balance.csv, "
          "propensity.csv, matched_pairs.csv, figures).")
    return 0


def cmd_sensitivity(args) -> int:
    """E-values, specification grid, immortal time, tipping points, subgroups, NED null."""
    from causal_hcc import report
    from causal_hcc.effects import adjust
    from causal_hcc.sensitivity import run_sensitivity
    cohort = _load(args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        effects = adjust(cohort, n_boot=args.bootstrap, seed=args.seed, jobs=args.jobs,
                         progress=_progress(args, "bootstrap") if args.bootstrap else None)
        result = run_sensitivity(cohort, effects, jobs=args.jobs, seed=args.seed,
                                 n_sim_ned=args.n_sim_ned,
                                 progress=_progress(args, "specification grid"))
    out = _out_dir(args, cohort, "results")
    written, _ = report.write_sensitivity(result, out, formats=args.formats)
    print(result.summary())
    for w in dict.fromkeys(str(w.message) for w in caught):
        print(f"Warning: {w}")
    print(f"\nWrote {len(written)} files to {out}/ (sensitivity.json, CSVs, figures).")
    return 0


def _config_from_args(args):
    from causal_hcc.config import load_config
    config = load_config(args.config)
    if args.data or args.mapping or args.missing != "raise":
        config = config.updated("data", path=args.data or config.data.path,
                                mapping=args.mapping or config.data.mapping,
                                missing=args.missing)
    config = config.updated("adjust", bootstrap=args.bootstrap, seed=args.seed)
    config = config.updated("report", jobs=args.jobs, quiet=args.quiet or None,
                            formats=tuple(args.formats.split(",")) if args.formats else None)
    if args.no_sensitivity:
        config = config.updated("sensitivity", run=False)
    return config


def cmd_report(args) -> int:
    """Everything in one run: validation, crude, PSM/IPTW, sensitivity, one report."""
    import platform
    from datetime import datetime, timezone

    import numpy as np

    from causal_hcc import report
    from causal_hcc.claims import load_claims, verify_claims
    from causal_hcc.effects import adjust
    from causal_hcc.survival import crude_analysis
    start = time.perf_counter()
    config = _config_from_args(args)
    args.data = config.data.path or None
    args.mapping = config.data.mapping or None
    args.missing = config.data.missing
    quiet = config.report.quiet
    covariates = tuple(config.adjust.covariates)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        cohort = _load(args, require=covariates)
    input_notes = [str(w.message) for w in caught]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CausalHccWarning)
        say("crude survival analyses ...")
        c = config.crude
        crude = crude_analysis(cohort, landmarks=c.landmarks, conf_type=c.conf_type,
                               subgroup_col=c.subgroup or None, ties=c.ties,
                               select_p=c.select_p)
        check = verify_claims(cohort, load_claims(c.claims or None))
        a = config.adjust
        say("propensity scores, matching, weighting ...")
        effects = adjust(cohort, covariates, caliper_sd=a.caliper_sd or None, ratio=a.ratio,
                         replace=a.replace, order=a.order, n_boot=a.bootstrap, seed=a.seed,
                         jobs=config.report.jobs,
                         progress=None if quiet else _progress(args, "bootstrap"),
                         dask_address=args.dask)
        sensitivity = None
        if config.sensitivity.run:
            from causal_hcc.sensitivity import run_sensitivity
            say("sensitivity analyses ...")
            sensitivity = run_sensitivity(
                cohort, effects, covariates=covariates, jobs=config.report.jobs,
                seed=config.sensitivity.seed, n_sim_ned=config.sensitivity.n_sim_ned,
                progress=None if quiet else _progress(args, "specification grid"))
    out = _out_dir(args, cohort, "report")
    run_info = {"package_version": __version__, "command": "causal-hcc report",
                "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "data": cohort.source, "data_sha256": cohort.sha256,
                "reconstructed": cohort.reconstructed, "options": config.to_dict(),
                "seeds": {"bootstrap": config.adjust.seed,
                          "sensitivity": config.sensitivity.seed},
                "python": platform.python_version(), "numpy": np.__version__}
    say("writing the report ...")
    written = report.write_report(cohort, crude, check, effects, out, sensitivity=sensitivity,
                                  formats=config.report.formats,
                                  warnings_seen=[str(w.message) for w in caught],
                                  run_info=run_info, input_notes=input_notes)
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
                    "confounding. Runs on the bundled RECONSTRUCTED pseudo-cohort (not the "
                    "study's patients) unless --data is given.")
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
    p.add_argument("--claims", metavar="FILE", help="claims file (default: the paper's)")
    p.add_argument("--conf-type", choices=("log-log", "log", "plain"), default="log-log",
                   help="scale of KM confidence intervals (default log-log; R: log; SPSS: plain)")
    p.add_argument("--formats", default="png,svg", help="figure formats (default png,svg)")
    p.add_argument("--ci-bands", action="store_true", help="shade 95%% CI bands on the KM "
                   "figures")
    p.set_defaults(func=cmd_crude)

    p = sub.add_parser("adjust", help="propensity-score matching and IPTW: balance and "
                                      "adjusted hazard ratios of local therapy")
    _add_data_options(p)
    p.add_argument("--time", metavar="COL", help="time column (shortcut for --map os_months=COL)")
    p.add_argument("--event", metavar="COL", help="event column (shortcut for --map death=COL)")
    p.add_argument("--treatment", metavar="COL",
                   help="treatment column (shortcut for --map local_therapy=COL)")
    p.add_argument("--covariates", metavar="A,B,C", help="PS covariates (default "
                   "ecog,intrahepatic_ccr,vascular_invasion); numeric ones enter linearly")
    p.add_argument("--caliper", type=float, default=0.2, help="caliper in SD of the logit PS")
    p.add_argument("--ratio", type=int, default=1, help="controls per treated patient")
    p.add_argument("--replace", action="store_true", help="match with replacement")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap replicates (0 skips)")
    p.add_argument("--seed", type=int, default=20250710)
    p.add_argument("--jobs", type=int, default=1, help="parallel workers for the bootstrap")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap on this Dask "
                   "scheduler (needs the 'dask' extra); same results as locally")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--formats", default="png,svg")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_adjust)

    p = sub.add_parser("sensitivity", help="E-values, specification grid, immortal time, "
                                           "unmeasured-confounder tipping points, subgroups")
    _add_data_options(p)
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--jobs", type=int, default=1, help="parallel workers for the grid")
    p.add_argument("--seed", type=int, default=20250710)
    p.add_argument("--bootstrap", type=int, default=0, metavar="N",
                   help="bootstrap replicates of the adjusted HRs (default 0: Wald CIs)")
    p.add_argument("--n-sim-ned", type=int, default=2000, help="NED null simulations")
    p.add_argument("--formats", default="png,svg")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("report", help="everything in one run: validation, crude "
                                      "reproduction, PSM and IPTW, sensitivity, one HTML report")
    _add_data_options(p)
    p.add_argument("--config", metavar="FILE", help="TOML options (see causal-hcc config "
                   "--defaults); flags override it")
    p.add_argument("--out", metavar="DIR", help="output folder (default report/, or "
                   "report_reconstructed_pseudodata/ for the bundled cohort)")
    p.add_argument("--bootstrap", type=int, default=None, metavar="N")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--jobs", type=int, default=None, help="parallel workers")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap on this Dask "
                   "scheduler (needs the 'dask' extra)")
    p.add_argument("--formats", default=None, help="figure formats (default png,svg)")
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity analyses")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="print every option with its default (TOML)")
    p.add_argument("--defaults", action="store_true", help="print the defaults (the only mode)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("verify", help="check a manuscript's claims file against the data")
    _add_data_options(p)
    p.add_argument("--claims", metavar="FILE", help="claims file (JSON; default: the paper's)")
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
