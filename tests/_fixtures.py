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


VETERAN = REF / "datasets" / "veteran.csv"


def veteran_results():
    """R's veteran data as a generic study (trt 2 = test vs 1 = standard, days) with its
    crude analysis and adjust(n_boot=0): (cohort, crude, effects)."""
    import pandas as pd

    from causal_hcc.data import Cohort
    from causal_hcc.effects import adjust
    from causal_hcc.survival import crude_analysis
    cohort = Cohort.from_frame(pd.read_csv(VETERAN), time="time", event="status",
                               treatment="trt", treated_value=2,
                               covariates=["celltype", "karno", "age", "prior"],
                               subgroups=["prior"], time_unit="days",
                               arm_labels=("test", "standard"))
    with quiet():
        return cohort, crude_analysis(cohort), adjust(cohort, n_boot=0)
