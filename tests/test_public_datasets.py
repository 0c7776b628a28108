"""Public survival datasets, each with its own column names, through the Python API and
the CLI, against R (tests/reference/public.R: survival 3.5.3, MatchIt 4.5.1 with the
2^26 distance workaround). Tolerances: coefficients rtol 1e-6 (both converge to ~1e-10),
robust / cluster SEs rtol 1e-4 (sandwich at the converged beta)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import causal_hcc as ch
from causal_hcc.cli import main
from causal_hcc.errors import CausalHccWarning
from tests._fixtures import REF

DATASETS = {
    "rossi": dict(time="week", event="arrest", treatment="fin", time_unit="weeks",
                  covariates=["age", "race", "wexp", "mar", "paro", "prio"]),
    "veteran": dict(time="time", event="status", treatment="trt", treated=2,
                    time_unit="days", covariates=["celltype", "karno", "age", "prior"]),
    "ovarian": dict(time="futime", event="fustat", treatment="rx", treated=2,
                    time_unit="days", covariates=["age", "resid.ds", "ecog.ps"]),
}
CHECKED = [("crude", None), ("multivariable", None), ("psm", "ATT"), ("iptw", "ATE"),
           ("iptw", "ATT"), ("iptw", "ATO")]


def _r(name: str) -> pd.DataFrame:
    r = pd.read_csv(REF / "public" / f"{name}_effects.csv")
    r["estimand"] = r["estimand"].fillna("")
    return r


def _fit(name: str, frame=None):
    frame = pd.read_csv(REF / "datasets" / f"{name}.csv") if frame is None else frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        return ch.adjust(frame, n_boot=0, **DATASETS[name])


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_api_agrees_with_r_on_public_data(name):
    ours = _fit(name).to_frame()
    ours["estimand"] = ours["estimand"].fillna("")
    r = _r(name)
    for method, estimand in CHECKED:
        a = ours[(ours.method == method) & (ours.estimand == (estimand or ""))].iloc[0]
        b = r[(r.method == method) & (r.estimand == (estimand or ""))].iloc[0]
        np.testing.assert_allclose(np.log(a.hr), b.coef, rtol=1e-6, err_msg=f"{method} {estimand}")
        np.testing.assert_allclose(a.se_log_hr, b.se, rtol=1e-4, err_msg=f"{method} {estimand}")


def test_pbc_with_recode_missing_drop_and_text_categorical(tmp_path):
    """pbc: event coded 0/1/2 (recoded), 1/2 treatment, text-coded sex, 106 rows without
    treatment excluded and listed."""
    out = tmp_path / "pbc"
    code = main(["adjust", "--data", str(REF / "datasets" / "pbc.csv"), "--time", "time",
                 "--event", "status", "--recode", "status:2=1,1=0,0=0", "--treatment", "trt",
                 "--treated", "1", "--covariates", "age,sex,bili,albumin,edema",
                 "--missing", "drop", "--time-unit", "days", "--bootstrap", "0",
                 "--formats", "none", "--out", str(out), "--quiet"])
    assert code == 0
    import json
    records = json.loads((out / "effects.json").read_text())
    r = _r("pbc")
    for method, estimand in (("psm", "ATT"), ("iptw", "ATE")):
        ours = next(e for e in records if e["method"] == method and e["estimand"] == estimand)
        ref = r[(r.method == method) & (r.estimand == estimand)].iloc[0]
        np.testing.assert_allclose(np.log(ours["hr"]), ref.coef, rtol=1e-6)
    assert sum(e["n_treated"] + e["n_control"] for e in records if e["method"] == "crude") \
        == 312


def test_readme_api_example_runs_on_rossi():
    from lifelines.datasets import load_rossi
    fit = ch.adjust(load_rossi(), time="week", event="arrest", treatment="fin",
                    covariates=["age", "prio", "wexp"], time_unit="weeks", n_boot=20)
    frame = fit.to_frame()
    assert {"method", "estimand", "hr", "ci_lower", "ci_upper"} <= set(frame.columns)
    assert "fin" in fit.summary() or "treated" in fit.summary()


def test_a_two_valued_numeric_covariate_is_not_dropped():
    """Issue 10: a 0/1 or 1/2 'sex' must enter the PS model (it was silently dropped)."""
    frame = pd.read_csv(REF / "datasets" / "ovarian.csv")
    fit = _fit("ovarian", frame)
    assert "resid.ds" in fit.propensity.formula and "ecog.ps" in fit.propensity.formula
    assert {"resid.ds[2]", "ecog.ps[2]"} <= set(fit.propensity.coefficients["term"])
