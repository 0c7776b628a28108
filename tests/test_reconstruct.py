"""Tests of the bundled RECONSTRUCTED pseudo-cohort (not the study's patients).

The cohort is held to the published aggregates (calibration table, computed with lifelines),
to the exact Table 1 / Table 2 counts (recomputed here from paper_targets.json), to bit-for-bit
regeneration from the default seed, and to its own consistency rules. The generator's fast
estimators are checked against lifelines.
"""

import io
import json
from importlib import resources

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import logrank_test

from causal_hcc.studies.yang2025.calibration import calibration_table
from causal_hcc.studies.yang2025.reconstruct import (DEFAULT_SEED, ReconstructionParams,
                                                     bundled_csv_path, read_cohort_csv,
                                                     reconstruct_cohort)
from causal_hcc.studies.yang2025.reconstruct_fast import (TieBlocks, binary_cox_newton,
                                                          cox_efron_fast, km_fast, logrank_fast)
from causal_hcc.studies.yang2025.targets import COLUMNS

CUTOFF = pd.Timestamp("2024-06-30")
MONTH_DAYS = 365.25 / 12


@pytest.fixture(scope="module")
def bundled() -> pd.DataFrame:
    return read_cohort_csv(bundled_csv_path())


@pytest.fixture(scope="module")
def targets() -> dict:
    text = resources.files("causal_hcc.studies.yang2025").joinpath("paper_targets.json").read_text("utf-8")
    return json.loads(text)


def _failed_rows(table: pd.DataFrame) -> list[str]:
    checked = table[table["passed"].notna()]
    return [f"{r.target}: published {r.published}, target {r.target_value}, reconstructed "
            f"{r.reconstructed:.4g} ({r.tolerance})"
            for r in checked.itertuples() if not r.passed]


def test_bundled_csv_passes_every_checked_target(bundled):
    table = calibration_table(bundled)
    assert {"target", "source", "published", "target_value", "reconstructed", "tolerance",
            "passed", "note"} == set(table.columns)
    assert table["passed"].notna().sum() > 150
    failures = _failed_rows(table)
    assert not failures, "targets missed:\n" + "\n".join(failures)


def test_calibration_table_flags_not_reached_medians(bundled):
    table = calibration_table(bundled)
    flagged = table[table["published"].astype(str) == "not reached"]
    assert len(flagged) == 2     # local arm and oligo local arm (audit A2): reported, not targets
    assert flagged["passed"].isna().all()
    assert flagged["note"].str.contains("FLAG").all()
    assert flagged["reconstructed"].between(24, 60).all()


# Output coding of each targets.json variable level (independent of the package's mapping).
CODING = {
    "sex": ("sex", {"male": "male", "female": "female"}),
    "hepatitis": ("hepatitis", {"yes": 1, "no": 0}),
    "cirrhosis": ("cirrhosis", {"yes": 1, "no": 0}),
    "ecog_ps": ("ecog", {"0": 0, "1": 1}),
    "child_pugh_class": ("child_pugh", {"A": "A", "B": "B"}),
    "afp": ("afp_positive", {"negative": 0, "positive": 1}),
    "intrahepatic_viable_lesions": ("intrahepatic_lesions",
                                    {"none": "none", "single": "single", "multiple": "multiple"}),
    "vascular_invasion": ("vascular_invasion", {"yes": 1, "no": 0}),
    "intrahepatic_ccr": ("intrahepatic_ccr", {"yes": 1, "no": 0}),
    "extrahepatic_lesion_count": ("extrahepatic_lesions",
                                  {"single": "single", "multiple": "multiple"}),
    "systemic_regimen": ("systemic_regimen", {"targeted_or_immune_single_class": "single_agent",
                                              "targeted_plus_immune": "combination"}),
    "oligometastasis": ("oligometastatic", {"yes": 1, "no": 0}),
}


@pytest.mark.parametrize("table_key", ["baseline_table1", "baseline_table2_oligometastatic"])
def test_exact_baseline_counts_per_arm(bundled, targets, table_key):
    df = bundled if table_key == "baseline_table1" else bundled[bundled["oligometastatic"] == 1]
    variables = targets[table_key]["variables"]
    mismatches = []
    for key, (column, coding) in CODING.items():
        if key not in variables:
            continue
        levels = variables[key]["levels"]
        for level, value in coding.items():
            for arm, treated in (("local", 1), ("no_local", 0)):
                expected = levels[level][arm]["n"]
                if table_key != "baseline_table1" and key == "extrahepatic_lesion_count":
                    # Audit B3: the printed 14/11 is a typo for 15/10 (Fisher P 0.748).
                    expected = variables[key]["corrected_counts_recommended"][arm][level]
                got = int(((df["local_therapy"] == treated) & (df[column] == value)).sum())
                if got != expected:   # counts are exact targets
                    mismatches.append(f"{table_key} {key}={level} {arm}: {got} != {expected}")
    assert not mismatches, "\n".join(mismatches)


