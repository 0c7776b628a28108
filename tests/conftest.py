"""Shared fixtures: a small valid frame in canonical names, built by hand."""

import os

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import settings

matplotlib.use("Agg")

# Property tests: randomised locally (new examples each run find new bugs), derandomised
# in CI (CI=true), so that a landing never depends on a lucky draw. HYPOTHESIS_PROFILE
# picks a profile explicitly, e.g. to replay CI's examples locally.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture
def valid_frame() -> pd.DataFrame:
    """Twelve patients, both arms with deaths, every required column, some optional ones."""
    return pd.DataFrame({
        "patient_id": [f"T{i:02d}" for i in range(1, 13)],
        "local_therapy": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0],
        "os_months": [30.0, 24.5, 12.0, 40.1, 8.0, 15.0, 6.0, 9.5, 14.0, 3.2, 20.0, 11.0],
        "death": [0, 1, 1, 0, 1, 0, 1, 1, 1, 1, 0, 1],
        "ecog": [0, 0, 1, 0, 1, 1, 1, 1, 0, 1, 1, 1],
        "intrahepatic_ccr": [1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0],
        "vascular_invasion": [0, 0, 0, 1, 0, 0, 1, 1, 0, 1, 1, 0],
        "sex": ["male"] * 10 + ["female"] * 2,
        "child_pugh": ["A"] * 11 + ["B"],
        "months_to_local_therapy": [1.0, 2.0, 0.5, 3.0, 1.0, 2.5] + [np.nan] * 6,
        "ned_achieved": [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        "ned_cumulative_months": [10.0, 5.0] + [np.nan] * 10,
    })
