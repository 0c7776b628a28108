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
