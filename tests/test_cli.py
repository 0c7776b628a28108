"""The command line: exit codes, messages without tracebacks, files written."""

import json

import pandas as pd
import pytest

from causal_hcc import __version__
from causal_hcc.cli import main
from causal_hcc.studies.yang2025 import bundled_cohort_path


def test_help_and_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and __version__ in capsys.readouterr().out
    assert main([]) == 0 and "validate" in capsys.readouterr().out


def test_validate_good_file(capsys):
    assert main(["validate", "--data", str(bundled_cohort_path())]) == 0
    out = capsys.readouterr().out
    assert "76 rows read; 76 analysed (40 local therapy, 36 no local therapy); 32 deaths" in out


def test_validate_bad_file_exits_2_with_every_problem(tmp_path, capsys):
    frame = pd.read_csv(bundled_cohort_path())
    frame.loc[4, "os_months"] = -3
    frame["death"] = frame["death"].astype(object)
    frame.loc[9, "death"] = "dead"
    frame = frame.drop(columns="ecog")
    frame.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["validate", "--data", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "Column 'ecog' (covariate): not found" in err
    assert "Column 'os_months': 1 negative values (row 5" in err
    assert "Column 'death' (event): values ['dead'] in row 10" in err


def test_validate_with_mapping_flags(tmp_path, capsys):
    frame = pd.read_csv(bundled_cohort_path()).rename(columns={"os_months": "OS", "death": "Status"})
    frame["Status"] = frame["Status"].map({0: "alive", 1: "dead"})
    frame.to_csv(tmp_path / "mine.csv", index=False)
    code = main(["validate", "--data", str(tmp_path / "mine.csv"), "--map", "os=OS",
                 "--map", "death=Status", "--recode", "death:alive=0,dead=1"])
    assert code == 0, capsys.readouterr().err
    assert "32 deaths" in capsys.readouterr().out


def test_mapping_without_data_is_refused(capsys):
    assert main(["validate", "--map", "os=OS"]) == 2
    assert "without --data" in capsys.readouterr().err


def test_crude_writes_json_tables_and_figures(tmp_path, capsys):
    out = tmp_path / "crude"
    assert main(["crude", "--out", str(out), "--formats", "png"]) == 0
    payload = json.loads((out / "crude.json").read_text())
    assert payload["reconstructed"] is True and payload["n"] == 76 and payload["deaths"] == 32
    assert "RECONSTRUCTED PSEUDO-DATA" in payload["label"]
    assert {r["id"] for r in payload["paper_vs_reproduced"]} >= {"deaths", "logrank_all"}
    for name in ("km_summary.csv", "cox_table3.csv", "km_curves.csv",
                 "paper_vs_reproduced.csv", "paper_vs_reproduced.md",
                 "figure2a_km_overall.png", "figure2b_km_by_arm.png",
                 "figure3a_km_oligometastatic.png", "figure3b_km_non_oligometastatic.png",
                 "figure5_ned_vs_os.png"):
        assert (out / name).stat().st_size > 0, name
    table = pd.read_csv(out / "paper_vs_reproduced.csv")
    assert table["data_provenance"].str.contains("RECONSTRUCTED PSEUDO-DATA").all()
    assert "Paper vs reproduced" not in capsys.readouterr().err


def test_verify_with_a_claims_file(tmp_path, capsys):
    claims = {"manuscript": "x", "terms": {}, "models": {}, "claims": [
        {"id": "d", "quantity": "deaths", "published": 32, "tolerance": {"abs": 0}}]}
    (tmp_path / "c.json").write_text(json.dumps(claims))
    assert main(["verify", "--claims", str(tmp_path / "c.json"), "--out",
                 str(tmp_path / "v")]) == 0
    assert "1 agree" in capsys.readouterr().out
    assert (tmp_path / "v" / "paper_vs_reproduced.md").exists()


def test_adjust_on_the_bundled_cohort_writes_the_documented_files(tmp_path, capsys):
    out = tmp_path / "adj"
    assert main(["adjust", "--bootstrap", "20", "--out", str(out), "--formats", "png",
                 "--quiet"]) == 0
    records = json.loads((out / "effects.json").read_text())
    methods = {(r["method"], r["estimand"] and r["estimand"].split(" ")[0]) for r in records}
    assert methods == {("crude", None), ("multivariable", None), ("psm", "ATT"),
                       ("psm", "ATC"), ("psm_stratified", "ATT"), ("iptw", "ATE"),
                       ("iptw", "ATT"), ("iptw", "ATC"), ("iptw", "ATO"),
                       ("weighted_cox_adjusted", None),
                       *((m, e) for m in ("exact", "cem", "subclass")
                         for e in ("ATT", "ATC", "ATE"))}
    # The full labels say when the target population was restricted.
    assert {r["estimand"] for r in records if r["method"] == "psm"} == {
        "ATT among matched treated", "ATC"}
    keys = {"method", "estimand", "hr", "ci_lower", "ci_upper", "p_value", "se_log_hr",
            "variance", "boot_ci_lower", "boot_ci_upper", "n_treated", "n_control", "events",
            "identified", "identification_note"}
    assert all(keys <= set(r) for r in records)
    crude = next(r for r in records if r["method"] == "crude")
    assert crude["variance"] == "model" and crude["boot_ci_lower"] is None
    psm = next(r for r in records if r["method"] == "psm" and r["estimand"].startswith("ATT"))
    assert psm["variance"] == "cluster_robust" and psm["boot_ci_lower"] is not None
    prop = pd.read_csv(out / "propensity.csv")
    assert {"patient_id", "ps", "logit_ps", "matched_set", "weight_matching",
            "weight_ate_stabilised", "weight_att", "weight_ato"} <= set(prop.columns)
    for name in ("balance.csv", "matched_pairs.csv", "table_one.csv", "love_plot.png",
                 "ps_overlap.png", "forest_plot.png", "weights.png"):
        assert (out / name).stat().st_size > 0, name
    assert "RECONSTRUCTED PSEUDO-DATA" in capsys.readouterr().out


def test_adjust_on_other_column_names_through_flags(tmp_path, capsys):
    frame = pd.read_csv(bundled_cohort_path()).rename(columns={
        "os_months": "futime", "death": "dead", "local_therapy": "tx"})
    frame.to_csv(tmp_path / "other.csv", index=False)
    code = main(["adjust", "--data", str(tmp_path / "other.csv"), "--time", "futime",
                 "--event", "dead", "--treatment", "tx", "--covariates",
                 "ecog,intrahepatic_ccr,vascular_invasion,age", "--bootstrap", "0",
                 "--out", str(tmp_path / "o"), "--formats", "png", "--quiet"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "Patient-level data from" in out and "age" in out


def test_adjust_with_an_unknown_covariate_exits_2(capsys):
    assert main(["adjust", "--covariates", "ecog,bogus", "--bootstrap", "0"]) == 2
    assert "'bogus'" in capsys.readouterr().err


def test_sensitivity_writes_json_with_the_documented_keys(tmp_path, capsys):
    out = tmp_path / "sens"
    assert main(["sensitivity", "--out", str(out), "--n-sim-ned", "200", "--formats", "png",
                 "--quiet"]) == 0
    payload = json.loads((out / "sensitivity.json").read_text())
    assert {"evalues", "specification_grid", "landmark", "time_varying"} <= set(payload)
    first = payload["evalues"][0]
    assert {"method", "estimand", "hr", "ci_lower", "ci_upper", "evalue_point", "evalue_ci",
            "outcome_conversion"} <= set(first)
    assert all(r["outcome_conversion"] == "common" for r in payload["evalues"])
    assert (out / "specification_curve.png").exists()
    assert "What this says about the claim" in capsys.readouterr().out
