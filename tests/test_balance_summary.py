"""balance_summary (cobalt bal.tab, long format) and weight_summary (ESS, weights)."""

import numpy as np
import pandas as pd
import pytest

from causal_hcc import api
from causal_hcc.balance import (SUMMARY_COLUMNS, WEIGHT_COLUMNS, balance_summary,
                                method_display, weight_summary)
from tests._fixtures import quiet


@pytest.fixture(scope="module")
def bundled():
    with quiet():
        cohort = api.cohort()
        return cohort, api.adjust(n_boot=0)


def test_columns_and_method_order(bundled):
    cohort, effects = bundled
    table = balance_summary(effects, cohort)
    assert list(table.columns) == SUMMARY_COLUMNS
    methods = list(dict.fromkeys(table["method"]))
    assert methods[:6] == ["Unadjusted", "PSM (ATT)", "IPTW (ATE)", "IPTW (ATT)",
                           "IPTW (ATC)", "IPTW (ATO)"]
    assert {"PSM (ATC)", "Exact (ATT)", "CEM (ATE)", "Subclass (ATC)"} <= set(methods)
    # Without the cohort, only effects.balance (no data for the further matching rows).
    assert list(dict.fromkeys(balance_summary(effects)["method"])) == methods[:6]


def test_one_row_per_binary_variable_and_per_level_of_a_category(bundled):
    cohort, effects = bundled
    table = balance_summary(effects, cohort)
    un = table[table["method"] == "Unadjusted"].set_index("label")
    # 15 variables; intrahepatic_lesions has 3 levels (3 rows), every other one is 1 row.
    assert len(un) == 17 and un["variable"].nunique() == 15
    assert (table.groupby("method").size() == 17).all()
    sex = un.loc["sex: female"]
    assert sex["kind"] == "binary" and sex["level"] is None
    psm_rows = effects.balance["psm"].rows.set_index(["variable", "level"])
    psm = table[table["method"] == "PSM (ATT)"].set_index("variable")
    # the non-reference level's SMD, exactly as in balance.csv
    assert psm.loc["sex", "smd"] == psm_rows.loc[("sex", "female"), "smd_after"]
    lesions = un[un["variable"] == "intrahepatic_lesions"]
    assert list(lesions["level"]) == ["none", "single", "multiple"]
    assert (lesions["kind"] == "categorical").all()


def test_values_are_those_of_the_balance_tables(bundled):
    cohort, effects = bundled
    table = balance_summary(effects, cohort)
    ate = effects.balance["iptw_ATE"].rows
    un = table[table["method"] == "Unadjusted"]
    ecog = un[un["variable"] == "ecog"].iloc[0]
    # exact: the same numbers, reshaped (pooled SD, as IPTW ATE's "before")
    assert ecog["smd"] == ate.loc[ate["variable"] == "ecog", "smd_before"].item()
    assert ecog["smd"] == pytest.approx(-0.4968511, abs=1e-7)
    assert ecog["smd_denominator"] == "pooled SD" and bool(ecog["in_model"])
    att = table[table["method"] == "IPTW (ATT)"]
    age = att[att["variable"] == "age"].iloc[0]
    rows = effects.balance["iptw_ATT"].rows.set_index("variable")
    assert age["variance_ratio"] == rows.loc["age", "variance_ratio_after"]
    assert age["ks"] == rows.loc["age", "ks_after"]
    assert age["smd_denominator"] == "treated SD" and not age["in_model"]
    binary = table[table["kind"] != "continuous"]
    assert binary["variance_ratio"].isna().all() and binary["ks"].isna().all()
    assert (table["imbalanced"] == (table["smd"].abs() > 0.1)).all()
    # matching on the PS covariates balances them exactly in every matched set
    psm = table[(table["method"] == "PSM (ATT)") & table["in_model"]]
    assert np.abs(psm["smd"]).max() < 1e-12


def test_weight_summary_ess_and_extremes(bundled):
    _, effects = bundled
    w = weight_summary(effects)
    assert list(w.columns) == WEIGHT_COLUMNS
    ate = w[w["method"] == "IPTW (ATE)"].iloc[0]
    assert ate["ess_control"] == pytest.approx(7.316276, abs=1e-6)
    assert ate["ess_treated"] == pytest.approx(effects.weights["ATE"].ess["treated"],
                                               rel=1e-12)
    att = w[w["method"] == "IPTW (ATT)"].iloc[0]
    assert att["ess_control"] == pytest.approx(2.445219, abs=1e-6)
    assert att["min_weight_treated"] == att["max_weight_treated"] == 1.0
    assert att["n_treated"] == 40 and att["n_control"] == 36
    psm = w[w["method"] == "PSM (ATT)"].iloc[0]
    assert psm["n_treated"] == effects.matched.n_matched_treated


def test_weight_summary_by_hand():
    class _P:
        treated = np.array([1, 1, 0, 0, 0])

    class _M:
        estimand, weights = "ATT", np.array([1.0, 0.0, 3.0, 4 / 3, 0.0])

    class _E:
        propensity, matched, weights = _P(), _M(), {}

    row = weight_summary(_E()).iloc[0]
    # controls 3 and 4/3: ESS (13/3)^2 / (9 + 16/9) = 169/97
    assert row["ess_control"] == pytest.approx(169 / 97, rel=1e-12)
    assert row["n_treated"] == 1 and row["n_control"] == 2
    assert row["sum_weights_control"] == pytest.approx(13 / 3, rel=1e-12)
    assert (row["min_weight_control"], row["max_weight_control"]) == (4 / 3, 3.0)


def test_public_dataset_and_display_names():
    from tests.test_report import veteran_cohort
    from causal_hcc.effects import adjust
    cohort = veteran_cohort()
    with quiet():
        effects = adjust(cohort, n_boot=0)
    table = balance_summary(effects, cohort)
    un = table[table["method"] == "Unadjusted"]
    assert list(un["label"]) == ["Celltype: adeno", "Celltype: large", "Celltype: smallcell",
                                 "Celltype: squamous", "Karno", "Age", "Prior: 10"]
    assert method_display("iptw_ATO", "ATO") == "IPTW (ATO)"
    assert method_display("psm", "ATT among matched treated") == "PSM (ATT)"
    assert isinstance(table, pd.DataFrame) and table["in_model"].all()
