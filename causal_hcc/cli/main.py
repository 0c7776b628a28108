"""Command-line interface: ``causal-hcc SUBCOMMAND``.

Parses arguments and wires the pipeline stages together; computes nothing itself.
Exit codes: 0 success, 2 invalid input (one readable message, no traceback), 1 internal
failure.

Outputs: every command writing to ``--out DIR`` stages its files beside DIR and moves
them into place when the run has finished (:class:`causal_hcc.reporting.OutputDir`): DIR
then holds one complete run, listed in ``manifest.json``, or the previous one untouched.
Warnings: the package's statistical warnings are collected per stage, tagged
``[stage, estimand]``, printed and written into the JSON and the report; warnings of the
libraries underneath (pandas, numpy, matplotlib) are caught here and recorded in
``manifest.json`` (and ``run.json``), printed on stderr only without ``--quiet``.
"""

from __future__ import annotations

import argparse
import atexit
import errno
import os
import signal
import sys
import warnings

from causal_hcc.version import __version__
from causal_hcc.defaults import SEED
from causal_hcc.errors import CohortError, NotEstimableError
from causal_hcc.cli.commands import (cmd_adjust, cmd_config, cmd_crude, cmd_reconstruct,
                                     cmd_report, cmd_sensitivity, cmd_validate, cmd_verify)
from causal_hcc.cli.options import (add_data_options, caliper_arg, count_arg, formats_arg,
                                    jobs_arg, positive_int)
from causal_hcc.cli.run import Run, input_files


FORMATS_HELP = ("figure formats, comma-separated: png (default), svg, pdf, e.g. png,svg; "
                "none writes no figures")


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
    add_data_options(p)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("reconstruct",
                       help="regenerate the reconstructed pseudo-cohort; print its calibration")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the bundled one)")
    p.add_argument("--out", metavar="FILE", help="write the cohort CSV here")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("crude", help="reproduce the paper's crude survival analyses (KM, "
                                     "log-rank, landmarks, medians, Cox) side by side with "
                                     "the published numbers")
    add_data_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default results/, or "
                   "results_reconstructed_pseudodata/ for the bundled cohort)")
    p.add_argument("--claims", metavar="FILE", help="claims file (default: the study's own; "
                   "none for other data)")
    p.add_argument("--conf-type", choices=("log-log", "log", "plain"), default="log-log",
                   help="scale of KM confidence intervals (default log-log; R: log; SPSS: plain)")
    p.add_argument("--formats", type=formats_arg, default="png", help=FORMATS_HELP)
    p.add_argument("--ci-bands", action="store_true", help="shade 95%% CI bands on the KM "
                   "figures")
    p.set_defaults(func=cmd_crude)

    p = sub.add_parser("adjust", help="propensity-score matching and IPTW: balance and "
                                      "adjusted hazard ratios of treatment")
    add_data_options(p)
    p.add_argument("--caliper", type=caliper_arg, default=None,
                   help="caliper in SD of the logit PS (default 0.2; 0 = no caliper)")
    p.add_argument("--ratio", type=positive_int, default=None,
                   help="controls per treated patient (default 1)")
    p.add_argument("--replace", action="store_true", help="match with replacement")
    p.add_argument("--ties", choices=("all", "matchit"), default=None,
                   help="PS ties in matching: all (default: order-free, tied partners share "
                        "the weight) or matchit (MatchIt's greedy rule, row order decides)")
    p.add_argument("--bootstrap", type=count_arg, default=None, metavar="N",
                   help="bootstrap replicates (default 1000; 0 skips)")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--jobs", type=jobs_arg, default=None, help="parallel workers (default 1)")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap on this Dask "
                   "scheduler (needs the 'dask' extra); same results as locally")
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--formats", type=formats_arg, default="png", help=FORMATS_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_adjust)

    p = sub.add_parser("sensitivity", help="E-values, specification grid, immortal time, "
                                           "unmeasured-confounder tipping points, subgroups")
    add_data_options(p)
    p.add_argument("--out", metavar="DIR")
    p.add_argument("--jobs", type=jobs_arg, default=None, help="parallel workers for the grid")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--bootstrap", type=count_arg, default=0, metavar="N",
                   help="bootstrap replicates of the adjusted HRs (default 0: Wald CIs)")
    p.add_argument("--n-sim-ned", type=positive_int, default=None,
                   help="NED null simulations (study yang2025)")
    p.add_argument("--formats", type=formats_arg, default="png", help=FORMATS_HELP)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_sensitivity)

    p = sub.add_parser("report", help="everything in one run: validation, crude "
                                      "reproduction, PSM and IPTW, sensitivity, one HTML report")
    add_data_options(p)
    p.add_argument("--out", metavar="DIR", help="output folder (default report/, or "
                   "report_reconstructed_pseudodata/ for the bundled cohort)")
    p.add_argument("--bootstrap", type=count_arg, default=None, metavar="N")
    p.add_argument("--seed", type=int, default=None, help=f"default {SEED}")
    p.add_argument("--jobs", type=jobs_arg, default=None, help="parallel workers")
    p.add_argument("--dask", metavar="tcp://HOST:PORT", help="run the bootstrap and the "
                   "specification grid on this Dask scheduler (needs the 'dask' extra)")
    p.add_argument("--formats", type=formats_arg, default=None, help=FORMATS_HELP)
    p.add_argument("--no-sensitivity", action="store_true", help="skip the sensitivity analyses")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="print every option with its default (TOML)")
    p.add_argument("--defaults", action="store_true", help="print the defaults (the only mode)")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("verify", help="check a manuscript's claims file against the data")
    add_data_options(p)
    p.add_argument("--claims", metavar="FILE", help="claims file (JSON; default: the study's "
                   "own)")
    p.add_argument("--out", metavar="DIR", help="write paper_vs_reproduced.csv/.md here")
    p.set_defaults(func=cmd_verify)
    return parser