def test_regeneration_with_default_seed_reproduces_bundled_csv(bundled):
    regenerated = reconstruct_cohort(DEFAULT_SEED)
    text = regenerated.to_csv(index=False, lineterminator="\n")
    assert text == bundled_csv_path().read_text("utf-8")
    pd.testing.assert_frame_equal(read_cohort_csv(io.StringIO(text)), bundled)
    pd.testing.assert_frame_equal(regenerated, bundled)


def test_other_seed_gives_other_cohort_meeting_hard_targets(bundled):
    other = reconstruct_cohort(seed=1)
    assert not other.drop(columns="patient_id").equals(bundled.drop(columns="patient_id"))
    assert other.attrs["search"]["met"]
    failures = _failed_rows(calibration_table(other))
    assert not failures, "targets missed with seed 1:\n" + "\n".join(failures)


def test_params_are_frozen_and_named():
    params = ReconstructionParams()
    with pytest.raises(AttributeError):
        params.n_iterations = 1
    assert params.log_hr_vascular_invasion == pytest.approx(np.log(1.5))


# ----------------------------------------------------------------------------------------
# Fast estimators of the search against lifelines (rtol 1e-6; lifelines' Cox is run to a
# tight convergence so the comparison is of the formulas, not of stopping rules)
# ----------------------------------------------------------------------------------------

def _tied(df: pd.DataFrame) -> pd.DataFrame:
    """The bundled cohort with times rounded to whole months: many tied deaths (Efron)."""
    out = df.copy()
    out["os_months"] = np.ceil(out["os_months"])
    return out


@pytest.fixture(scope="module", params=["bundled", "tied"])
def cohort(request, bundled):
    return bundled if request.param == "bundled" else _tied(bundled)


def test_km_fast_matches_lifelines(cohort):
    local = cohort["local_therapy"].to_numpy() == 1
    oligo = cohort["oligometastatic"].to_numpy() == 1
    groups = np.column_stack([np.ones(len(cohort), bool), local, ~local, local & oligo,
                              ~local & oligo, local & ~oligo, ~local & ~oligo])
    marks = (6.0, 12.0, 24.0, 36.0, 60.0)
    surv, median = km_fast(cohort["os_months"], cohort["death"], groups, marks)
    for g in range(groups.shape[1]):
        sub = cohort[groups[:, g]]
        km = KaplanMeierFitter().fit(sub["os_months"], sub["death"])
        ref = km.survival_function_at_times(list(marks)).to_numpy()
        np.testing.assert_allclose(surv[g], ref, rtol=1e-6, atol=1e-12)
        assert median[g] == km.median_survival_time_


def test_logrank_fast_matches_lifelines(cohort):
    local = cohort["local_therapy"].to_numpy() == 1
    oligo = cohort["oligometastatic"].to_numpy() == 1
    subsets = np.column_stack([np.ones(len(cohort), bool), oligo, ~oligo])
    chi2, p = logrank_fast(cohort["os_months"], cohort["death"],
                           np.column_stack([local] * 3), subsets)
    for c in range(3):
        sub = cohort[subsets[:, c]]
        a, b = sub[sub["local_therapy"] == 1], sub[sub["local_therapy"] == 0]
        ref = logrank_test(a["os_months"], b["os_months"], a["death"], b["death"])
        np.testing.assert_allclose([chi2[c], p[c]], [ref.test_statistic, ref.p_value], rtol=1e-6)


def _design(df):
    return pd.DataFrame({"ecog": df["ecog"], "milan": df["milan_within"],
                         "ccr": df["intrahepatic_ccr"], "non_oligo": 1 - df["oligometastatic"],
                         "no_local": 1 - df["local_therapy"],
                         "age": df["age"] / 10.0}).astype(float)


