"""Immortal-time analyses against R's survival (tests/reference/immortal_time.R) and by hand.

Fixtures: survival 3.5.3, R 4.2.2 (tests/reference/immortal_versions.txt).
Tolerances: coefficients rtol 1e-6, model-based SEs and P values rtol 1e-5, log-likelihoods
rtol 1e-8, counts exact: these fixtures are R's coxph at its default eps = 1e-9, which stops
before the maximum (tests/test_sensitivity_counting_process.py compares the (start, stop]
fits with R run to eps = 1e-14, at rtol 1e-10).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from _sensitivity_fixtures import hcc_cohort as validate_frame
from causal_hcc.errors import CohortError, DataWarning, NotEstimableError
from causal_hcc.sensitivity import (counting_process_cox, counting_process_data,
                                    landmark_analysis, landmark_dataset,
                                    naive_vs_immortal_table, time_varying_cox)

REF = Path(__file__).parent / "reference"
CONFOUNDERS = ("ecog", "intrahepatic_ccr", "vascular_invasion")


@pytest.fixture(scope="module")
def r_cox() -> pd.DataFrame:
    return pd.read_csv(REF / "immortal_cox.csv")


@pytest.fixture(scope="module")
def synthetic():
    return validate_frame(pd.read_csv(REF / "immortal_synthetic_cohort.csv"),
                          source="immortal_synthetic_cohort.csv")


@pytest.fixture(scope="module")
def eight():
    return validate_frame(pd.read_csv(REF / "immortal_landmark8.csv"), source="8 rows")


def _r(r_cox, dataset, model):
    return r_cox[(r_cox["dataset"] == dataset) & (r_cox["model"] == model)].set_index("term")


def _check_fit(fit, expected):
    frame = fit.to_frame().set_index("term").loc[expected.index]
    np.testing.assert_allclose(frame["coef"], expected["coef"], rtol=1e-6, atol=0)
    np.testing.assert_allclose(frame["se"], expected["se"], rtol=1e-5)
    np.testing.assert_allclose(frame["p"], expected["p"], rtol=1e-5)
    np.testing.assert_allclose(fit.loglik, expected["loglik"].iloc[0], rtol=1e-8)
    assert fit.n_rows == expected["n"].iloc[0]            # exact
    assert fit.events == expected["nevent"].iloc[0]       # exact


# ------------------------------------------------------------------ Stanford heart data
@pytest.mark.parametrize("model,terms", [("transplant + age + surgery",
                                          ["transplant", "age", "surgery"]),
                                         ("transplant", ["transplant"])])
def test_counting_process_cox_matches_r_on_heart(r_cox, model, terms):
    heart = pd.read_csv(REF / "immortal_heart.csv")
    fit = counting_process_cox(heart, terms, start_col="start", stop_col="stop",
                               event_col="event", id_col="id")
    _check_fit(fit, _r(r_cox, "heart", model))
    assert fit.n_patients == 103                            # jasa1: 103 patients, exact


# ------------------------------------------------------------------ synthetic cohort
def test_counting_process_rows_match_r(synthetic):
    ours = counting_process_data(synthetic, CONFOUNDERS).to_frame()
    theirs = pd.read_csv(REF / "immortal_synthetic_cp.csv")
    # Same rows in the same order; times are multiples of 0.5, so exact equality.
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs, check_dtype=False,
                                  check_exact=True)


@pytest.mark.parametrize("model", ["crude", "adjusted"])
def test_time_varying_cox_matches_r(synthetic, r_cox, model):
    result = time_varying_cox(synthetic, CONFOUNDERS)
    fit = result.fits[0 if model == "crude" else 1]
    _check_fit(fit, _r(r_cox, "synthetic time-varying", model))
    assert fit.n_patients == 120                            # exact
    row = result.rows[0 if model == "crude" else 1]
    expected = _r(r_cox, "synthetic time-varying", model).loc["local_therapy"]
    np.testing.assert_allclose(row.hr, np.exp(expected["coef"]), rtol=1e-6)
    np.testing.assert_allclose(row.ci_upper, np.exp(expected["coef"] + 1.959963984540054
                                                    * expected["se"]), rtol=1e-5)


def test_landmark_analysis_matches_r(synthetic, r_cox):
    result = landmark_analysis(synthetic, (1, 3, 6), CONFOUNDERS)
    frame = result.to_frame()
    assert list(frame["model"]) == ["crude", f"adjusted for {', '.join(CONFOUNDERS)}"] * 3
    for row in result.rows:
        L = row.analysis.split()[1]
        model = "crude" if row.model == "crude" else "adjusted"
        expected = _r(r_cox, f"synthetic landmark {L}", model).loc["local_therapy"]
        np.testing.assert_allclose(np.log(row.hr), expected["coef"], rtol=1e-6)
        np.testing.assert_allclose(row.p, expected["p"], rtol=1e-5)
        assert (row.n, row.events, row.n_treated) == (
            expected["n"], expected["nevent"], expected["n_treated"])   # exact counts


def test_naive_vs_immortal_table(synthetic, r_cox):
    table = naive_vs_immortal_table(synthetic, covariates=CONFOUNDERS).to_frame()
    assert len(table) == 2 + 6 + 2
    naive = table[table["analysis"] == "naive baseline"]
    assert not naive["handles_immortal_time"].any()
    assert table.loc[table["analysis"] != "naive baseline", "handles_immortal_time"].all()
    for model, row in zip(["crude", "adjusted"], naive.itertuples()):
        expected = _r(r_cox, "synthetic naive", model).loc["local_therapy"]
        np.testing.assert_allclose(np.log(row.hr), expected["coef"], rtol=1e-6)
        np.testing.assert_allclose(row.p, expected["p"], rtol=1e-5)
    tv = table[table["analysis"] == "time-varying local therapy"]
    np.testing.assert_allclose(
        np.log(tv["hr"]), [_r(r_cox, "synthetic time-varying", m).loc["local_therapy", "coef"]
                           for m in ("crude", "adjusted")], rtol=1e-6)


# ------------------------------------------------------------------ 8-row hand case
def test_landmark_dataset_eight_rows_by_hand(eight):
    lm = landmark_dataset(eight, 3)
    # Kept L1, L2, L5, L6, L7 (os > 3); L3 and L8 died at 2 and 3; L4 censored at 2.5.
    assert list(lm.cohort.data["patient_id"]) == ["L1", "L2", "L5", "L6", "L7"]
    assert (lm.n, lm.events) == (5, 4)
    assert (lm.n_excluded_died, lm.n_excluded_censored) == (2, 1)
    # L2 starts local therapy at 5 > 3: untreated at the landmark.
    assert lm.n_reclassified == 1 and lm.n_treated_by_landmark == 2
    assert list(lm.cohort.data["local_therapy"]) == [1, 0, 0, 0, 1]
    assert list(lm.cohort.data["os_months"]) == [7.0, 9.0, 5.0, 1.0, 17.0]
    patients = lm.to_frame().set_index("patient_id")
    assert patients.loc["L8", "status"] == "excluded: died before the landmark"
    assert patients.loc["L4", "status"] == "excluded: censored before the landmark"
    assert patients.loc["L2", "reclassified"] == 1
    # The caller's frame is not modified.
    assert eight.data.loc[0, "os_months"] == 10.0


def test_landmark_hr_eight_rows_by_hand(eight, r_cox):
    row = landmark_analysis(eight, (3,)).rows[0]
    e = row.hr
    # Risk sets at the 4 death times (1, 5, 7, 9 months after the landmark), treated/
    # untreated at risk: (2, 3), (2, 2), (2, 1), (1, 1); only the death at 7 is treated.
    # Cox score equation: 1 = sum n1 e / (n1 e + n0). Holds to 1e-9 at the estimate.
    score = 1 - (2 * e / (2 * e + 3) + 2 * e / (2 * e + 2) + 2 * e / (2 * e + 1)
                 + e / (e + 1))
    assert abs(score) < 1e-9
    # And R agrees (coef -1.20838; rtol 1e-6).
    expected = _r(r_cox, "landmark8 landmark 3", "crude").loc["local_therapy"]
    np.testing.assert_allclose(np.log(e), expected["coef"], rtol=1e-6)
    assert (row.n, row.events, row.n_treated) == (5, 4, 2)


def test_landmark_not_estimable_records(eight):
    rows = landmark_analysis(eight, (9, 15)).rows
    # Landmark 9: L1, L2 (started at 5) and L7 remain, all treated: no untreated arm.
    assert not rows[0].estimable and "unexposed" in rows[0].reason
    assert (rows[0].n, rows[0].n_treated) == (3, 3)
    # Landmark 15: only L7, censored: no events.
    assert not rows[1].estimable and rows[1].reason == "no events"
    assert np.isnan(rows[1].hr)
    assert "not estimable" in landmark_analysis(eight, (9,)).summary()


def test_adjust_hook(eight):
    def fixed(cohort_at_landmark):
        assert cohort_at_landmark.n == 5
        return 0.5, 0.2, 1.25, 0.14

    def refuses(cohort_at_landmark):
        raise NotEstimableError("too few patients for a propensity score")

    frame = landmark_analysis(eight, (3,), adjust=fixed).to_frame()
    hook = frame[frame["model"] == "adjust hook: fixed"].iloc[0]
    assert (hook["hr"], hook["ci_lower"], hook["ci_upper"], hook["p"]) == (0.5, 0.2, 1.25, 0.14)
    row = landmark_analysis(eight, (3,), adjust=refuses).rows[-1]
    assert not row.estimable and "propensity" in row.reason


# ------------------------------------------------------------------ conventions, refusals
def test_refuses_treated_without_time_to_local_therapy(eight):
    frame = eight.data.copy()
    frame.loc[[0, 6], "months_to_local_therapy"] = np.nan
    cohort = validate_frame(frame, source="missing ttl")
    for call in (time_varying_cox, counting_process_data, lambda c: landmark_dataset(c, 3)):
        with pytest.raises(CohortError, match=r"months_to_local_therapy.*rows 1 \(id L1\), "
                                              r"7 \(id L7\)"):
            call(cohort)


def test_refuses_without_the_column(eight):
    cohort = validate_frame(eight.data.drop(columns="months_to_local_therapy"), source="x")
    with pytest.raises(CohortError, match="treatment_start"):
        time_varying_cox(cohort)


def test_counting_process_edge_cases(eight):
    frame = eight.data.copy()
    frame.loc[0, "months_to_local_therapy"] = 10.0        # starts on the last day (os 10)
    frame.loc[3, "os_months"] = 0.0                        # no follow-up at all
    with pytest.warns(DataWarning, match="os_months"):
        cohort = validate_frame(frame, source="edges")
    cp = counting_process_data(cohort, ())
    rows = cp.to_frame()
    assert cp.excluded == (("L4", "os_months = 0: no follow-up time, an empty (0, 0] "
                                  "interval"),)
    # L1: one untreated row (0, 10]; L3 (ttl 0): one treated row (0, 2];
    # L2: (0, 5] untreated then (5, 12] treated with the death.
    l1, l3 = rows[rows["patient_id"] == "L1"], rows[rows["patient_id"] == "L3"]
    assert l1[["start", "stop", "death", "local_therapy"]].values.tolist() == [[0, 10, 1, 0]]
    assert l3[["start", "stop", "death", "local_therapy"]].values.tolist() == [[0, 2, 1, 1]]
    l2 = rows[rows["patient_id"] == "L2"]
    assert l2[["start", "stop", "death", "local_therapy"]].values.tolist() == [
        [0, 5, 0, 0], [5, 12, 1, 1]]
    assert cp.n_patients == 7 and cp.n_split == 2         # L2 and L7 are split
    assert "last day of follow-up" in cp.summary()


def test_results_describe_themselves(synthetic):
    text = time_varying_cox(synthetic, CONFOUNDERS).summary()
    assert "Efron" in text and "time-varying" in text
    assert "later starters count as untreated" in naive_vs_immortal_table(synthetic).summary()


def test_bundled_cohort_end_to_end():
    """Every sensitivity analysis runs on the bundled reconstruction and says what it is."""
    from _sensitivity_fixtures import load_bundled
    from causal_hcc.sensitivity import observed_confounder_benchmarks
    from causal_hcc.studies.yang2025.ned import ned_null_correlation
    from causal_hcc.studies.yang2025.what_ifs import IMMORTAL_LANDMARKS

    cohort = load_bundled()
    table = naive_vs_immortal_table(cohort, IMMORTAL_LANDMARKS, covariates=CONFOUNDERS)
    assert "RECONSTRUCTED" in table.summary()
    assert len(table.to_frame()) == 10
    assert table.rows[0].n == 76                           # exact: 40 + 36 patients
    assert "RECONSTRUCTED" in observed_confounder_benchmarks(cohort).summary()
    ned = ned_null_correlation(cohort, n_sim=200, seed=1)
    assert ned.rows[0].r_published == 0.851


def test_every_row_names_its_comparison(synthetic):
    frame = naive_vs_immortal_table(synthetic).to_frame()
    assert frame["comparison"].str.contains("reference:").all()
    assert frame.loc[0, "comparison"].startswith("local therapy ever vs never")
