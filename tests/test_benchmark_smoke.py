"""scripts/benchmark.py --quick runs and prints its table (a smoke test, not a timing)."""

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "benchmark.py"


def test_quick_benchmark_runs_and_prints_the_table():
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True,
                          text=True, timeout=300, cwd=SCRIPT.parents[1])
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for header in ("task", "median_s", "peak_MB", "target", "measured"):
        assert header in out
    for row in ("cox fit, weights + robust SE: causal_hcc", "lifelines", "fit_cox_many",
                "bootstrap PSM + IPTW", "effects.adjust", "pipeline: all of the above",
                "process max RSS"):
        assert row in out, row
    # the whole-command section (issue 12): fresh processes, every target with its figure
    for row in ("whole commands", "causal-hcc adjust --bootstrap 0", "causal-hcc report",
                "causal-hcc adjust --bootstrap 0 --formats none", "pandas.read_csv",
                "specification grid", "whole-command target", "<= 1/8 of R's time",
                "< 3 s", "<= 12x pandas read_csv", "peak RSS < 2 GB", "< 1 s"):
        assert row in out, row
    assert "FAILED" not in out
    targets = out.split("whole-command target")[1].splitlines()[1:]
    assert len(targets) == 5
    assert all(any(f" {v} " in t for v in ("MET", "MISSED", "SKIPPED")) for t in targets)
    # what --quick measures is printed with a verdict: the registry run's two targets
    assert sum(" SKIPPED " not in t for t in targets) >= 2
