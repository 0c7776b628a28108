"""The commands: each wires the pipeline stages together and writes its outputs;
none computes anything itself."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from causal_hcc.version import __version__
from causal_hcc.errors import CohortError
from causal_hcc.cli.ahead import (AdjustAhead, figure_host, prerender_crude,
                                  prerender_final, prerender_ph, prerender_sensitivity)
from causal_hcc.cli.options import (adjust_config, config_from_args, landmarks_for,
                                    load_from_args, progress_bar)
from causal_hcc.cli.run import (commit_output, out_dir, parquet_notes, staged_output,
                                wrote_line)


def cmd_validate(args) -> int:
    """Read, map and check a file; print what was read and every problem."""
    run = args.run
    with run.stage("input"):
        cohort = load_from_args(args)
    print(cohort.summary())
    for message in run.messages("input"):
        print(f"Warning: {message}")
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
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}")
        try:
            frame.to_csv(partial, index=False)
            os.replace(partial, out)  # never a half-written cohort file
        finally:
            partial.unlink(missing_ok=True)
        print(f"Wrote {out} ({len(frame)} reconstructed pseudo-patients).")
    from causal_hcc.studies.yang2025 import RECONSTRUCTED_LABEL
    print(RECONSTRUCTED_LABEL)
    print(frame_to_text(table))
    checked = table["passed"].dropna()
    print(f"{int(checked.sum())} of {len(checked)} targets passed; "
          f"{int(table['passed'].isna().sum())} rows are report-only. "
          f"Generated in {elapsed:.1f} s.")
    return 0 if checked.all() else 1


def claims_check(args, config, cohort):
    """The claims check: --claims FILE, else the study's own claims, else None."""
    from causal_hcc.api import study_of
    from causal_hcc.claims import load_claims, verify_claims
    study = study_of(cohort)
    path = getattr(args, "claims", None) or config.crude.claims or \
        (study.claims_path() if study else None)
    return None if path is None else verify_claims(cohort, load_claims(path))


def report_extras(cohort):
    """What the cohort's study adds to the report (None for a generic cohort)."""
    if cohort.study != "yang2025":
        return None
    from causal_hcc.studies.yang2025.report_extras import report_extras
    return report_extras(cohort)


def run_crude(cohort, config):
    from causal_hcc.api import study_of
    from causal_hcc.survival import crude_analysis
    study = study_of(cohort)
    c = config.crude
    landmarks, _ = landmarks_for(cohort, config)
    return crude_analysis(cohort, landmarks, conf_type=c.conf_type,
                          subgroup_col=c.subgroup or "default", ties=c.ties,
                          select_p=c.select_p,
                          cox_variables=study.table3.TABLE3_VARIABLES if study else None)


def cmd_crude(args) -> int:
    """The crude survival analyses, written to DIR, and (for a study) the side-by-side table."""
    import causal_hcc.reporting as report
    config = config_from_args(args)
    config = config.updated("crude", conf_type=args.conf_type)
    run = args.run
    with run.stage("input"):
        cohort = load_from_args(args, config)
    out = out_dir(args, cohort, f"results/{args.command}")
    with staged_output(args, out, config) as staged:
        with run.stage("crude"):
            crude = run_crude(cohort, config)
            check = claims_check(args, config, cohort)
        with run.stage("report"):
            report.write_crude(crude, check, cohort, staged.path, formats=args.formats,
                               warnings_seen=run.tagged(), ci_bands=args.ci_bands,
                               study=report_extras(cohort))
        written = commit_output(staged, args, run, cohort)
    print(crude.summary())
    if check is not None:
        print()
        print(check.summary())
    for message in run.tagged():
        print(f"Warning: {message}")
    print(wrote_line(out, written, "crude.json, tables, figures", cohort))
    return 0


def cmd_verify(args) -> int:
    """Check a claims file against the data; print and optionally write the table."""
    import causal_hcc.reporting as report
    config = config_from_args(args)
    run = args.run
    with run.stage("input"):
        cohort = load_from_args(args, config)
    with run.stage("verify"):
        check = claims_check(args, config, cohort)
    if check is None:
        raise CohortError(["No claims file: pass --claims FILE (JSON; see "
                           "causal_hcc.claims)."], header="Nothing to verify:")
    print(check.summary())
    if args.out:
        out = Path(args.out)
        with staged_output(args, out, config) as staged:
            report.write_claims_table(check, staged.path)
            report.write_exclusions(cohort, staged.path)
            written = commit_output(staged, args, run, cohort)
        print(wrote_line(out, written, "paper_vs_reproduced.csv/.md", cohort))
    return 0


