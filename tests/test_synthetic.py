"""causal_hcc.data.synthetic: a registry-sized cohort with confounding and a known HR."""

import numpy as np
import pandas as pd
import pytest

from causal_hcc.survival import fit_cox_frame
from causal_hcc.studies.yang2025 import REQUIRED, validate_frame
from causal_hcc.studies.yang2025.synthetic import synthetic_registry


def test_passes_the_data_contract_with_canonical_columns():
    frame = synthetic_registry(500, seed=1)
    cohort = validate_frame(frame, source=frame.attrs["description"])
    assert set(REQUIRED) <= set(cohort.data.columns)
    assert {"sex", "age", "child_pugh", "afp_positive"} <= set(cohort.data.columns)
    assert cohort.n == 500 and cohort.data.patient_id.is_unique
    assert (cohort.data.os_months >= 0.1).all()
    assert "not patient data" in frame.attrs["description"]
    assert frame.attrs["true_log_hr"] == -0.3


def test_same_seed_same_frame_other_seed_other_frame():
    a, b = synthetic_registry(300, seed=7), synthetic_registry(300, seed=7)
    pd.testing.assert_frame_equal(a, b)                 # bit for bit
    assert not a.equals(synthetic_registry(300, seed=8))


def test_treatment_is_confounded_as_in_the_paper():
    data = synthetic_registry(20_000, seed=2)
    by_arm = data.groupby("local_therapy")[["ecog", "intrahepatic_ccr",
                                            "vascular_invasion"]].mean()
    # Treated: less ECOG 1 and vascular invasion, more intrahepatic cCR (Table 1's pattern).
    assert by_arm.loc[1, "intrahepatic_ccr"] > by_arm.loc[0, "intrahepatic_ccr"] + 0.2
    assert by_arm.loc[1, "ecog"] < by_arm.loc[0, "ecog"]
    assert by_arm.loc[1, "vascular_invasion"] < by_arm.loc[0, "vascular_invasion"]


@pytest.mark.parametrize("true_log_hr", [-0.3, 0.0])
def test_adjusted_cox_recovers_the_true_log_hr_and_crude_does_not(true_log_hr):
    data = synthetic_registry(20_000, seed=3, true_log_hr=true_log_hr)
    adjusted = fit_cox_frame(data, ["local_therapy", "ecog", "intrahepatic_ccr",
                                    "vascular_invasion"], time_col="os_months",
                             event_col="death")
    # Unbiased for the conditional log HR: within 4 SE (SE ~0.02 at n = 20,000).
    assert abs(adjusted.coef[0] - true_log_hr) < 4 * adjusted.se[0]
    crude = fit_cox_frame(data, ["local_therapy"], time_col="os_months", event_col="death")
    # Confounding by cCR etc. makes the crude HR look more protective.
    assert crude.coef[0] < true_log_hr - 0.15


def test_weibull_median_of_the_reference_group():
    # Untreated, all confounders 0: median OS = baseline_median_months (no censoring).
    data = synthetic_registry(40_000, seed=4, baseline_median_months=10.0,
                              dropout_per_month=0.0, accrual_months=0.0,
                              min_follow_up_months=1000.0)
    ref = data[(data.local_therapy == 0) & (data.ecog == 0) & (data.intrahepatic_ccr == 0)
               & (data.vascular_invasion == 0)]
    assert ref.death.all()
    # Sample median of ~3,000 draws: within 0.5 months (its SE is ~0.2).
    assert abs(np.median(ref.os_months) - 10.0) < 0.5


def test_bad_size_raises():
    with pytest.raises(ValueError, match="positive number"):
        synthetic_registry(0, seed=1)
