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
    from causal_hcc.data.reconstruct import calibration_table, reconstruct_cohort
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
