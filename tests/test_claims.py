"""The claims engine: the paper-vs-reproduced table driven by a claims file."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.claims import load_claims, verify_claims
from causal_hcc.studies.yang2025 import claims_path
from causal_hcc.studies.yang2025 import load_bundled, validate_frame
from causal_hcc.errors import CohortError

REF = Path(__file__).parent / "reference"
# R coxph(Surv(os_months, death) ~ local_therapy) on the mapped veteran data
# (tests/reference/effects.R, row "crude").
R_CRUDE = pd.read_csv(REF / "effects_veteran_cox.csv").set_index("method").loc["crude"]


@pytest.fixture(scope="module")
def veteran():
    return validate_frame(pd.read_csv(REF / "effects_veteran_cohort.csv"),
                          source="veteran mapped")


def _claims(*claims):
    return {"manuscript": "test manuscript", "claims": list(claims),
            "terms": {"tx": {"column": "local_therapy", "level": 1, "reference": 0}},
            "models": {}}


def test_cox_claim_reproduces_r_and_judges_the_tolerance(veteran):
    hr = float(np.exp(R_CRUDE["coef"]))
    check = verify_claims(veteran, _claims(
        {"id": "hr_ok", "quantity": "cox_hr", "term": "tx", "model": "univariable",
         "published": round(hr, 3), "published_ci": [0.7, 1.5],
         "tolerance": {"log_ratio": 0.15, "inside_ci": True}},
        {"id": "hr_far", "quantity": "cox_hr", "term": "tx", "published": 0.5,
         "tolerance": {"log_ratio": 0.15}}))
    table = check.to_frame().set_index("id")
    np.testing.assert_allclose(table.loc["hr_ok", "reproduced"], hr, rtol=1e-6)
    assert table.loc["hr_ok", "status"] == "agrees"
    assert table.loc["hr_far", "status"] == "differs"


def test_statuses_for_inconsistent_and_not_estimable_claims(veteran):
    check = verify_claims(veteran, _claims(
        {"id": "nr", "quantity": "median_months", "arm": 1, "published": None,
         "printed": "not reached", "paper_issue": "contradicts the landmarks",
         "tolerance": {"abs": 1}},
        {"id": "no_col", "quantity": "survival_pct", "time": 12,
         "subset": {"oligometastatic": 1}, "published": 50, "tolerance": {"abs": 3}},
        # Everyone has died by 400 months (the last time is a death): S = 0, estimable.
        {"id": "late", "quantity": "survival_pct", "time": 400, "published": 20,
         "tolerance": {"abs": 3}},
        {"id": "empty", "quantity": "n", "subset": {"death": 7}, "published": 1,
         "tolerance": {"abs": 0}},
        {"id": "deaths", "quantity": "deaths", "published": 128, "tolerance": {"abs": 0}}))
    status = check.to_frame().set_index("id")["status"]
    assert status.to_dict() == {"nr": "paper inconsistent", "no_col": "not estimable",
                                "late": "differs", "empty": "not estimable",
                                "deaths": "agrees"}
    assert "column 'oligometastatic' (subset) is not in the data" in check.summary()


def test_invalid_claims_file_names_the_claim(tmp_path):
    path = tmp_path / "claims.json"
    path.write_text(json.dumps({"claims": [{"id": "c1", "quantity": "mean_age",
                                            "tolerance": {"abs": 1}}]}))
    with pytest.raises(CohortError, match="claim c1: quantity 'mean_age'"):
        load_claims(path)


def test_the_papers_claims_on_the_bundled_cohort():
    check = verify_claims(load_bundled(), load_claims(claims_path()))
    table = check.to_frame().set_index("id")
    assert len(table) == len(load_claims(claims_path())["claims"]) == 58
    # Audit A2: "median not reached" contradicts the arm's own landmark rates.
    assert table.loc["median_all_local", "status"] == "paper inconsistent"
    assert table.loc["median_oligo_local", "status"] == "paper inconsistent"
    # The reconstruction is held to these (foundation issue): they must agree.
    for cid in ("deaths", "n_local", "n_no_local", "logrank_all", "logrank_oligo",
                "logrank_nonoligo", "cox_univa_local_therapy", "cox_multi_local_therapy",
                "median_overall", "os12_all_local", "os24_all_no_local"):
        assert table.loc[cid, "status"] == "agrees", (cid, table.loc[cid].to_dict())
    assert "RECONSTRUCTED PSEUDO-DATA" in check.summary()


def test_correlation_claims_match_scipy_and_a_constant_column_is_not_estimable(veteran):
    """r and P as scipy.stats gives them (without importing it in the package); a
    constant column in the subset is 'not estimable' with the reason, not r = NaN."""
    from scipy import stats
    check = verify_claims(veteran, _claims(
        {"id": "r_p", "quantity": "correlation", "x": "ecog", "y": "os_months",
         "method": "pearson", "published": 0.0, "tolerance": {"abs": 0.5}},
        {"id": "r_s", "quantity": "correlation", "x": "ecog", "y": "os_months",
         "method": "spearman", "published": 0.0, "tolerance": {"abs": 0.5}},
        {"id": "r_c", "quantity": "correlation", "x": "death", "y": "os_months",
         "subset": {"death": 1}, "published": 0.5, "tolerance": {"abs": 0.5}}))
    table = check.to_frame().set_index("id")
    pair = veteran.data[["ecog", "os_months"]].astype(float)
    assert table.loc["r_p", "reproduced"] == stats.pearsonr(pair.ecog, pair.os_months)[0]
    assert table.loc["r_s", "reproduced"] == stats.spearmanr(pair.ecog, pair.os_months)[0]
    assert table.loc["r_c", "status"] == "not estimable"
    assert "constant" in check.summary()
