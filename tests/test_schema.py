"""The validation gate: every bad-input case names the column, the rows and the fix."""


import numpy as np
import pandas as pd
import pytest

from causal_hcc.studies.yang2025 import REQUIRED, VARIABLES, confounders_for, validate_frame
from causal_hcc.errors import CohortError, DataWarning


def test_valid_frame_is_accepted_with_canonical_codings(valid_frame):
    cohort = validate_frame(valid_frame)
    assert cohort.n == 12 and cohort.n_treated == 6 and cohort.events == 8
    assert cohort.data["death"].dtype.kind == "i"
    assert list(cohort.data["sex"].unique()) == ["male", "female"]
    assert not cohort.reconstructed and "data frame" in cohort.label


def test_caller_frame_is_not_mutated(valid_frame):
    before = valid_frame.copy()
    validate_frame(valid_frame.assign(ecog=["yes"] * 6 + ["no"] * 6))
    pd.testing.assert_frame_equal(valid_frame, before)


def test_missing_required_column_is_named(valid_frame):
    with pytest.raises(CohortError, match=r"Column 'vascular_invasion' \(covariate\): not found"):
        validate_frame(valid_frame.drop(columns="vascular_invasion"))


def test_every_problem_is_listed_at_once(valid_frame):
    bad = valid_frame.copy()
    bad.loc[2, "os_months"] = -1.0
    bad.loc[4, "death"] = 2
    bad.loc[5, "patient_id"] = "T01"
    bad.loc[0, "sex"] = "M"
    with pytest.raises(CohortError) as info:
        validate_frame(bad)
    message = str(info.value)
    assert len(info.value.problems) == 4
    assert "Column 'os_months': 1 negative values (row 3 (id T03))" in message
    assert "Column 'death' (event): values ['2'] in row 5 (id T05)" in message
    assert "--recode death:" in message  # the fix
    assert "duplicate ids ['T01'] (rows 1, 6" in message
    assert "Column 'sex': values ['M'] in row 1" in message


def test_wrong_type_is_reported(valid_frame):
    bad = valid_frame.astype({"os_months": object})
    bad.loc[1, "os_months"] = "twelve"
    with pytest.raises(CohortError, match=r"'os_months': non-numeric values \['twelve'\] in row 2"):
        validate_frame(bad)


def test_missing_time_raises_by_default_and_drop_is_reported(valid_frame):
    bad = valid_frame.copy()
    bad.loc[[3, 7], "os_months"] = np.nan
    with pytest.raises(CohortError, match=r"'os_months' \(needed\): 2 missing values \(rows 4, 8"):
        validate_frame(bad)
    cohort = validate_frame(bad, missing="drop")
    assert cohort.n == 10 and cohort.n_read == 12
    assert [(e.row, e.patient_id, e.reason) for e in cohort.exclusions] == [
        (4, "T04", "missing os_months"), (8, "T08", "missing os_months")]
    assert "2 rows excluded" in cohort.summary()


def test_zero_time_is_a_warning_not_an_error(valid_frame):
    data = valid_frame.copy()
    data.loc[6, "os_months"] = 0.0
    with pytest.warns(DataWarning, match="os_months.*row 7"):
        cohort = validate_frame(data)
    assert cohort.n == 12


def test_event_not_binary(valid_frame):
    with pytest.raises(CohortError, match=r"Column 'death' \(event\): values"):
        validate_frame(valid_frame.assign(death=[0.5] + [1] * 11))


def test_single_treatment_level(valid_frame):
    with pytest.raises(CohortError, match="Column 'local_therapy' \\(treatment\\): only one level"):
        validate_frame(valid_frame.assign(local_therapy=1, months_to_local_therapy=1.0))


def test_arm_without_deaths(valid_frame):
    data = valid_frame.copy()
    data.loc[data["local_therapy"] == 1, "death"] = 0
    with pytest.raises(CohortError, match="no events in the local therapy arm"):
        validate_frame(data)


def test_treatment_after_end_of_follow_up(valid_frame):
    data = valid_frame.copy()
    data.loc[1, "months_to_local_therapy"] = 30.0
    with pytest.raises(CohortError, match=r"'months_to_local_therapy': 1 treated patients start "
                                          r"local therapy after their follow-up ends \(row 2"):
        validate_frame(data)


def test_time_to_treatment_for_untreated(valid_frame):
    data = valid_frame.copy()
    data.loc[8, "months_to_local_therapy"] = 1.0
    with pytest.raises(CohortError, match="values for untreated patients \\(row 9"):
        validate_frame(data)


def test_yes_no_spellings_are_read_and_noted(valid_frame):
    cohort = validate_frame(valid_frame.assign(ecog=["Yes"] * 6 + ["no"] * 6))
    assert cohort.data["ecog"].tolist() == [1] * 6 + [0] * 6
    assert any("'ecog': read" in n for n in cohort.notes)


def test_require_makes_an_optional_column_needed(valid_frame):
    with pytest.raises(CohortError, match="Column 'afp_positive' \\(required\\): not found"):
        validate_frame(valid_frame, require=("afp_positive",))
    with pytest.raises(CohortError, match=r"Column 'bogus' \(required\): not found"):
        validate_frame(valid_frame, require=("bogus",))


def test_unknown_columns_are_kept_aside_not_dropped(valid_frame):
    cohort = validate_frame(valid_frame.assign(hospital=["X"] * 12))
    assert "hospital" not in cohort.data and cohort.extra["hospital"].tolist() == ["X"] * 12


def test_confounder_codings():
    assert confounders_for() == ("ecog", "intrahepatic_ccr", "vascular_invasion")
    assert confounders_for("milan") == ("ecog", "milan_within", "vascular_invasion")
    with pytest.raises(ValueError, match="Unknown intrahepatic control coding"):
        confounders_for("size")


def test_required_variables_are_time_event_treatment_id_and_confounders():
    assert set(REQUIRED) == {"patient_id", "local_therapy", "os_months", "death", "ecog",
                             "intrahepatic_ccr", "vascular_invasion"}
    assert len({v.name for v in VARIABLES}) == len(VARIABLES)
