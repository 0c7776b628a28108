"""Reading every supported format and mapping user columns/values onto the dictionary."""

import pyreadstat
import pytest

from causal_hcc.data import ColumnMapping, read_table
from causal_hcc.studies.yang2025 import load as load_cohort
from causal_hcc.errors import CohortError


def _user_frame(valid_frame):
    """The valid frame as a user might store it: own names, 1/2 codings, Yes/No."""
    return valid_frame.rename(columns={"os_months": "OS_m", "death": "status",
                                       "local_therapy": "LocalTx"}).assign(
        status=valid_frame["death"].map({0: 1, 1: 2}),
        ecog=valid_frame["ecog"].map({0: "PS0", 1: "PS1"}))


MAPPING = ColumnMapping.from_cli(
    maps=["os=OS_m", "death=status", "treatment=LocalTx"],
    recodes=["death:1=0,2=1", "ecog:PS0=0,PS1=1"])


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".parquet", ".dta"])
def test_each_format_loads_through_a_mapping(tmp_path, valid_frame, suffix):
    user = _user_frame(valid_frame)
    path = tmp_path / f"study{suffix}"
    if suffix == ".csv":
        user.to_csv(path, index=False)
    elif suffix == ".xlsx":
        user.to_excel(path, index=False)
    elif suffix == ".parquet":
        user.to_parquet(path)
    else:
        pyreadstat.write_dta(user, str(path))
    cohort = load_cohort(path, MAPPING)
    assert cohort.data["death"].tolist() == valid_frame["death"].tolist()
    assert cohort.data["ecog"].tolist() == valid_frame["ecog"].tolist()
    assert cohort.data["os_months"].tolist() == valid_frame["os_months"].tolist()
    assert len(cohort.sha256) == 64 and any("OS_m -> os_months" in n for n in cohort.notes)


def test_spss_value_labels_are_applied_then_recoded(tmp_path, valid_frame):
    user = _user_frame(valid_frame).drop(columns=["ecog"]).assign(ecog=valid_frame["ecog"] + 1)
    path = tmp_path / "study.sav"
    pyreadstat.write_sav(user, str(path), variable_value_labels={
        "ecog": {1: "Good", 2: "Reduced"}, "status": {1: "alive", 2: "dead"}})
    mapping = ColumnMapping.from_cli(maps=["os_months=OS_m", "death=status", "local_therapy=LocalTx"],
                                     recodes=["death:alive=0,dead=1", "ecog:Good=0,Reduced=1"])
    cohort = load_cohort(path, mapping)
    assert cohort.data["death"].tolist() == valid_frame["death"].tolist()
    assert cohort.data["ecog"].tolist() == valid_frame["ecog"].tolist()


def test_semicolon_csv_is_sniffed(tmp_path, valid_frame):
    path = tmp_path / "semi.csv"
    valid_frame.to_csv(path, index=False, sep=";")
    assert load_cohort(path).n == 12


def test_mapping_file_toml(tmp_path, valid_frame):
    _user_frame(valid_frame).to_csv(tmp_path / "s.csv", index=False)
    (tmp_path / "map.toml").write_text(
        '[columns]\nos_months = "OS_m"\ndeath = "status"\nlocal_therapy = "LocalTx"\n'
        '[values.death]\n"1" = 0\n"2" = 1\n[values.ecog]\nPS0 = 0\nPS1 = 1\n')
    cohort = load_cohort(tmp_path / "s.csv", ColumnMapping.from_file(tmp_path / "map.toml"))
    assert cohort.events == valid_frame["death"].sum()


def test_mapping_to_a_missing_source_column_is_named(tmp_path, valid_frame):
    valid_frame.to_csv(tmp_path / "s.csv", index=False)
    mapping = ColumnMapping.from_cli(maps=["os_months=OS_time"])
    with pytest.raises(CohortError, match="column 'OS_time' not in the file"):
        load_cohort(tmp_path / "s.csv", mapping)


def test_bad_flags_are_explained():
    with pytest.raises(CohortError, match="expected CANONICAL=SOURCE_COLUMN"):
        ColumnMapping.from_cli(maps=["os_months"])
    with pytest.raises(CohortError, match="expected NAME:SRC=DST"):
        ColumnMapping.from_cli(recodes=["death"])


def test_unknown_format_and_missing_file(tmp_path):
    with pytest.raises(CohortError, match="not found"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(CohortError, match="unknown format '.json'"):
        read_table(tmp_path / "x.json")


def test_unmapped_user_coding_gives_the_fix(tmp_path, valid_frame):
    _user_frame(valid_frame).to_csv(tmp_path / "s.csv", index=False)
    mapping = ColumnMapping.from_cli(maps=["os=OS_m", "death=status", "treatment=LocalTx"])
    with pytest.raises(CohortError) as info:
        load_cohort(tmp_path / "s.csv", mapping)
    text = str(info.value)
    assert "Column 'death' (event): values ['2'] in rows 2, 3" in text
    assert "Column 'ecog' (covariate): values ['PS0', 'PS1']" in text
