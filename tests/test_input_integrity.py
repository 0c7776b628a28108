"""Input integrity (issue 14, inputs): nothing lost, nothing guessed, every problem named.

Each case starts from the bundled cohort's CSV (B) or from R's veteran data, changes one
thing, and checks the outcome through the CLI (exit code and message) or the API."""

import warnings

import numpy as np
import pandas as pd
import pytest

import causal_hcc as ch
from causal_hcc.cli import main
from causal_hcc.data import read_table
from causal_hcc.errors import CausalHccWarning, CohortError
from causal_hcc.studies.yang2025 import bundled_cohort_path, load
from tests._fixtures import REF

VETERAN = REF / "datasets" / "veteran.csv"
VETERAN_ROLES = ["--time", "time", "--event", "status", "--treatment", "trt", "--treated", "2",
                 "--covariates", "celltype,karno,age,prior", "--time-unit", "days"]


@pytest.fixture
def bundled() -> pd.DataFrame:
    return pd.read_csv(bundled_cohort_path(), dtype=str, keep_default_na=False)


def _write(frame: pd.DataFrame, path, **kw):
    frame.to_csv(path, index=False, **kw)
    return str(path)


def _err(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def test_the_label_None_is_a_label_not_a_missing_value(tmp_path, bundled):
    # 'None' (capital N) is in pandas' default NA strings; it must stay a category label.
    bundled["intrahepatic_lesions"] = bundled["intrahepatic_lesions"].replace("none", "None")
    cohort = load(_write(bundled, tmp_path / "b.csv"))
    assert (cohort.data["intrahepatic_lesions"] == "none").sum() == 11     # as in B
    assert cohort.data["intrahepatic_lesions"].notna().all()


@pytest.mark.parametrize("token", ["NA", "N/A", "null", "nan", "NULL"])
def test_na_strings_in_a_role_column_are_errors_not_silent_missing(tmp_path, bundled, token,
                                                                   capsys):
    bundled.loc[3, "os_months"] = token
    assert main(["validate", "--data", _write(bundled, tmp_path / "b.csv")]) == 2
    err = _err(capsys)
    assert "Column 'os_months'" in err and f"non-numeric values ['{token}'] in row 4" in err


def test_a_utf8_bom_does_not_break_the_first_column(tmp_path, bundled):
    path = _write(bundled, tmp_path / "bom.csv", encoding="utf-8-sig")
    with open(path, "rb") as fh:
        assert fh.read(3) == b"\xef\xbb\xbf"
    assert load(path).n == 76


def test_ids_are_text_and_keep_leading_zeros(tmp_path, bundled):
    bundled["patient_id"] = [f"{i:04d}" for i in range(76)]
    bundled.loc[0, "patient_id"], bundled.loc[1, "patient_id"] = "0", "00"
    cohort = load(_write(bundled, tmp_path / "ids.csv"))
    assert list(cohort.ids[:3]) == ["0", "00", "0002"]


def test_a_duplicate_header_is_exit_2_naming_the_column(tmp_path, capsys):
    text = bundled_cohort_path().read_text().splitlines()
    text[0] = text[0].replace("age,", "os_months,", 1)
    (tmp_path / "dup.csv").write_text("\n".join(text) + "\n")
    assert main(["validate", "--data", str(tmp_path / "dup.csv")]) == 2
    assert "Column 'os_months': appears 2 times in the header" in _err(capsys)


def test_spaces_and_nbsp_in_headers_are_stripped(tmp_path, bundled):
    bundled = bundled.rename(columns={"os_months": " os_months\u00a0", "death": "death "})
    assert load(_write(bundled, tmp_path / "sp.csv")).n == 76


def test_a_recode_of_an_unknown_column_is_exit_2_with_the_closest_name(tmp_path, bundled,
                                                                       capsys):
    path = _write(bundled, tmp_path / "b.csv")
    assert main(["validate", "--data", path, "--recode", "deaths:2=1,1=0"]) == 2
    err = _err(capsys)
    assert "Recode names 'deaths'" in err and "Did you mean 'death'?" in err
    mapping = tmp_path / "map.toml"
    mapping.write_text('[values.deaths]\n"2" = 1\n')
    assert main(["validate", "--data", path, "--mapping", str(mapping)]) == 2
    assert "Recode names 'deaths'" in _err(capsys)


def test_messages_never_suggest_inventing_data(tmp_path, bundled, capsys):
    bundled.loc[2, "sex"] = "unknown"
    bundled.loc[5, "ecog"] = "2"
    assert main(["validate", "--data", _write(bundled, tmp_path / "b.csv")]) == 2
    err = _err(capsys)
    assert "Column 'sex': values ['unknown'] in row 3" in err
    assert "Allowed: ['male', 'female']" in err
    assert "Column 'ecog' (covariate): values ['2'] in row 6" in err
    # No concrete recipe that would turn data into other data.
    assert "unknown=male" not in err and "ecog:2=1" not in err and "nothing is guessed" in err


@pytest.mark.parametrize("value", ["inf", "1e12", "1e300", "-inf"])
def test_infinite_or_absurd_times_are_rejected_by_validate(tmp_path, bundled, value, capsys):
    bundled.loc[7, "os_months"] = value
    assert main(["validate", "--data", _write(bundled, tmp_path / "b.csv")]) == 2
    err = _err(capsys)
    assert "Column 'os_months'" in err and "row 8" in err


def test_a_date_or_the_treatment_as_covariate_is_named(tmp_path, capsys):
    frame = pd.read_csv(VETERAN)
    frame["entry"] = pd.date_range("2001-01-01", periods=len(frame)).strftime("%Y-%m-%d")
    path = _write(frame, tmp_path / "v.csv")
    base = ["validate", "--data", path, "--time", "time", "--event", "status", "--treatment",
            "trt", "--treated", "2"]
    assert main(base + ["--covariates", "karno,entry"]) == 2
    assert "Column 'entry' (covariate): holds dates" in _err(capsys)
    assert main(base + ["--covariates", "karno,trt"]) == 2
    assert "['trt'] are both a covariate and the time, event or treatment" in _err(capsys)


def test_two_valued_codings_are_accepted_and_reported(capsys):
    """1/2 treatment with --treated, 0/10 and text covariates (rejected before issue 10)."""
    assert main(["validate", "--data", str(VETERAN), *VETERAN_ROLES]) == 0
    out = capsys.readouterr().out
    assert "treated = '2', control = '1'" in out
    assert "prior: categorical, levels ['0', '10'] (reference '0')" in out
    assert "celltype: categorical, levels ['adeno', 'large', 'smallcell', 'squamous']" in out


def test_a_treatment_with_two_unnamed_codes_asks_which_is_treated(capsys):
    assert main(["validate", "--data", str(VETERAN), "--time", "time", "--event", "status",
                 "--treatment", "trt", "--covariates", "karno"]) == 2
    err = _err(capsys)
    assert "Column 'trt' (treatment): values ['1', '2']. Which group is treated?" in err
    assert "missing values" not in err            # one problem, reported once


def test_missing_drop_lists_every_exclusion():
    frame = pd.read_csv(REF / "datasets" / "pbc.csv")
    frame["status"] = (frame["status"] == 2).astype(int)
    cohort = ch.cohort(frame, time="time", event="status", treatment="trt", treated=1,
                       covariates=["age", "sex"], missing="drop", time_unit="days")
    assert cohort.n == 312 and cohort.n_excluded == 106
    excluded = cohort.exclusions_frame()
    assert set(excluded["reason"]) == {"missing trt"}
    assert excluded["row"].tolist() == list(range(313, 419))


def test_decimal_comma_semicolon_csv(tmp_path):
    frame = pd.read_csv(VETERAN)
    frame.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        ours = ch.cohort(str(tmp_path / "eu.csv"), time="time", event="status",
                         treatment="trt", treated=2, covariates=["karno", "age"],
                         decimal=",", time_unit="days")
    np.testing.assert_array_equal(ours.time, frame["time"].to_numpy(float))


def test_excel_sheet_and_header_row(tmp_path):
    frame = pd.read_csv(VETERAN)
    path = tmp_path / "v.xlsx"
    with pd.ExcelWriter(path) as xl:
        pd.DataFrame({"x": [1]}).to_excel(xl, sheet_name="notes", index=False)
        pd.DataFrame([["exported by a registry"]]).to_excel(xl, sheet_name="data",
                                                           index=False, header=False)
        frame.to_excel(xl, sheet_name="data", index=False, startrow=2)
    table = read_table(path, sheet="data", header_row=2)
    assert list(table.columns) == list(frame.columns) and len(table) == len(frame)
    with pytest.raises(CohortError, match="reader failed"):
        read_table(path, sheet="nope")


def test_perfect_separation_is_named_when_it_stops_the_run(tmp_path, capsys):
    frame = pd.read_csv(VETERAN)
    frame["x"] = (frame["trt"] == 2).astype(int) * 5 + 1      # 6 for treated, 1 for control
    path = _write(frame, tmp_path / "sep.csv")
    assert main(["adjust", "--data", path, "--time", "time", "--event", "status",
                 "--treatment", "trt", "--treated", "2", "--covariates", "karno,x",
                 "--time-unit", "days", "--bootstrap", "0", "--formats", "none",
                 "--out", str(tmp_path / "out")]) == 2
    err = _err(capsys)
    assert "Complete separation in the propensity model" in err
    assert "x = 1: 0 treated, 69 control; x = 6: 68 treated, 0 control" in err
