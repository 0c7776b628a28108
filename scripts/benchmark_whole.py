"""The whole-command section of scripts/benchmark.py (issue 12): fresh processes, wall clock
and peak RSS of the child, side by side with pandas, R and lifelines, and the targets."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "causal_hcc" / "studies" / "yang2025" / "bundled" / \
    "reconstructed_pseudo_cohort.csv"
REGISTRY_COVARIATES = "ecog,intrahepatic_ccr,vascular_invasion,sex,age,afp_positive"
REGISTRY_ROLES = ["--study", "none", "--time", "os_months", "--event", "death",
                  "--treatment", "local_therapy", "--id", "patient_id",
                  "--covariates", REGISTRY_COVARIATES]


def child_env() -> dict:
    """The children's environment: as an installed package runs, with its compiled
    bytecode (pip compiles it at install time; PYTHONDONTWRITEBYTECODE, set on some
    machines, would make every run compile about 200 modules again, 0.2-0.3 s)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def compile_package() -> None:
    """Compile the package's modules once, as ``pip install`` does."""
    import compileall
    compileall.compile_dir(str(ROOT / "causal_hcc"), quiet=1)


def run_child(argv, cwd) -> tuple[float, float, int, float]:
    """(wall seconds, peak RSS in MB, exit code, CPU seconds) of one fresh process.

    CPU is user + system time of the process and of the processes it waited for (its
    figure host and workers, its bootstrap workers): on ``cores`` cores no schedule can
    finish in less than CPU / cores, the floor printed beside the targets."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=child_env())
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    err = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if child.returncode != 0:
        print(f"  (exit {child.returncode}: {err.strip()[-500:]})", flush=True)
    return (seconds, usage.ru_maxrss / 1024, child.returncode,   # KiB on Linux
            usage.ru_utime + usage.ru_stime)


def best_of(argv, runs: int, cwd) -> tuple[float, float, int, float]:
    """The run of minimum wall time over ``runs`` fresh processes (:func:`run_child`)."""
    results = [run_child(argv, cwd) for _ in range(runs)]
    return min(results)


def available_cores() -> int:
    """CPUs this process may run on (the affinity mask, else the CPU count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def causal_hcc(*args) -> list[str]:
    return [sys.executable, "-m", "causal_hcc.cli", *args]


def registry_csv(folder: Path, rows: int) -> Path:
    """The simulated registry (synthetic_registry, seed 1) as CSV, written once."""
    path = folder / f"registry_{rows}.csv"
    if not path.exists():
        # In a child process: a forked child's peak RSS (os.wait4) counts the parent's memory
        # until it execs, so this process must stay small for the RSS column to be the
        # command's own.
        subprocess.run([sys.executable, "-c",
                        "import sys; from causal_hcc.studies.yang2025.synthetic import "
                        "synthetic_registry; synthetic_registry(int(sys.argv[1]), seed=1)"
                        ".to_csv(sys.argv[2], index=False)", str(rows), str(path)],
                       check=True, cwd=ROOT)
    return path


def pandas_read_seconds(path: Path, runs: int) -> float:
    import pandas as pd
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        pd.read_csv(path)
        times.append(time.perf_counter() - start)
    return min(times)


def grid_seconds(runs: int) -> tuple[float, int]:
    """The default specification grid on the bundled cohort: (seconds, rows)."""
    import warnings

    from causal_hcc.sensitivity.grid import specification_grid
    from causal_hcc.studies.yang2025 import load_bundled
    cohort = load_bundled()
    times, rows = [], 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(runs):
            start = time.perf_counter()
            grid = specification_grid(cohort)
            times.append(time.perf_counter() - start)
            rows = len(grid.to_frame())
    return min(times), rows


def r_seconds(replicates: int, runs: int) -> float | None:
    """Wall clock of the whole Rscript process doing the same bootstrap (None without R)."""
    rscript = shutil.which("Rscript")
    if rscript is None:
        return None
    argv = [rscript, str(ROOT / "scripts" / "benchmark_r.R"), str(BUNDLED), str(replicates)]
    seconds, _, code, _ = best_of(argv, runs, ROOT)
    return seconds if code == 0 else None


def lifelines_seconds(replicates: int) -> float | None:
    """The IPTW half of the bootstrap with lifelines' weighted Cox (robust SE) and a glm PS
    (statsmodels): ``replicates`` replicates of ATE, ATT and ATO fits. None without it."""
    try:
        import warnings

        import pandas as pd
        import statsmodels.api as sm
        from lifelines import CoxPHFitter
    except ImportError:
        return None
    data = pd.read_csv(BUNDLED)
    x = sm.add_constant(data[["ecog", "intrahepatic_ccr", "vascular_invasion"]]
                        .to_numpy(float))
    a = data["local_therapy"].to_numpy(float)
    rng = np.random.default_rng(1)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(replicates):
            idx = rng.integers(0, len(data), len(data))
            ps = sm.GLM(a[idx], x[idx], family=sm.families.Binomial()).fit().fittedvalues
            b = pd.DataFrame({"t": data["os_months"].to_numpy(float)[idx],
                              "e": data["death"].to_numpy(float)[idx], "a": a[idx]})
            for w in (np.where(b.a == 1, 1 / ps, 1 / (1 - ps)),
                      np.where(b.a == 1, 1, ps / (1 - ps)), np.where(b.a == 1, 1 - ps, ps)):
                try:
                    CoxPHFitter().fit(b.assign(w=w), "t", "e", weights_col="w", robust=True)
                except Exception:  # noqa: BLE001  a separated replicate (weights 0 or inf)
                    continue       # fails in lifelines as in R's tryCatch: skipped
    return time.perf_counter() - start


def whole_commands(args) -> int:
    """Print the whole-command table and the issue's targets (MET / MISSED).

    ``--quick`` is a smoke test of the machinery: ``adjust`` without bootstrap or figures
    at n = 76 and on a 300-row registry; the report, the grid, R and lifelines are
    skipped, and so are the targets they need.
    """
    quick = args.quick
    runs = args.whole_runs or (1 if quick else 3)
    rows = args.registry_rows or (300 if quick else 1_000_000)
    n_boot = 0 if quick else 1000
    figures = ["--formats", "none"] if quick else []
    compile_package()
    print(f"whole commands: fresh processes, min wall time of {runs} run(s), peak RSS of "
          "the child (os.wait4), the package's bytecode compiled as at install; inputs: "
          "the bundled RECONSTRUCTED PSEUDO-DATA cohort "
          f"(n = 76), a simulated registry CSV (n = {rows:,}, synthetic_registry seed 1).")
    print(f"{'command':<58}  {'n':>9}  {'wall_s':>8}  {'peak_MB':>8}  {'cpu_s':>7}")

    def line(name, n, seconds, peak, cpu="-"):
        return f"{name:<58}  {n:>9,}  {seconds:>8.2f}  {peak:>8}  {cpu:>7}"

    skipped = "{:<58}  skipped (--quick)".format
    measured = {}
    with tempfile.TemporaryDirectory(prefix="causal_hcc_bench_") as tmp:
        tmp = Path(tmp)
        cases = [("adjust", f"causal-hcc adjust --bootstrap {n_boot} {' '.join(figures)}"
                  .strip(), 76, causal_hcc("adjust", "--bootstrap", str(n_boot), *figures,
                                           "--quiet", "--out", str(tmp / "adjust")))]
        if not quick:
            # Without figures too: how much of each command is drawing.
            cases.append(("adjust_nofig", f"causal-hcc adjust --bootstrap {n_boot} --formats "
                          "none", 76, causal_hcc("adjust", "--bootstrap", str(n_boot),
                                                 "--formats", "none", "--quiet", "--out",
                                                 str(tmp / "adjust_nofig"))))
            cases.append(("report", f"causal-hcc report --bootstrap {n_boot} (full grid)", 76,
                          causal_hcc("report", "--bootstrap", str(n_boot), "--quiet",
                                     "--out", str(tmp / "report"))))
            cases.append(("report_nofig", f"causal-hcc report --bootstrap {n_boot} --formats "
                          "none", 76, causal_hcc("report", "--bootstrap", str(n_boot),
                                                 "--formats", "none", "--quiet", "--out",
                                                 str(tmp / "report_nofig"))))
        registry = registry_csv(tmp, rows)
        cases.append(("registry", "causal-hcc adjust --bootstrap 0 --formats none", rows,
                      causal_hcc("adjust", "--data", str(registry), *REGISTRY_ROLES,
                                 "--bootstrap", "0", "--formats", "none", "--quiet",
                                 "--out", str(tmp / "registry"))))
        for key, name, n, argv in cases:
            seconds, peak, code, cpu = best_of(argv, runs, tmp)
            measured[key] = (seconds, peak, code, cpu)
            print(line(name, n, seconds, f"{peak:.0f}", f"{cpu:.2f}")
                  + ("" if code == 0 else f"  FAILED (exit {code})"), flush=True)
        if quick:
            print(skipped("causal-hcc report (full grid)"))
        read_s = pandas_read_seconds(registry, runs)
        print(line("pandas.read_csv of the same CSV (in-process)", rows, read_s, "-"),
              flush=True)
    grid_s = grid_rows = None
    if quick:
        print(skipped("specification grid (in-process)"))
    else:
        grid_s, grid_rows = grid_seconds(3)
        print(line(f"specification grid, default ({grid_rows} specifications, in-process)",
                   76, grid_s, "-"), flush=True)
    r_s = None if quick else r_seconds(n_boot, runs)
    if quick:
        print(skipped("R: boot + glm + MatchIt + coxph"))
    elif r_s is not None:
        print(line(f"R: boot + glm + MatchIt + coxph, {n_boot} replicates (whole Rscript)",
                   76, r_s, "-"), flush=True)
    else:
        print("R: Rscript not found (or it failed)")
    ll_reps = 100
    ll_s = None if quick else lifelines_seconds(ll_reps)
    if quick:
        print(skipped("lifelines"))
    elif ll_s is not None:
        print(line(f"lifelines: IPTW half only, {ll_reps} replicates x {n_boot // ll_reps}",
                   76, ll_s * n_boot / ll_reps, "-"), flush=True)
    else:
        print("lifelines: not installed")
    adjust_s = measured["adjust"][0]
    report_s = measured["report"][0] if "report" in measured else None
    reg_s, reg_mb, _, _ = measured["registry"]
    cores = available_cores()

    def floor(key):
        """CPU seconds of that run / cores: no schedule on this machine beats it."""
        cpu = measured[key][3]
        return f"; CPU {cpu:.2f} s, floor on {cores} cores {cpu / cores:.2f} s"
    targets = [
        ("adjust --bootstrap 1000, n = 76, <= 1/8 of R's time",
         None if r_s is None else adjust_s <= r_s / 8,
         (f"{adjust_s:.2f} s vs R {r_s:.2f} s (R/ours {r_s / adjust_s:.1f}x)"
          if r_s is not None else f"{adjust_s:.2f} s (--bootstrap {n_boot}; no R time)")
         + floor("adjust")),
        ("report, n = 76, 1000 replicates and the full grid, < 3 s",
         None if report_s is None else report_s < 3.0,
         "-" if report_s is None else f"{report_s:.2f} s" + floor("report")),
        (f"adjust --bootstrap 0 at n = {rows:,}: <= 12x pandas read_csv",
         reg_s <= 12 * read_s, f"{reg_s:.2f} s = {reg_s / read_s:.1f}x of {read_s:.2f} s"
         + floor("registry")),
        (f"adjust --bootstrap 0 at n = {rows:,}: peak RSS < 2 GB", reg_mb < 2048,
         f"{reg_mb:.0f} MB"),
        ("grid: 1,000 specifications on n = 76 < 1 s",
         None if grid_s is None else grid_s * 1000 / max(grid_rows, 1) < 1.0,
         "-" if grid_s is None else f"{grid_s:.2f} s for {grid_rows} specifications = "
         f"{grid_s * 1000 / max(grid_rows, 1):.2f} s per 1,000"),
    ]
    print("\nwhole-command target" + " " * 48 + "result  measured")
    for name, met, value in targets:
        verdict = "SKIPPED" if met is None else "MET" if met else "MISSED"
        print(f"{name:<68}  {verdict:<7} {value}")
    return 0
