"""The CLI end to end on public survival data, each dataset with its own column names:
every command exits 0, writes its outputs, says nothing of the Yang et al. study, and
gives the API's numbers. Bootstrap small and figures off, to stay fast (R agreement of the
numbers themselves: tests/test_public_datasets.py)."""

import contextlib
import io
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest

import causal_hcc as ch
from causal_hcc.cli import main
from causal_hcc.errors import CausalHccWarning
from causal_hcc.studies import yang2025
from tests._fixtures import REF

#: CLI flags per dataset (public.R's roles); pbc: death (2) is the event, transplant
#: (1) censored, the 106 rows without treatment dropped.
FLAGS = {
    "veteran": ["--time", "time", "--event", "status", "--treatment", "trt", "--treated",
                "2", "--covariates", "celltype,karno,age,prior", "--time-unit", "days"],
    "ovarian": ["--time", "futime", "--event", "fustat", "--treatment", "rx", "--treated",
                "2", "--covariates", "age,resid.ds,ecog.ps", "--time-unit", "days"],
    "pbc": ["--time", "time", "--event", "status", "--recode", "status:2=1,1=0,0=0",
            "--treatment", "trt", "--treated", "1", "--covariates",
            "age,sex,bili,albumin,edema", "--missing", "drop", "--time-unit", "days"],
}
ROLES = {
    "veteran": {"time": "time", "event": "status", "treatment": "trt", "treated": 2,
                "covariates": ["celltype", "karno", "age", "prior"], "time_unit": "days"},
    "ovarian": {"time": "futime", "event": "fustat", "treatment": "rx", "treated": 2,
                "covariates": ["age", "resid.ds", "ecog.ps"], "time_unit": "days"},
    "pbc": {"time": "time", "event": "status", "treatment": "trt", "treated": 1,
            "missing": "drop", "covariates": ["age", "sex", "bili", "albumin", "edema"],
            "time_unit": "days"},
}
COMMANDS = {
    "validate": [],
    "crude": ["--formats", "none"],
    "adjust": ["--bootstrap", "0", "--formats", "none", "--quiet"],
    "sensitivity": ["--formats", "none", "--quiet"],
    "report": ["--bootstrap", "20", "--formats", "none", "--quiet"],
}
OUTPUTS = {
    "crude": ("crude.json", "km_summary.csv", "cox_table.csv"),
    "adjust": ("effects.json", "balance.csv", "propensity.csv", "matched_pairs.csv"),
    "sensitivity": ("sensitivity.json",),
    "report": ("report.html", "report.md", "run.json", "crude.json", "effects.json",
               "sensitivity.json"),
}
#: Words of the paper that must not reach a report on other data.
PAPER_WORDS = ("Yang", "HCC", "hepatocellular", "local therapy", "extrahepatic", "Table 3",
               "oligometastatic", "ECOG")
#: The study's own column names (data_dictionary.md), except words any study may use.
STUDY_COLUMNS = sorted(set(yang2025.PROFILE.known_columns)
                       - {"age", "sex", "death", "patient_id"})


@pytest.fixture(scope="module", params=sorted(FLAGS))
def run(request, tmp_path_factory):
    """Every command once per dataset: (name, {command: (exit code, stdout, out dir)})."""
    name = request.param
    data = str(REF / "datasets" / f"{name}.csv")
    results = {}
    for command, extra in COMMANDS.items():
        out = tmp_path_factory.mktemp(f"{name}_{command}") / "out"
        argv = [command, "--data", data, *FLAGS[name], *extra]
        if command != "validate":
            argv += ["--out", str(out)]
        text = io.StringIO()
        with contextlib.redirect_stdout(text), contextlib.redirect_stderr(io.StringIO()):
            code = main(argv)
        results[command] = (code, text.getvalue(), out)
    return name, results


def _frame(name: str) -> pd.DataFrame:
    frame = pd.read_csv(REF / "datasets" / f"{name}.csv")
    if name == "pbc":
        frame = frame.assign(status=(frame["status"] == 2).astype(int))
    return frame


def test_every_command_exits_0_and_writes_its_outputs(run):
    name, results = run
    for command, (code, text, out) in results.items():
        assert code == 0, f"{name} {command}: exit {code}\n{text[-2000:]}"
        for filename in OUTPUTS.get(command, ()):
            assert (out / filename).is_file(), f"{name} {command}: no {filename}"
    assert "Valid" in results["validate"][1]
    assert list(results["sensitivity"][2].glob("*grid*.csv")), name


