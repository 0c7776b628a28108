"""effects.ph: cox.zph of each model behind a reported HR, against R survival 3.5.3."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc import api
from causal_hcc.effects.ph import PH_ALPHA, ph_checks, ph_frame, schoenfeld_scaled
from tests._fixtures import quiet

REF = Path(__file__).parent / "reference"


@pytest.fixture(scope="module")
def checks():
    with quiet():
        cohort = api.cohort()
        effects = api.adjust(n_boot=0)
    return {(c.method, c.estimand): c for c in ph_checks(cohort, effects)}


@pytest.mark.parametrize("key,model", [(("crude", None), "crude"),
                                       (("iptw", "ATE"), "iptw_ATE")])
def test_against_r_cox_zph(checks, key, model):
    """tests/reference/ph.R: chi-square and P rtol 1e-8 (same score test; the fitted beta
    agrees to Newton convergence); scaled Schoenfeld residuals (R cox.zph()$y, Efron
    ties) atol 1e-8."""
    ref = pd.read_csv(REF / "ph_tests.csv")
    row = ref[(ref["model"] == model) & (ref["term"] == "local_therapy")].iloc[0]
    check = checks[key]
    assert check.chisq == pytest.approx(row["chisq"], rel=1e-8)
    assert check.p == pytest.approx(row["p"], rel=1e-8)
    res = pd.read_csv(REF / "ph_residuals.csv")
    res = res[res["model"] == model]
    np.testing.assert_array_equal(check.time, res["time"].to_numpy())
    np.testing.assert_allclose(check.residual, res["residual"].to_numpy(), rtol=0, atol=1e-8)


def test_every_model_is_tested_and_flagged(checks):
    frame = ph_frame(checks.values())
    assert list(frame["method"])[:4] == ["crude", "multivariable", "psm", "psm_stratified"]
    assert {"ATE", "ATT", "ATC", "ATO"} <= set(frame["estimand"].dropna())
    assert (frame["violated"] == (frame["p"] < PH_ALPHA)).all()
    assert bool(frame.loc[frame["estimand"].eq("ATE") & frame["method"].eq("iptw"),
                          "violated"].item())                 # P = 0.015 (R agrees)
    assert checks[("psm_stratified", "ATT among matched treated")].residual.size == 0


def test_residuals_by_hand_without_ties():
    """Three deaths, no ties, one binary covariate, beta 0: the residual at each death is
    x minus the mean of x over those still at risk; scaled = 0 + 3 * V * r."""
    time = np.array([1.0, 2.0, 3.0, 4.0])
    event = np.array([1, 1, 1, 0])
    x = np.array([[1.0], [0.0], [1.0], [0.0]])
    t, scaled = schoenfeld_scaled(time, event, x, np.ones(4), np.zeros(1), np.eye(1))
    np.testing.assert_array_equal(t, [1.0, 2.0, 3.0])
    np.testing.assert_allclose(scaled[:, 0], 3 * np.array([1 - 2 / 4, 0 - 1 / 3, 1 - 1 / 2]),
                               rtol=1e-15)
