"""Helpers shared by test modules (not a test module itself)."""

import hashlib
import re
import warnings
from contextlib import contextmanager
from pathlib import Path

import pytest

from causal_hcc.errors import CausalHccWarning

REF = Path(__file__).parent / "reference"
BUNDLED = (Path(__file__).parents[1] / "causal_hcc" / "studies" / "yang2025" / "bundled"
           / "reconstructed_pseudo_cohort.csv")


def require_current_matching_fixtures() -> None:
    """Fail unless the bundled R fixtures exist and were made from the current bundled CSV."""
    versions = (REF / "versions_matching.txt").read_text()
    found = re.search(r"bundled cohort md5: (\w+)", versions)
    if not found or found.group(1) == "NA":
        pytest.fail("bundled fixtures missing: run Rscript tests/reference/matching.R")
    if hashlib.md5(BUNDLED.read_bytes()).hexdigest() != found.group(1):
        pytest.fail("The bundled cohort CSV changed after the R fixtures were made: run "
                    "Rscript tests/reference/matching.R again.")


@contextmanager
def quiet():
    """Ignore the package's statistical warnings (each is tested in its own module) so a
    comparison with R is not failed by, e.g., an extreme-weight warning it expects."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        yield