def run_adjust(args, cohort, config, progress=True, **options):
    from causal_hcc.effects import adjust
    a = config.adjust
    landmarks, horizons = landmarks_for(cohort, config)
    return adjust(cohort, a.covariates or None, caliper_sd=a.caliper_sd or None,
                  ratio=a.ratio, replace=a.replace, order=a.order, n_boot=a.bootstrap,
                  seed=a.seed, jobs=config.report.jobs, landmarks=landmarks,
                  horizons=horizons,
                  progress=progress_bar(args, "bootstrap") if progress and a.bootstrap else None,
                  dask_address=getattr(args, "dask", None), primary=a.primary,
                  ties=a.ties, **options)


def cmd_adjust(args) -> int:
    """PS matching and IPTW: balance, adjusted HRs, adjusted curves, bootstrap CIs."""
    import causal_hcc.reporting as report
    config = adjust_config(args, config_from_args(args))
    run = args.run
    with figure_host(config, args.formats):
        with run.stage("input"):
            cohort = load_from_args(args, config)
        out = out_dir(args, cohort, f"results/{args.command}")
        with staged_output(args, out, config) as staged:
            with run.stage("adjust"):
                ahead = AdjustAhead(cohort, config, staged.path, args.formats)
                result = run_adjust(args, cohort, config, **ahead.options)
            ahead = ahead.settle(result)
            prerender_final(result, cohort, staged.path, args.formats, ahead)
            with run.stage("report"):
                report.write_adjust(result, cohort, staged.path, formats=args.formats,
                                    warnings_seen=run.tagged(result), study=report_extras(cohort))
            written = commit_output(staged, args, run, cohort, effects=result)
    print(result.summary())
    for message in run.tagged(result):
        print(f"Warning: {message}")
    print(wrote_line(out, written, "effects.json, balance.csv, propensity.csv, matched_pairs.csv "
                 "(matched_sets.csv beyond 2,000,000 pairs), "
                 "figures", cohort))
    return 0


def run_sensitivity_stage(args, cohort, effects, config, quiet=False):
    from causal_hcc.api import study_of
    from causal_hcc.sensitivity import run_sensitivity
    study = study_of(cohort)
    extras = {}
    if study is not None and hasattr(study, "sensitivity_extras"):
        extras = study.sensitivity_extras(cohort, n_sim_ned=config.sensitivity.n_sim_ned,
                                          seed=config.sensitivity.seed)
    return run_sensitivity(cohort, effects, covariates=config.adjust.covariates or None,
                           jobs=config.report.jobs, seed=config.sensitivity.seed,
                           progress=None if quiet else progress_bar(args, "specification grid"),
                           dask_address=getattr(args, "dask", None), **extras)


def cmd_sensitivity(args) -> int:
    """E-values, specification grid, immortal time, tipping points, subgroups (+ study's)."""
    import causal_hcc.reporting as report
    config = adjust_config(args, config_from_args(args))
    config = config.updated("sensitivity", seed=args.seed, n_sim_ned=args.n_sim_ned)
    run = args.run
    with run.stage("input"):
        cohort = load_from_args(args, config)
    out = out_dir(args, cohort, f"results/{args.command}")
    with staged_output(args, out, config) as staged:
        with run.stage("adjust"):
            effects = run_adjust(args, cohort, config)
        with run.stage("sensitivity"):
            result = run_sensitivity_stage(args, cohort, effects, config)
        with run.stage("report"):
            report.write_sensitivity(result, staged.path, formats=args.formats, cohort=cohort,
                                     warnings_seen=run.tagged(effects))
        written = commit_output(staged, args, run, cohort, effects=effects)
    print(result.summary())
    for message in run.tagged(effects):
        print(f"Warning: {message}")
    print(wrote_line(out, written, "sensitivity.json, CSVs, figures", cohort))
    return 0


