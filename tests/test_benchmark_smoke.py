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
