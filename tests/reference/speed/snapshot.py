"""Snapshot of the estimation core's outputs before the speed work of issue 12.

Run once on the code *before* a change (``python tests/reference/speed/snapshot.py``)
to write the JSON files beside it; tests/test_speed_identity.py then asserts that the
current code gives the same numbers. The bundled cohort is RECONSTRUCTED PSEUDO-DATA
(not the study's patients); rossi is lifelines' public dataset (tests/reference/datasets).
"""

from __future__ import annotations

import gzip
import json
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


def snapshots() -> dict:
    """name -> JSON-able value: what the test compares."""
    b, r = bundled(), rossi()
    return {
        "bootstrap_bundled_all": _bootstrap_reps(b, N_BOOT, "all"),
        "bootstrap_bundled_matchit": _bootstrap_reps(b, 300, "matchit"),
        "bootstrap_rossi_all": _bootstrap_reps(r, 300, "all"),
        "adjust_bundled": adjust_snapshot(b),
        "adjust_rossi": adjust_snapshot(r),
        "sensitivity_bundled": sensitivity_snapshot(b, extras=True),
        "sensitivity_rossi": sensitivity_snapshot(r, extras=False),
    }


if __name__ == "__main__":
    for key, value in snapshots().items():
        dump(key, value)
        print("wrote", key)
