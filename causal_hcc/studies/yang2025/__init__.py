"""Yang et al. 2025 (Chin J Gen Surg 34(7):1371-1381): the first study profile.

CNLC stage IIIb hepatocellular carcinoma, 40 patients with local therapy of extrahepatic
metastases vs 36 without. Everything that knows this paper lives here: the data dictionary
(:mod:`.dictionary`), the published targets (:mod:`.targets`), the reconstruction of a
pseudo-cohort from them (:mod:`.reconstruct`, with :mod:`.reconstruct_start`,
:mod:`.reconstruct_search`, :mod:`.reconstruct_anneal` and :mod:`.reconstruct_fast`) and its
check (:mod:`.calibration`), the paper's claims (:mod:`.paper_claims`),
its Table 3 coding (:mod:`.table3`), the NED analysis (:mod:`.ned`), the what-ifs
(:mod:`.what_ifs`) and a synthetic registry shaped like it (:mod:`.synthetic`).

The bundled cohort is RECONSTRUCTED PSEUDO-DATA: 76 pseudo-patients generated to reproduce
the published aggregates, not the study's patients.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path

import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.data.io import ColumnMapping, file_sha256, load_cohort
from causal_hcc.data.schema import validate_frame as validate_roles
from causal_hcc.studies.yang2025 import table3  # noqa: F401  (the study's Cox table)
from causal_hcc.studies.yang2025.dictionary import (ALIASES, DEFAULT_CONFOUNDERS, LABELS, PROFILE,
                                                    RECONSTRUCTED_LABEL, REQUIRED, ROLES,
                                                    VARIABLE_BY_NAME, VARIABLES,
                                                    confounders_for)

NAME = "yang2025"
BUNDLED_FILENAME = "reconstructed_pseudo_cohort.csv"
#: Default landmarks of the paper: 1, 2, 3 and 5 years, in months.
LANDMARKS = (12.0, 24.0, 36.0, 60.0)
RMST_HORIZONS = (36.0, 60.0)
#: The paper's subgroup (Section 2.3).
SUBGROUP = "oligometastatic"

__all__ = ["ALIASES", "DEFAULT_CONFOUNDERS", "LABELS", "LANDMARKS", "NAME", "PROFILE",
           "RECONSTRUCTED_LABEL", "REQUIRED", "RMST_HORIZONS", "ROLES", "SUBGROUP",
           "VARIABLES", "VARIABLE_BY_NAME", "bundled_cohort_path", "bundled_sha256", "claims_path",
           "sensitivity_extras",
           "confounders_for", "load", "load_bundled"]


def bundled_cohort_path() -> Path:
    """Path of the bundled reconstructed pseudo-cohort CSV inside the package."""
    return Path(str(resources.files(__package__).joinpath("bundled", BUNDLED_FILENAME)))


@functools.cache
def bundled_sha256() -> str:
    """SHA-256 of the bundled pseudo-cohort file (recognises it when read by path)."""
    return file_sha256(bundled_cohort_path())


def claims_path() -> Path:
    """The paper's claims file (built from ``paper_targets.json``)."""
    return Path(str(resources.files(__package__).joinpath("paper_claims.json")))


def load_bundled(*, require: tuple[str, ...] = (), covariates=None, roles=None) -> Cohort:
    """The bundled 76-patient RECONSTRUCTED pseudo-cohort (not the study's patients).

    ``covariates`` replaces the default PS covariates (ECOG PS, intrahepatic cCR,
    vascular invasion); ``roles`` replaces all the study's roles.
    """
    path = bundled_cohort_path()
    frame = pd.read_csv(path)
    roles = roles or (ROLES if covariates is None else ROLES.with_covariates(covariates))
    return validate_roles(frame, roles=roles, study=PROFILE,
                          source=f"bundled reconstructed pseudo-cohort ({path.name})",
                          require=require, reconstructed=True, sha256=file_sha256(path))


def load(data: str | Path | None = None, mapping: ColumnMapping | None = None, *,
         require: tuple[str, ...] = (), missing: str = "raise", covariates=None,
         read_options: dict | None = None) -> Cohort:
    """The bundled pseudo-cohort when ``data`` is None, else a file in this dictionary's
    names (after ``mapping``), validated against it."""
    if data is None:
        return load_bundled(require=require, covariates=covariates)
    roles = ROLES if covariates is None else ROLES.with_covariates(covariates)
    return load_cohort(data, mapping, roles=roles, study=PROFILE, require=require,
                       missing=missing, read_options=read_options, aliases=ALIASES)


def sensitivity_extras(cohort: Cohort, **options) -> dict:
    """This study's ``run_sensitivity`` keyword arguments (grid covariate sets, landmarks
    1/3/6 months, the NED null and vascular-invasion what-if); see
    :func:`.what_ifs.sensitivity_extras`."""
    from causal_hcc.studies.yang2025.what_ifs import sensitivity_extras as extras
    return extras(cohort, **options)


def published_targets() -> dict:
    """The paper's published numbers (``paper_targets.json``)."""
    return json.loads(resources.files(__package__).joinpath("paper_targets.json")
                      .read_text("utf-8"))


def validate_frame(frame: pd.DataFrame, *, covariates=None, **kwargs) -> Cohort:
    """A frame in this dictionary's names, validated against it (the study's roles)."""
    roles = kwargs.pop("roles", None) or (ROLES if covariates is None
                                          else ROLES.with_covariates(covariates))
    return validate_roles(frame, roles=roles, study=PROFILE, **kwargs)
