"""Snapshot of the estimation core's outputs before the speed work of issue 12.

Run once on the code *before* a change (``python tests/reference/speed/snapshot.py``)
to write the JSON files beside it; tests/test_speed_identity.py then asserts that the
current code gives the same numbers. The bundled cohort is RECONSTRUCTED PSEUDO-DATA
(not the study's patients); rossi is lifelines' public dataset (tests/reference/datasets).
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

N_BOOT = 1000
ROSSI = {"time": "week", "event": "arrest", "treatment": "fin", "time_unit": "weeks",
         "covariates": ["age", "race", "wexp", "mar", "paro", "prio"]}


def bundled():
    from causal_hcc.studies.yang2025 import load_bundled
    return load_bundled()


def rossi():
    import causal_hcc as ch
    frame = pd.read_csv(ROOT / "tests" / "reference" / "datasets" / "rossi.csv")
    return ch.cohort(frame, **ROSSI)


def _bootstrap_reps(cohort, n_boot, ties):
    """The raw replicates of effects.bootstrap (log HRs, separation flags, curves)."""
    from causal_hcc.defaults import SEED, default_horizons, default_landmarks
    from causal_hcc.effects.bootstrap import BootOptions, bootstrap
    unit = cohort.labels.time_unit
    opts = BootOptions(0.2, 1, False, "largest",
                       tuple(default_landmarks(cohort.time, unit)),
                       tuple(default_horizons(cohort.time, cohort.treated, unit)), ties)
    reps = bootstrap(cohort, tuple(cohort.roles.covariates), n_boot=n_boot, seed=SEED,
                     opts=opts)
    return [{k: ({str(kk): list(vv) for kk, vv in v.items()} if isinstance(v, dict) else v)
             for k, v in r.items()} for r in reps]


def adjust_snapshot(cohort, ties="all") -> dict:
    from causal_hcc.effects import adjust
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rep = adjust(cohort, n_boot=N_BOOT, ties=ties)
    return {"estimates": rep.to_frame().to_dict("records"),
            "curves": rep.curves_frame().to_dict("records"),
            "order_spread": rep.settings["order_spread"],
            "matched_weights": list(map(float, rep.matched.weights)),
            "notes": list(rep.notes)}


def sensitivity_snapshot(cohort, extras: bool) -> dict:
    from causal_hcc.effects import adjust
    from causal_hcc.sensitivity import run_sensitivity
    kwargs = {}
    if extras:
        from causal_hcc.studies.yang2025 import sensitivity_extras
        kwargs = sensitivity_extras(cohort, n_sim_ned=200, seed=20240601)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        effects = adjust(cohort, n_boot=0)
        return run_sensitivity(cohort, effects, **kwargs).to_dict()


REGISTRY_ROWS = 2_500   # x 200 random orders: the order spread is computed (ORDER_SPREAD_MAX_ROWS)
REGISTRY_ARGS = ["--study", "none", "--time", "os_months", "--event", "death",
                 "--treatment", "local_therapy", "--id", "patient_id", "--covariates",
                 "ecog,intrahepatic_ccr,vascular_invasion,sex,age,afp_positive",
                 "--bootstrap", "0", "--formats", "none", "--quiet"]


def registry_cli_snapshot(rows: int = REGISTRY_ROWS) -> dict:
    """The whole ``adjust`` command on a simulated registry (synthetic_registry, seed 1):
    effects.json and effects_context.json as parsed, every CSV of up to 2,000 rows as its
    records, and a longer CSV by a hash of its values (read back with pandas and re-written
    canonically, so a different writer with the same values hashes the same) and shape."""
    import hashlib
    import subprocess
    import tempfile

    from causal_hcc.studies.yang2025.synthetic import synthetic_registry
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        synthetic_registry(rows, seed=1).to_csv(tmp / "registry.csv", index=False)
        # Run in the temporary folder on relative paths: the provenance names the file.
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
        subprocess.run([sys.executable, "-m", "causal_hcc.cli", "adjust", "--data",
                        "registry.csv", *REGISTRY_ARGS, "--out", "out"],
                       check=True, cwd=tmp, capture_output=True, env=env)
        out = {}
        for path in sorted((tmp / "out").iterdir()):
            if path.suffix == ".csv":
                frame = pd.read_csv(path)
                if len(frame) <= 2000:
                    out[path.name] = frame.to_dict("list")
                    continue
                text = frame.to_csv(index=False, float_format="%.17g")
                out[path.name] = {"shape": list(frame.shape), "columns": list(frame.columns),
                                  "sha256": hashlib.sha256(text.encode()).hexdigest()}
            elif path.name.startswith("effects"):
                out[path.name] = json.loads(path.read_text())
        return out


def to_json_default(o):
    """JSON for numpy scalars and arrays (and tuples); anything else as its str."""
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.bool_):
        return bool(o)
    if isinstance(o, (np.ndarray, tuple)):
        return list(o)
    return str(o)


def dump(name, value) -> None:
    text = json.dumps(value, default=to_json_default, allow_nan=True, sort_keys=True)
    # mtime=0: the same numbers give the same bytes.
    (HERE / f"{name}.json.gz").write_bytes(gzip.compress(text.encode(), mtime=0))


def load(name):
    return json.loads(gzip.decompress((HERE / f"{name}.json.gz").read_bytes()))


def makers() -> dict:
    """name -> a callable of no arguments giving the JSON-able value the test compares."""
    return {
        "bootstrap_bundled_all": lambda: _bootstrap_reps(bundled(), N_BOOT, "all"),
        "bootstrap_bundled_matchit": lambda: _bootstrap_reps(bundled(), 300, "matchit"),
        "bootstrap_rossi_all": lambda: _bootstrap_reps(rossi(), 300, "all"),
        "adjust_bundled": lambda: adjust_snapshot(bundled()),
        "adjust_rossi": lambda: adjust_snapshot(rossi()),
        "sensitivity_bundled": lambda: sensitivity_snapshot(bundled(), extras=True),
        "sensitivity_rossi": lambda: sensitivity_snapshot(rossi(), extras=False),
        "adjust_registry_cli": registry_cli_snapshot,
    }


if __name__ == "__main__":
    only = set(sys.argv[1:])   # e.g. adjust_registry_cli: write just that snapshot
    for key, make in makers().items():
        if only and key not in only:
            continue
        value = make()
        dump(key, value)
        print("wrote", key)
