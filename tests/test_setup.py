"""The set-up contract: README commands, CI, dictionary and bundled cohort agree."""

import re
from pathlib import Path

import pandas as pd

from causal_hcc.studies.yang2025 import REQUIRED, VARIABLES, bundled_cohort_path, load_bundled
from causal_hcc.studies.yang2025.paper_claims import build_claims

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"```\n(.+?)\n```", text)[:2]


def test_readme_opens_with_two_commands_and_ci_runs_the_test_one():
    run, test = _readme_commands()
    assert "pip install" in run and "causal-hcc" in run
    assert "pytest" in test
    ci = (ROOT / ".ci" / "run").read_text()
    assert test in ci.splitlines(), ".ci/run must run the README's test command verbatim"


def test_dictionary_documents_every_variable_and_marks_required_ones():
    text = (ROOT / "data_dictionary.md").read_text()
    rows = {m.group(1): m.group(2) for m in
            re.finditer(r"^\| `(\w+)` \|.*\| (\*\*yes\*\*|no) \|[^|]*\|$", text, re.M)}
    assert set(rows) == {v.name for v in VARIABLES}
    assert {k for k, v in rows.items() if v == "**yes**"} == set(REQUIRED)


def test_bundled_cohort_round_trip_with_the_dictionary():
    raw = pd.read_csv(bundled_cohort_path())
    documented = {v.name for v in VARIABLES}
    assert set(raw.columns) <= documented, set(raw.columns) - documented
    assert set(REQUIRED) <= set(raw.columns)
    cohort = load_bundled()
    assert cohort.reconstructed and "RECONSTRUCTED PSEUDO-DATA" in cohort.label
    assert "reconstructed" in bundled_cohort_path().name
    assert (cohort.n, cohort.n_treated, cohort.events) == (76, 40, 32)


def test_shipped_paper_claims_equal_the_ones_built_from_targets():
    import json
    shipped = json.loads((ROOT / "causal_hcc" / "studies" / "yang2025" / "paper_claims.json").read_text())
    assert shipped == json.loads(json.dumps(build_claims()))


def test_bundled_cohort_read_by_path_or_copy_is_still_labelled_pseudo_data(tmp_path):
    """Read with --data (its path, or a byte-identical copy under another name, with or
    without the study profile), the reconstruction keeps its label; a changed copy does
    not (it is somebody's data now)."""
    from causal_hcc.api import cohort, open_cohort
    from causal_hcc.config import DataOptions
    copy = tmp_path / "my_study.csv"
    copy.write_bytes(bundled_cohort_path().read_bytes())
    roles = dict(time="os_months", event="death", treatment="local_therapy",
                 covariates=("ecog",))
    for c in (open_cohort(bundled_cohort_path()), open_cohort(copy),
              open_cohort(copy, DataOptions(study="none", **roles))):
        assert c.reconstructed and c.label.startswith("RECONSTRUCTED PSEUDO-DATA"), c.label
    changed = tmp_path / "changed.csv"
    changed.write_text(bundled_cohort_path().read_text().replace("\n", "\n", 1) + "\n")
    other = cohort(changed, study="none", **roles)
    assert not other.reconstructed and "changed.csv" in other.label
