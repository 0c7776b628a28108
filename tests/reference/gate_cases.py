"""Messy inputs of the validation gate and a summary of what it makes of them.

``python tests/reference/gate_cases.py OUT.json`` writes the summaries; gate_before.json
was written by the gate as it was before it was vectorised (issue 12; main at 82e1c01),
and tests/test_gate_vectorised.py checks that the gate still gives exactly
these results.
"""

import json
import sys
import warnings

import numpy as np
import pandas as pd


def cases():
    rng = np.random.default_rng(12)
    n = 400
    ids = [f" P{i:04d} " for i in range(n)]
    base = pd.DataFrame({
        "pid": ids,
        "t": [f" {v:.1f}" for v in np.round(rng.exponential(20, n), 1)],
        "e": rng.choice(["1", "0", "yes", "No ", "TRUE", "f", "1.0"], n),
        "arm": rng.choice(["2", "1", "2.0"], n),
        "age": [f"{v:g}" for v in np.round(rng.normal(60, 9, n))],
        "sex": rng.choice(["male", " female", "male\xa0"], n),
        "grade": rng.choice(["1", "2", "3"], n),
        "code": rng.choice(["-0", "0", "1.5", "2"], n),
        "flag": rng.choice(["0", "1"], n),
        "note": rng.choice(["NA", "None", "x"], n),
    })
    roles = dict(time="t", event="e", treatment="arm", id="pid",
                 covariates=["age", "sex", "grade", "code", "flag"], categorical=["grade"])
    yield "messy_text", base, roles, {"treated_value": "2"}
    blanks = base.copy()
    blanks.loc[[3, 50, 51], "age"] = np.nan
    blanks.loc[[7], "sex"] = "   "
    blanks.loc[[9], "t"] = ""
    yield "missing_drop", blanks, roles, {"treated_value": "2", "missing": "drop"}
    yield "missing_raise", blanks, roles, {"treated_value": "2"}
    bad = base.copy()
    bad.loc[[1, 2], "e"] = ["2", "dead"]
    bad.loc[[4], "t"] = "-3"
    bad.loc[[5], "t"] = "abc"
    yield "errors", bad, roles, {"treated_value": "2"}
    numeric = pd.DataFrame({"t": rng.exponential(10, 60).round(2), "e": rng.integers(0, 2, 60),
                            "a": np.tile([0, 1], 30), "x": rng.normal(size=60),
                            "c": rng.choice([-0.0, 0.0, 2.5], 60),
                            "b": rng.choice([True, False], 60)})
    numeric.loc[[0, 1], "e"] = 1
    yield "numeric_frame", numeric, dict(time="t", event="e", treatment="a",
                                         covariates=["x", "c", "b"],
                                         categorical=["c"]), {}
    yield "numeric_frame_ok", numeric.assign(c=rng.choice([0.0, 1.5, 2.5], 60)), dict(
        time="t", event="e", treatment="a", covariates=["x", "c", "b"],
        categorical=["c"]), {}
    dates = base.assign(when=[f"2020-01-{d % 28 + 1:02d}" for d in range(n)])
    yield "dates", dates, dict(roles, covariates=["age", "when"]), {"treated_value": "2"}


def _cell(v):
    if v is None:
        return "None"
    if v is pd.NA:
        return "<NA>"
    if isinstance(v, float):
        return "nan" if np.isnan(v) else repr(v)
    return f"{type(v).__name__}:{v!r}"


def summarise(cohort) -> dict:
    data = cohort.data
    return {"columns": list(map(str, data.columns)),
            "dtypes": [str(t) for t in data.dtypes],
            "cells": {str(c): [_cell(v) for v in data[c].tolist()] for c in data.columns},
            "kinds": dict(cohort.kinds), "levels": {k: list(v) for k, v in
                                                    cohort.levels.items()},
            "notes": list(cohort.notes), "n_read": cohort.n_read,
            "exclusions": [[e.row, e.patient_id, e.reason] for e in cohort.exclusions],
            "treated": repr(cohort.treated_value), "control": repr(cohort.control_value),
            "labels": [cohort.labels.treated, cohort.labels.control]}


def run() -> dict:
    from causal_hcc.data.cohort import Roles
    from causal_hcc.data.schema import validate_frame
    from causal_hcc.errors import CohortError
    out = {}
    for name, frame, roles, kw in cases():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = summarise(validate_frame(frame, roles=Roles(**roles), **kw))
            except CohortError as exc:
                result = {"error": str(exc)}
        result["warnings"] = sorted(str(w.message) for w in caught
                                    if "causal_hcc" in w.category.__module__)
        out[name] = result
    return out


if __name__ == "__main__":
    with open(sys.argv[1], "w", encoding="utf-8") as fh:
        json.dump(run(), fh, indent=1, sort_keys=True)