def test_cox_efron_fast_matches_lifelines(cohort):
    x = _design(cohort)
    data = x.assign(T=cohort["os_months"], E=cohort["death"])
    for cols in (["ecog"], ["no_local"], ["age"], list(x.columns)):
        ref = CoxPHFitter().fit(data[cols + ["T", "E"]], "T", "E",   # Efron ties
                                fit_options={"precision": 1e-13, "r_precision": 1e-15})
        beta, se, loglik = cox_efron_fast(cohort["os_months"], cohort["death"], x[cols])
        np.testing.assert_allclose(beta, ref.params_.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(se, ref.standard_errors_.to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(loglik, ref.log_likelihood_, rtol=1e-6)


def test_count_based_binary_cox_equals_general_fit(cohort):
    x = _design(cohort)[["ecog", "milan", "ccr", "non_oligo", "no_local"]].to_numpy()
    b = TieBlocks(cohort["os_months"], cohort["death"])
    xs = x[b.order]
    risk, deaths = b.block_sums(np.hstack((np.ones((len(xs), 1)), xs)))
    k, f = b.death_block, b.efron_frac[:, None]
    efron = risk[k] - f * deaths[k]
    beta = binary_cox_newton(efron[:, :1], efron[:, 1:], cohort["death"].to_numpy() @ x,
                             np.zeros(5), 30)
    general = [cox_efron_fast(cohort["os_months"], cohort["death"], x[:, j])[0][0]
               for j in range(5)]
    np.testing.assert_allclose(beta, general, rtol=1e-8)


# ----------------------------------------------------------------------------------------
# Consistency of the pseudo-patients
# ----------------------------------------------------------------------------------------

def test_columns_and_identifiers(bundled):
    assert tuple(bundled.columns) == COLUMNS
    assert bundled["patient_id"].is_unique
    assert bundled["patient_id"].tolist() == sorted(bundled["patient_id"])
    assert len(bundled) == 76 and (bundled["os_months"] > 0).all()
    assert bundled["os_months"].equals(bundled["os_months"].round(1))


def test_treatment_timing_is_consistent(bundled):
    treated = bundled["local_therapy"] == 1
    ttl = bundled["months_to_local_therapy"]
    assert ttl[~treated].isna().all()
    assert ttl[treated].notna().all()
    assert (ttl[treated] >= 0).all()
    assert (ttl[treated] < bundled.loc[treated, "os_months"]).all()


def test_ned_is_consistent(bundled):
    ned = bundled["ned_cumulative_months"]
    achieved = bundled["ned_achieved"] == 1
    assert ned[~achieved].isna().all() and (ned[achieved] > 0).all()
    assert (bundled.loc[achieved, "local_therapy"] == 1).all()
    room = bundled["os_months"] - bundled["months_to_local_therapy"].fillna(0.0)
    assert (ned[achieved] <= room[achieved] + 1e-9).all()     # 0.1-month grid, float slack
    assert (ned[achieved] <= bundled.loc[achieved, "os_months"]).all()


def test_follow_up_fits_the_calendar(bundled):
    diagnosis = pd.to_datetime(bundled["diagnosis_date"], format="%Y-%m-%d")
    assert diagnosis.between(pd.Timestamp("2017-01-01"), pd.Timestamp("2023-12-31")).all()
    available = (CUTOFF - diagnosis).dt.days / MONTH_DAYS
    assert (bundled["os_months"] <= available + 1e-9).all()


def test_clinical_rules(bundled):
    none = bundled["intrahepatic_lesions"] == "none"
    assert (bundled.loc[none, "intrahepatic_ccr"] == 1).all()       # audit B9
    assert (bundled.loc[none, "milan_within"] == 1).all()
    assert (bundled.loc[bundled["vascular_invasion"] == 1, "milan_within"] == 0).all()
    assert (bundled["intrahepatic_max_diameter_cm"] > 0).all()
    # Audit B6: multiple lesions and vascular invasion are distinct columns, not copies.
    assert not (bundled["vascular_invasion"]
                == (bundled["intrahepatic_lesions"] == "multiple").astype(int)).all()
    # No binary covariate may separate the arms perfectly (propensity models would fail).
    for column in ("milan_within", "intrahepatic_ccr", "vascular_invasion", "ecog"):
        assert pd.crosstab(bundled["local_therapy"], bundled[column]).min().min() > 0, column
    single = bundled["extrahepatic_lesions"] == "single"
    assert (bundled.loc[single, "oligometastatic"] == 1).all()       # audit B3
