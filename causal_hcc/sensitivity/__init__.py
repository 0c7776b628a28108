"""Sensitivity stage: how fragile is what survives adjustment?

- :mod:`~causal_hcc.sensitivity.evalues`: E-values for HRs (rare/common conversion), risk
  ratios, landmark survival differences; an explicit "no E-value" record for RMST.
- :mod:`~causal_hcc.sensitivity.unmeasured`: Lin-Psaty-Kronmal tipping points for a binary
  unmeasured confounder, and observed confounders as benchmarks.
- :mod:`~causal_hcc.sensitivity.immortal_time`: landmark and time-varying Cox analyses of
  local therapy (audit B10), beside the naive baseline model.
- :mod:`~causal_hcc.sensitivity.ned`: the NED-duration / OS correlation under a null of no
  NED effect (audit A4).

Pure computation: frozen result objects with ``to_frame()`` and ``summary()``; times in
months; Cox models with Efron ties, checked against R's ``survival::coxph``.
"""

from causal_hcc.sensitivity._cox import CoxFit
from causal_hcc.sensitivity.evalues import (COMMON_OUTCOME_THRESHOLD, EValueResult,
                                            evalue_hr, evalue_landmark_difference,
                                            evalue_risk_ratio, evalue_rmst_difference,
                                            evalue_rr, hr_to_rr_common, outcome_proportion_km)
from causal_hcc.sensitivity.immortal_time import (CountingProcessData, EffectRow,
                                                  ImmortalTimeComparison, LandmarkAnalysis,
                                                  LandmarkDataset, TimeVaryingCox,
                                                  counting_process_cox, counting_process_data,
                                                  landmark_analysis, landmark_dataset,
                                                  naive_vs_immortal_table, time_varying_cox)
from causal_hcc.sensitivity.ned import NedNullCorrelation, NedNullRow, ned_null_correlation
from causal_hcc.sensitivity.unmeasured import (ConfounderBenchmarks, TippingPointContour,
                                               TippingPointGrid, bias_factor,
                                               observed_confounder_benchmarks,
                                               tipping_point_contour, tipping_point_grid)

__all__ = [
    "COMMON_OUTCOME_THRESHOLD", "ConfounderBenchmarks", "CountingProcessData", "CoxFit",
    "EValueResult", "EffectRow", "ImmortalTimeComparison", "LandmarkAnalysis",
    "LandmarkDataset", "NedNullCorrelation", "NedNullRow", "TimeVaryingCox",
    "TippingPointContour", "TippingPointGrid", "bias_factor", "counting_process_cox",
    "counting_process_data", "evalue_hr", "evalue_landmark_difference", "evalue_risk_ratio",
    "evalue_rmst_difference", "evalue_rr", "hr_to_rr_common", "landmark_analysis",
    "landmark_dataset", "naive_vs_immortal_table", "ned_null_correlation",
    "observed_confounder_benchmarks", "outcome_proportion_km", "time_varying_cox",
    "tipping_point_contour", "tipping_point_grid",
]