def _words_found(words, text: str, name: str) -> list:
    """Which of ``words`` occur in ``text`` as whole words, ignoring case, once the
    package's name and the dataset's own column names that contain one are removed
    (ovarian has 'ecog.ps')."""
    pattern = r"\b(" + "|".join(re.escape(w) for w in words) + r")\b"
    columns = pd.read_csv(REF / "datasets" / f"{name}.csv", nrows=0).columns
    own = ["causal-hcc", "causal_hcc"]         # the package's own name is not the paper's
    own += [c for c in columns if re.search(pattern, c, flags=re.IGNORECASE)]
    if own:
        text = re.sub("|".join(map(re.escape, own)), " ", text, flags=re.IGNORECASE)
    found = {m.lower() for m in re.findall(pattern, text, flags=re.IGNORECASE)}
    return [w for w in words if w.lower() in found]


def test_the_word_check_itself():
    text = "causal_hcc 0.1.0; causal-hcc report; ecog.ps 2 vs 1; local  therapy; Yang's"
    assert _words_found(PAPER_WORDS, text, "ovarian") == ["Yang"]
    assert _words_found(PAPER_WORDS, "ECOG 0-1 in HCC", "ovarian") == ["HCC", "ECOG"]
    assert _words_found(STUDY_COLUMNS, "age, ecog, sex", "veteran") == ["ecog"]


def test_the_report_says_nothing_of_the_paper(run):
    """report.html and report.md, and every other text output of the run."""
    name, results = run
    out = results["report"][2]
    files = sorted(p for p in out.iterdir() if p.suffix in (".html", ".md", ".csv", ".json"))
    assert {"report.html", "report.md"} <= {p.name for p in files}
    for path in files:
        found = _words_found(PAPER_WORDS, path.read_text(encoding="utf-8"), name)
        assert not found, f"{name} {path.name}: {found}"


def _covariates_of(cell) -> set:
    """The columns of a grid row's covariate list: "a, ns(b, df=3), c" -> {a, b, c}."""
    text = re.sub(r"ns\(([^,()]+), df=\d+\)", r"\1", str(cell or ""))
    return {c.strip() for c in text.split(",") if c.strip()}


def test_the_specification_grid_uses_only_the_dataset_covariates(run):
    name, results = run
    covariates = set(ROLES[name]["covariates"])
    for command in ("sensitivity", "report"):
        out = results[command][2]
        grid = pd.read_csv(next(out.glob("*grid*.csv")))
        used = set().union(*(_covariates_of(cell) for cell in grid["covariates"].dropna()))
        assert used and used <= covariates, f"{name} {command}: {sorted(used - covariates)}"
        records = json.loads((out / "sensitivity.json").read_text())["specification_grid"]
        assert set().union(*(_covariates_of(r["covariates"]) for r in records)) == used
        for filename in (next(out.glob("*grid*.csv")).name, "sensitivity.json"):
            text = (out / filename).read_text(encoding="utf-8")
            found = _words_found(STUDY_COLUMNS, text, name)
            assert not found, f"{name} {command} {filename}: {found}"


def test_effects_json_equals_the_api(run):
    """Same data, same code path: the HRs agree to rounding (rtol 1e-12)."""
    name, results = run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        api = ch.adjust(_frame(name), n_boot=0, **ROLES[name]).to_frame()
    api["estimand"] = api["estimand"].fillna("")
    for command in ("adjust", "report"):
        records = json.loads((results[command][2] / "effects.json").read_text())
        assert len(records) == len(api), f"{name} {command}"
        for e in records:
            row = api[(api.method == e["method"]) & (api.estimand == (e["estimand"] or ""))]
            assert len(row) == 1, f"{name} {command} {e['method']} {e['estimand']}"
            if not e["estimable"]:
                assert not row.estimable.iloc[0]
                continue
            np.testing.assert_allclose([e["hr"], e["se_log_hr"]],
                                       [row.hr.iloc[0], row.se_log_hr.iloc[0]], rtol=1e-12,
                                       err_msg=f"{name} {command} {e['method']}")