#: Errors of the file system that are the user's to fix (exit 2, the path named).


_USER_OS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


def _terminate(signum, frame):
    """SIGTERM: unwind normally, so a staged output directory and its lock are removed."""
    raise SystemExit(128 + signum)


#: Thread variables of the BLAS libraries numpy and scipy load, set to 1 by :func:`main`
#: unless the user set them.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def one_blas_thread() -> None:
    """Ask the BLAS libraries for one thread each, before they are loaded (a variable the
    user set is left as it is).

    Our matrices are thin (patients x a few covariates, p x p information matrices): BLAS
    threads gain little there, and on a busy or small machine handing a 4 x 4 solve to them
    cost 0.4-3.6 ms instead of 0.1 ms, while idle threads spin on the cores the figure
    workers use. One thread also makes the last bits of matrix products independent of the
    machine's core count (a sum split across threads is added in another order).
    """
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")


def run() -> None:
    """The ``causal-hcc`` program: :func:`main`, then exit at once with its code.

    The exit handlers run (output staging, worker pools) and the standard streams are
    flushed, but the interpreter's teardown is skipped: freeing every object of numpy,
    pandas, scipy and matplotlib one by one took 0.2-0.3 s after the work was done. Every
    file the command writes is closed before :func:`main` returns.
    """
    try:
        code = main()
    except SystemExit as exc:      # --help, --version, argparse's usage errors
        code = exc.code
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):   # a closed pipe: nothing more to tell
            pass
    os._exit(code)


def main(argv=None) -> int:
    one_blas_thread()
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    args.argv, args.run = argv, Run()
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        with warnings.catch_warnings(record=True) as outer:
            warnings.simplefilter("always")
            args.outer_warnings = outer
            code = _dispatch(args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    library = args.run.library_warnings(outer)
    if library and not getattr(args, "quiet", False):
        for line in library:
            print(f"causal-hcc {args.command}: library warning (recorded in "
                  f"manifest.json): {line}", file=sys.stderr)
    return code


def _dispatch(args) -> int:
    from causal_hcc.reporting.output import check_inputs, check_writable
    try:
        if getattr(args, "out", None) and args.command != "reconstruct":
            # before anything runs: never overwrite an input, never start unwritable
            check_inputs(args.out, input_files(args))
            check_writable(args.out)
        return args.func(args)
    except (CohortError, NotEstimableError) as exc:
        print(f"causal-hcc {args.command}: {exc}", file=sys.stderr)
        for line in args.run.tagged():
            print(f"  after the warning {line}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in _USER_OS_ERRORS:
            return _internal(args, exc)
        print(f"causal-hcc {args.command}: cannot write {exc.filename or 'the output'}: "
              f"{exc.strerror}. Choose another --out directory or free it.", file=sys.stderr)
        return 2
    except Exception as exc:  # an internal failure: one paragraph, exit 1
        return _internal(args, exc)


def _internal(args, exc) -> int:
    print(f"causal-hcc {args.command}: internal error ({type(exc).__name__}: {exc}). "
          "Please report it with the command you ran.", file=sys.stderr)
    return 1
