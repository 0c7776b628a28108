"""Sensitivity stage: how fragile is what survives adjustment?

- :mod:`~causal_hcc.sensitivity.evalues`: E-values for HRs (rare/common conversion), risk
  ratios, landmark survival differences; an explicit "no E-value" record for RMST.
- :mod:`~causal_hcc.sensitivity.unmeasured`: Lin-Psaty-Kronmal tipping points for a binary
  unmeasured confounder, and observed confounders as benchmarks.
- :mod:`~causal_hcc.sensitivity.immortal_time`: landmark analyses of a treatment that
  starts after time zero (role ``treatment_start``), and the naive baseline model beside
  the landmark and time-varying ones; :mod:`~causal_hcc.sensitivity.time_varying`: the
  counting-process rows and the time-varying Cox model; both report
  :class:`~causal_hcc.sensitivity.effect_rows.EffectRow` records.
- :mod:`~causal_hcc.sensitivity.grid`: the specification grid (the adjusted HR across PS
  covariate sets built from the roles, matching and weighting options); each row one
  :func:`causal_hcc.effects.spec.estimate`.
- :mod:`~causal_hcc.sensitivity.subgroups`: HRs within the levels of a subgroup variable
  (role ``subgroups``), and tests of interaction.
- :mod:`~causal_hcc.sensitivity.evalue_records`: E-values of every estimate of an effects
  report (:func:`effect_evalues`).
- :mod:`~causal_hcc.sensitivity.analysis`: :func:`run_sensitivity`, everything above in one
  :class:`SensitivityReport` (E-values of every reported HR included); its text summary is
  written by :mod:`~causal_hcc.sensitivity.summary`.

Study-specific analyses (Yang 2025's NED null correlation and vascular-invasion what-if)
live in ``causal_hcc.studies.yang2025`` and are passed in through
``run_sensitivity(extra_analyses=...)``; this package never imports a study.

Pure computation: frozen result objects with ``to_frame()`` and ``summary()``; times in
the cohort's unit; Cox models with Efron ties, checked against R's ``survival::coxph``.
"""

from causal_hcc.effects.spec import Specification
from causal_hcc.sensitivity._cox import CountingProcessFit, fit_counting_process_cox
from causal_hcc.sensitivity.analysis import (SensitivityReport, TippingPoint,
                                             landmark_iptw_hook, run_sensitivity)
from causal_hcc.sensitivity.evalue_records import EValueRecord, effect_evalues
from causal_hcc.sensitivity.evalues import (COMMON_OUTCOME_THRESHOLD, EValueResult,
                                            evalue_hr, evalue_landmark_difference,
                                            evalue_risk_ratio, evalue_rmst_difference,
                                            evalue_rr, hr_to_rr_common, outcome_proportion_km)
from causal_hcc.sensitivity.effect_rows import EffectRow
from causal_hcc.sensitivity.immortal_time import (ImmortalTimeComparison, LandmarkAnalysis,
                                                  LandmarkDataset, default_immortal_landmarks,
                                                  landmark_analysis, landmark_dataset,
                                                  naive_vs_immortal_table)
from causal_hcc.sensitivity.time_varying import (CountingProcessData, TimeVaryingCox,
                                                 counting_process_cox, counting_process_data,
                                                 time_varying_cox)
from causal_hcc.sensitivity.grid import (SpecificationGrid, build_specifications,
                                         default_covariate_sets, specification_grid)
from causal_hcc.sensitivity.subgroups import (InteractionTest, SubgroupAnalysis,
                                              SubgroupEstimate, interaction_tests,
                                              subgroup_effects)
from causal_hcc.sensitivity.unmeasured import (ConfounderBenchmarks, TippingPointContour,
                                               TippingPointGrid, bias_factor,
                                               observed_confounder_benchmarks,
                                               tipping_point_contour, tipping_point_grid)

__all__ = [
    "COMMON_OUTCOME_THRESHOLD", "ConfounderBenchmarks", "CountingProcessData",
    "CountingProcessFit",
    "EValueResult", "EffectRow", "ImmortalTimeComparison", "LandmarkAnalysis",
    "LandmarkDataset", "TimeVaryingCox",
    "TippingPointContour", "TippingPointGrid", "bias_factor", "counting_process_cox",
    "counting_process_data", "default_immortal_landmarks", "fit_counting_process_cox",
    "evalue_hr", "evalue_landmark_difference", "evalue_risk_ratio",
    "evalue_rmst_difference", "evalue_rr", "hr_to_rr_common", "landmark_analysis",
    "landmark_dataset", "naive_vs_immortal_table",
    "observed_confounder_benchmarks", "outcome_proportion_km", "time_varying_cox",
    "tipping_point_contour", "tipping_point_grid",
    # specification grid, subgroups, the report
    "EValueRecord", "InteractionTest", "SensitivityReport", "Specification",
    "SpecificationGrid", "SubgroupAnalysis", "SubgroupEstimate", "TippingPoint",
    "build_specifications", "default_covariate_sets",
    "effect_evalues", "interaction_tests", "landmark_iptw_hook", "run_sensitivity",
    "specification_grid", "subgroup_effects",
]
