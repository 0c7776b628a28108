"""causal_hcc: how much of a published survival benefit survives adjustment for confounding.

Pipeline (data flows one way): ``data`` (load, map, validate -> Cohort) -> ``survival``
(crude KM, log-rank, Cox) -> ``propensity`` -> ``matching`` / ``weighting`` -> ``balance``
-> ``effects`` -> ``sensitivity`` -> ``report``.

The bundled cohort is a RECONSTRUCTION: 76 pseudo-patients generated to reproduce the
published aggregates of Yang et al. 2025, not the study's patients.
"""

__version__ = "0.1.0"

RECONSTRUCTED_LABEL = (
    "RECONSTRUCTED PSEUDO-DATA: 76 pseudo-patients generated from the published aggregates "
    "of Yang et al. 2025 (Chin J Gen Surg 34(7):1371-1381), not the study's patients"
)
