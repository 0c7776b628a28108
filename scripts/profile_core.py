"""Time the estimation core (issue 12): adjust with 1,000 replicates and the sensitivity
stage on the bundled RECONSTRUCTED PSEUDO-COHORT (n = 76), the specification grid at
1,000 specifications, and adjust without bootstrap on a generic registry-size cohort
(6 covariates, seeded) with its peak RSS.

In-process CPU seconds (``time.process_time``), the minimum of ``--repeat`` runs: the
machine is shared, and the minimum is the least disturbed run. Not a test: numbers
depend on the machine. ``python scripts/profile_core.py [--rows 1000000] [--only NAME]``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def registry_frame(n: int, seed: int = 1) -> pd.DataFrame:
    """A generic cohort of ``n`` patients: 6 covariates (3 numeric, 2 binary, one
    3-level categorical), treatment from a logistic model of them, exponential survival
    (true log HR -0.3) with uniform censoring. Synthetic, not any study's data."""
    rng = np.random.default_rng(seed)
    age = rng.normal(62, 10, n).round(1)
    bilirubin = np.exp(rng.normal(0, 0.6, n)).round(2)
    albumin = rng.normal(3.5, 0.4, n).round(2)
    male = rng.binomial(1, 0.7, n)
    diabetes = rng.binomial(1, 0.3, n)
    stage = rng.choice(np.array(["A", "B", "C"]), n, p=[0.3, 0.5, 0.2])
    lin = (-0.2 + 0.02 * (age - 62) - 0.4 * np.log(bilirubin) + 0.5 * (albumin - 3.5)
           + 0.2 * male - 0.3 * diabetes + np.select([stage == "B", stage == "C"], [-0.3, -0.8], 0))
    treated = rng.binomial(1, 1 / (1 + np.exp(-lin)))
    hazard = 0.03 * np.exp(-0.3 * treated + 0.02 * (age - 62) + 0.5 * np.log(bilirubin)
                           + np.select([stage == "B", stage == "C"], [0.3, 0.7], 0))
    death = rng.exponential(1 / hazard)
    censor = rng.uniform(1, 60, n)
    return pd.DataFrame({"id": np.arange(1, n + 1), "months": np.minimum(death, censor).round(3),
                         "died": (death <= censor).astype(int), "treated": treated,
                         "age": age, "bilirubin": bilirubin, "albumin": albumin,
                         "male": male, "diabetes": diabetes, "stage": stage})


REGISTRY_ROLES = dict(id="id", time="months", event="died", treatment="treated",
                      covariates=["age", "bilirubin", "albumin", "male", "diabetes", "stage"])


def cpu(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("adjust", "sensitivity", "grid", "registry"))
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    import causal_hcc as ch
    from causal_hcc.effects import adjust
    from causal_hcc.sensitivity import run_sensitivity
    from causal_hcc.sensitivity.grid import specification_grid
    from causal_hcc.studies.yang2025 import load_bundled, sensitivity_extras
    bundled = load_bundled()
    print("bundled cohort: RECONSTRUCTED PSEUDO-DATA (n = 76)")
    if args.only in (None, "adjust"):
        adjust(bundled, n_boot=20)
        print(f"adjust(n_boot=1000), n = 76: {cpu(lambda: adjust(bundled, n_boot=1000), args.repeat):.3f} s")
    if args.only in (None, "sensitivity"):
        effects = adjust(bundled, n_boot=0)
        extras = sensitivity_extras(bundled, n_sim_ned=2000, seed=20240601)
        print("run_sensitivity (study extras, NED 2000 sims), n = 76: "
              f"{cpu(lambda: run_sensitivity(bundled, effects, **extras), args.repeat):.3f} s")
        print("run_sensitivity (generic, no extras), n = 76: "
              f"{cpu(lambda: run_sensitivity(bundled, effects), args.repeat):.3f} s")
    if args.only in (None, "grid"):
        base = tuple(bundled.roles.covariates)
        sets = {f"set {i}": base for i in range(8)}    # 8 x 125 = 1,000 specifications
        grid = specification_grid(bundled, covariate_sets=sets)
        print(f"specification grid, {grid.n_specifications} specifications, n = 76: "
              f"{cpu(lambda: specification_grid(bundled, covariate_sets=sets), args.repeat):.3f} s")
    if args.only in (None, "registry"):
        frame = registry_frame(args.rows)
        cohort = ch.cohort(frame, **REGISTRY_ROLES)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.process_time()
        adjust(cohort, n_boot=0)
        seconds = time.process_time() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"adjust(n_boot=0), n = {args.rows:,}, 6 covariates: {seconds:.2f} s CPU; "
              f"peak RSS {peak:.0f} MB (before adjust {before:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