def report_figure_formats(formats) -> str:
    """The figure formats ``report`` writes: PNG (the HTML embeds it) and those asked for,
    as :func:`causal_hcc.reporting.write_report` writes them; "none" for none."""
    from causal_hcc.reporting.style import parse_formats
    fmts = parse_formats(formats)
    return ",".join(dict.fromkeys(["png", *fmts])) if fmts else "none"


def cmd_report(args) -> int:
    """Everything in one run: validation, crude, PSM/IPTW, sensitivity, one report."""
    start = time.perf_counter()
    config = adjust_config(args, config_from_args(args))
    config = config.updated("report", quiet=args.quiet or None,
                            formats=tuple(args.formats.split(",")) if args.formats else None)
    if args.no_sensitivity:
        config = config.updated("sensitivity", run=False)
    quiet = config.report.quiet
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr))
    run = args.run
    with figure_host(config, report_figure_formats(config.report.formats)):
        with run.stage("input"):
            cohort = load_from_args(args, config)
        input_notes = run.messages("input")
        out = out_dir(args, cohort, "report")
        with staged_output(args, out, config) as staged:
            with run.stage("crude"):
                say("crude survival analyses ...")
                crude = run_crude(cohort, config)
                check = claims_check(args, config, cohort)
            fmt = report_figure_formats(config.report.formats)
            prerender_crude(crude, cohort, staged.path, fmt)
            with run.stage("adjust"):
                say("propensity scores, matching, weighting ...")
                ahead = AdjustAhead(cohort, config, staged.path, fmt)
                effects = run_adjust(args, cohort, config, progress=not quiet,
                                     **ahead.options)
            ahead = ahead.settle(effects)
            prerender_final(effects, cohort, staged.path, fmt, ahead)
            ph = prerender_ph(cohort, effects, staged.path, fmt)
            sensitivity = None
            if config.sensitivity.run:
                with run.stage("sensitivity"):
                    say("sensitivity analyses ...")
                    sensitivity = run_sensitivity_stage(args, cohort, effects, config, quiet=quiet)
                prerender_sensitivity(sensitivity, cohort, staged.path, fmt)
            written = write_full_report(args, run, staged, cohort, crude, check, effects, sensitivity,
                                    config, input_notes, start, say, ph)
    elapsed = time.perf_counter() - start
    print(cohort.label)
    for message in run.tagged(effects, stages=("crude", "adjust", "sensitivity")):
        print(f"Warning: {message}")
    print(f"Report: {out / 'report.html'} ({len(written)} files in {out}/, "
          f"{elapsed:.1f} s).")
    for note in parquet_notes(written):
        print(f"{note}.")
    print(f"Rows excluded: {cohort.n_excluded} of {cohort.n_read}"
          + (" (listed in exclusions.csv)." if cohort.n_excluded else "."))
    return 0


def write_full_report(args, run, staged, cohort, crude, check, effects, sensitivity, config,
                  input_notes, start, say, ph=None) -> list[Path]:
    """Every file of ``report`` into the staged directory, then commit it."""
    import platform
    from datetime import datetime, timezone

    import numpy as np

    import causal_hcc.reporting as report
    tagged = run.tagged(effects, stages=("crude", "adjust", "sensitivity"))
    run_info = {"package_version": __version__, "command": "causal-hcc report",
                "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "data": cohort.source, "data_sha256": cohort.sha256,
                "reconstructed": cohort.reconstructed, "study": cohort.study,
                "n_excluded": cohort.n_excluded, "options": config.to_dict(),
                "seeds": {"bootstrap": config.adjust.seed,
                          "sensitivity": config.sensitivity.seed},
                "python": platform.python_version(), "numpy": np.__version__}
    say("writing the report ...")
    with run.stage("report"):
        report.write_report(cohort, crude, check, effects, staged.path,
                            sensitivity=sensitivity, formats=config.report.formats,
                            warnings_seen=tagged, run_info=run_info, input_notes=input_notes,
                            study=report_extras(cohort), ph=ph)
    run_info["seconds"] = round(time.perf_counter() - start, 2)
    run_info["warnings"] = tagged
    run_info["library_warnings"] = run.library_warnings(args.outer_warnings)
    report.write_json(run_info, staged.path / "run.json")
    return commit_output(staged, args, run, cohort, effects=effects)


def cmd_config(args) -> int:
    from causal_hcc.config import defaults_toml
    print(defaults_toml())
    return 0
