"""Helpers shared by test modules (not a test module itself)."""

import hashlib
import re
from pathlib import Path

import pytest

REF = Path(__file__).parent / "reference"
BUNDLED = (Path(__file__).parents[1] / "causal_hcc" / "data" / "bundled"
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
