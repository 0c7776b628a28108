"""The validation gate, vectorised for registry-sized files (issue 12), gives exactly what
it gave before on messy inputs: coded cells and their types, kinds, levels, notes,
exclusions, warnings and every error message (reference: tests/reference/gate_before.json,
written by the gate before the change; see tests/reference/gate_cases.py)."""

import json
import sys
import warnings
from pathlib import Path

import pytest

REFERENCE = Path(__file__).parent / "reference"
sys.path.insert(0, str(REFERENCE))
import gate_cases  # noqa: E402

EXPECTED = json.loads((REFERENCE / "gate_before.json").read_text(encoding="utf-8"))
NOW = gate_cases.run()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_gate_gives_what_it_gave_before(name):
    assert NOW[name] == EXPECTED[name]


def test_the_reference_covers_success_errors_and_exclusions():
    assert {"error" in v for v in EXPECTED.values()} == {True, False}
    assert EXPECTED["missing_drop"]["exclusions"]
    assert any(v.get("warnings") for v in EXPECTED.values())


def test_no_mapping_makes_no_copy_and_the_gate_leaves_the_input_as_it_was():
    from causal_hcc.data.cohort import Roles
    from causal_hcc.data.io import ColumnMapping
    from causal_hcc.data.schema import validate_frame
    from causal_hcc.errors import DataWarning
    _, frame, roles, kw = next(gate_cases.cases())
    before = frame.copy()
    same, notes = ColumnMapping().apply(frame)
    assert same is frame and notes == []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)    # a zero follow-up time in the case
        cohort = validate_frame(frame, roles=Roles(**roles), **kw)
    assert cohort.n == len(frame) == 400
    assert list(frame.columns) == list(before.columns) and "_row" not in frame
    assert frame.equals(before)


def _outcome(call, *args, **kwargs):
    from causal_hcc.errors import CohortError
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = gate_cases.summarise(call(*args, **kwargs))
        except CohortError as exc:
            result = {"error": str(exc)}
    result["warnings"] = sorted(str(w.message) for w in caught
                                if "causal_hcc" in w.category.__module__)
    return result


def _files(tmp_path):
    for name, frame, roles, kw in gate_cases.cases():
        yield name, frame, roles, kw
    _, base, roles, kw = next(gate_cases.cases())
    twice = base.copy()
    twice.loc[[4, 9], "pid"] = ["P0001", " P0002\xa0"]     # equal to rows 1 and 2 once stripped
    twice.loc[[11], "pid"] = " "
    yield "duplicate_ids", twice, roles, kw
    yield "duplicate_ids_drop", twice, roles, dict(kw, missing="drop")


def test_the_readers_coding_gives_the_gate_what_it_would_find_itself(tmp_path):
    """load_cohort hands the text reader's factorisation of each column to the gate, which
    then skips hashing the cells: the cohort, notes, warnings and errors are the same as
    when the gate factorises the frame itself."""
    from causal_hcc.data.cohort import Roles
    from causal_hcc.data.io import load_cohort, read_table
    from causal_hcc.data.schema import validate_frame
    for name, frame, roles, kw in _files(tmp_path):
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        with_coding = _outcome(load_cohort, path, roles=Roles(**roles), **kw)
        without = _outcome(validate_frame, read_table(path), roles=Roles(**roles),
                           source=str(path), **kw)
        assert with_coding == without, name
