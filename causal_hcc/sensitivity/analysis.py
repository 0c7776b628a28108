"""Every sensitivity analysis of one cohort in one report -> SensitivityReport.

:func:`run_sensitivity` runs, on a validated cohort and (optionally) its
:class:`~causal_hcc.effects.EffectsReport`:

1. E-values for every hazard ratio the effects report holds, and for its landmark survival
   and RMST differences (:func:`~causal_hcc.sensitivity.evalue_records.effect_evalues`);
2. the specification grid over the user's covariates (:mod:`~causal_hcc.sensitivity.grid`;
   a study may pass its own ``covariate_sets``);
3. when the cohort has a ``treatment_start`` role: landmark analyses (crude, adjusted, and
   IPTW ATE with the PS re-estimated among the landmark survivors) and the time-varying
   Cox model with and without the confounders
   (:mod:`~causal_hcc.sensitivity.immortal_time`,
   :mod:`~causal_hcc.sensitivity.time_varying`); default landmarks: the quartiles of
   the treatment start among the treated (:func:`default_immortal_landmarks`);
4. Lin-Psaty-Kronmal tipping-point grids and contours, and observed-confounder benchmarks
   (the binary PS covariates by default), for the **primary** adjusted HR and for the
   crude HR;
5. subgroups by each ``subgroups`` role variable (binary) with tests of interaction
   (:mod:`~causal_hcc.sensitivity.subgroups`);
6. time zero: for each binary post-baseline covariate (role ``post_baseline``) adjusted
   for, the analysis restricted to its level 0, crude and adjusted for the rest
   (:mod:`~causal_hcc.sensitivity.restricted`), and a flag on every model that conditions
   on it (the adjusted time-varying Cox included);
7. any ``extra_analyses`` a study passes (e.g. the Yang 2025 NED null correlation and
   vascular-invasion what-if, ``causal_hcc.studies.yang2025.what_ifs.extra_analyses``).

**Primary adjusted HR** (pre-specified, not chosen after seeing the numbers): IPTW for the
ATE with stabilised weights and a robust SE. It targets the whole population of the
cohort, uses every patient, and its estimand does
not change with the caliper, whereas caliper matching can drop treated patients and then
estimates the effect among the matchable treated only. ``primary=("psm", "ATT")`` (or any
other method/estimand of the effects report) changes it.

Statistical warnings raised inside a stage become notes of the report; a stage that cannot
run (a column it needs is absent) is listed in ``unavailable`` with the reason. The text of
``SensitivityReport.summary()`` is written by :mod:`~causal_hcc.sensitivity.summary`.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from causal_hcc._numeric import to_jsonable
from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED
from causal_hcc.effects import EffectsReport, adjust
from causal_hcc.effects.spec import Specification, estimate
from causal_hcc.errors import CohortError, NotEstimableError, SmallSampleWarning
from causal_hcc.sensitivity._memo import shared_rows, small_blas
from causal_hcc.sensitivity.evalue_records import effect_evalues
from causal_hcc.sensitivity.grid import (BALANCE_THRESHOLD, SpecificationGrid,
                                         build_specifications, default_covariate_sets,
                                         specification_grid)
from causal_hcc.sensitivity.grid_summary import grid_by_estimand
from causal_hcc.sensitivity.restricted import RestrictedAnalysis, restricted_analyses
from causal_hcc.sensitivity.immortal_time import (LandmarkAnalysis, default_immortal_landmarks,
                                                  landmark_analysis)
from causal_hcc.sensitivity.subgroups import SubgroupAnalysis, subgroup_effects
from causal_hcc.sensitivity.summary import (METHOD_LABELS, sensitivity_summary,
                                            summary_conclusion)
from causal_hcc.sensitivity.time_varying import TimeVaryingCox, time_varying_cox
from causal_hcc.sensitivity.unmeasured import (ConfounderBenchmarks, TippingPointContour,
                                               TippingPointGrid,
                                               observed_confounder_benchmarks,
                                               tipping_point_contour, tipping_point_grid)
PRIMARY = ("iptw", "ATE")
DEFAULT_SEED = SEED
#: Confounder-death hazard ratios and prevalences of the tipping-point grid.
TIPPING_HR_U = (0.25, 0.5, 0.75, 1.5, 2.0, 4.0)
TIPPING_PREVALENCES = tuple(np.round(np.linspace(0, 1, 11), 10))
#: HR_U values of the contours (p0 from 0 to 1 by 0.01).
CONTOUR_HR_U = (0.25, 0.5, 2.0, 4.0)


# ----------------------------------------------------------------------------- hooks
def landmark_iptw_hook(covariates):
    """Landmark adjustment hook: PS re-estimated among landmark survivors, IPTW ATE HR.

    Returns a callable ``hook(landmark_cohort) -> (hr, ci_lower, ci_upper, p)`` for
    :func:`~causal_hcc.sensitivity.immortal_time.landmark_analysis`: stabilised ATE weights
    from a glm PS on ``covariates`` fitted to the landmark population (treated = treatment
    started by the landmark), weighted Cox with robust SE
    (:func:`causal_hcc.effects.spec.estimate` of ``Specification.iptw``). Raises
    NotEstimableError (a "not estimable" row) on separation, an empty arm or an arm
    without deaths; the PS model's small-sample warnings are re-raised as
    SmallSampleWarning.
    """
    covariates = tuple(covariates)

    spec = Specification.iptw(covariates, estimand="ATE", stabilized=True)

    def hook(cohort: Cohort):
        res = estimate(cohort, spec)
        for note in res.notes:
            if note.startswith("PS model"):
                warnings.warn(f"{cohort.source}: {note}", SmallSampleWarning, stacklevel=2)
        e = res.estimate
        if not e.estimable:
            raise NotEstimableError(e.reason)
        return e.hr, e.ci_lower, e.ci_upper, e.p_value

    hook.__name__ = "IPTW ATE, PS re-estimated among landmark survivors"
    return hook


# ----------------------------------------------------------------------------- tipping
@dataclass(frozen=True)
class TippingPoint:
    """Tipping-point grid, contours and observed-confounder benchmarks for one HR."""

    name: str
    hr_label: str
    method: str
    estimand: str | None
    hr: float
    ci_lower: float
    ci_upper: float
    grid: TippingPointGrid | None
    contour_ci: TippingPointContour | None
    contour_point: TippingPointContour | None
    benchmarks: ConfounderBenchmarks | None
    estimable: bool = True
    reason: str = ""

    @property
    def contour(self) -> TippingPointContour | None:
        """The CI contour, or the point contour when the CI already includes 1."""
        if self.contour_ci is not None and self.contour_ci.table["feasible"].any():
            return self.contour_ci
        return self.contour_point


def _tipping(name, cohort, estimate, covariates, benchmarks=None) -> TippingPoint:
    label = (f"{METHOD_LABELS.get(estimate.method, estimate.method)}"
             + (f" ({estimate.estimand})" if estimate.estimand else "")
             + (f": {estimate.description}" if estimate.description else ""))
    common = dict(name=name, hr_label=label, method=estimate.method,
                  estimand=estimate.estimand, hr=estimate.hr, ci_lower=estimate.ci_lower,
                  ci_upper=estimate.ci_upper)
    if not estimate.estimable:
        return TippingPoint(**common, grid=None, contour_ci=None, contour_point=None,
                            benchmarks=None, estimable=False, reason=estimate.reason)
    hr, lo, hi = estimate.hr, estimate.ci_lower, estimate.ci_upper
    grid = tipping_point_grid(hr, lo, hi, TIPPING_PREVALENCES, TIPPING_PREVALENCES,
                              TIPPING_HR_U)
    contour_ci = tipping_point_contour(hr, lo, hi, CONTOUR_HR_U, target="ci")
    contour_point = tipping_point_contour(hr, lo, hi, CONTOUR_HR_U, target="point")
    binary = [c for c in (covariates if benchmarks is None else benchmarks)
              if c in cohort.data and set(pd.unique(cohort.data[c].dropna())) <= {0, 1}]
    bench = (observed_confounder_benchmarks(cohort, binary, hr=hr, ci_lower=lo, ci_upper=hi,
                                            hr_label=label) if binary else None)
    return TippingPoint(**common, grid=grid, contour_ci=contour_ci,
                        contour_point=contour_point, benchmarks=bench)


# ----------------------------------------------------------------------------- report
@dataclass(frozen=True)
class SensitivityReport:
    """Every sensitivity analysis of one cohort (see the module docstring).

    Attributes
    ----------
    label : str
        The cohort's provenance label.
    effects : EffectsReport
        The adjusted analysis the E-values and tipping points refer to.
    primary : tuple of str
        (method, estimand) of the primary adjusted HR.
    evalues : tuple of EValueRecord
    grid : SpecificationGrid or None
    landmark : LandmarkAnalysis or None
    time_varying : TimeVaryingCox or None
    tipping_points : tuple of TippingPoint
        "primary" and "crude".
    subgroups : SubgroupAnalysis or None
        The first subgroup variable's analysis (all of them in ``subgroup_analyses``).
    unavailable : dict
        Stage -> why it could not run.
    settings : dict
    notes : tuple of str
        Statistical warnings raised inside the stages, and conventions.
    subgroup_analyses : tuple of SubgroupAnalysis
        One per subgroup variable.
    extras : dict
        name -> result of each ``extra_analyses`` stage a study passed (each has
        ``summary()``; ``to_dict()`` and ``sentences()`` when it has them).
    comparison : str
        The HRs' comparison (the cohort's arm labels).
    """

    label: str
    effects: EffectsReport
    primary: tuple
    evalues: tuple
    grid: SpecificationGrid | None
    landmark: LandmarkAnalysis | None
    time_varying: TimeVaryingCox | None
    tipping_points: tuple
    subgroups: SubgroupAnalysis | None
    unavailable: dict
    settings: dict
    notes: tuple = field(default=())
    subgroup_analyses: tuple = field(default=())
    extras: dict = field(default_factory=dict)
    comparison: str = "treated vs control (reference)"
    restricted: tuple[RestrictedAnalysis, ...] = field(default=())
    time_zero_flags: tuple = field(default=())

    def estimate(self, method: str, estimand: str | None = None):
        """The effects report's estimate of one method (and estimand)."""
        for e in self.effects.estimates:
            if e.method == method and (estimand is None or e.estimand == estimand):
                return e
        raise KeyError((method, estimand))

    def tipping_point(self, name: str = "primary") -> TippingPoint:
        return next(t for t in self.tipping_points if t.name == name)

    def evalues_frame(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(r) for r in self.evalues])

    def to_dict(self) -> dict:
        """JSON-serialisable (NaN as None): the keys of ``sensitivity.json``.

        ``evalues`` holds one record per hazard ratio of the effects report (unique per
        method and estimand); ``evalues_curves`` the landmark and RMST difference records.

        The records are built once per report (the report's sections read them several
        times); each call returns a new top-level dict, so adding keys to it is safe, but
        the nested records are shared and must be treated as read-only.
        """
        cached = self.__dict__.get("_records_memo")
        if cached is None:
            cached = self._records()
            # a frozen dataclass: the memo bypasses __setattr__ and is no field
            self.__dict__["_records_memo"] = cached
        return dict(cached)

    def _records(self) -> dict:
        grid = self.grid
        out = {
            "label": self.label,
            "primary": {"method": self.primary[0], "estimand": self.primary[1],
                        "rationale": PRIMARY_RATIONALE},
            "settings": self.settings,
            "evalues": [asdict(r) for r in self.evalues if r.measure == "HR"],
            "evalues_curves": [asdict(r) for r in self.evalues if r.measure != "HR"],
            "specification_grid": [] if grid is None else grid.rows.to_dict("records"),
            "specification_grid_summary": None if grid is None else {
                "design": grid.design, "denominator": grid.denominator_text(),
                "headline": grid.headline(),
                "headline_balanced": grid.headline(max_smd=BALANCE_THRESHOLD),
                "counts": grid.ci_counts(), "by_estimand": grid_by_estimand(grid.rows),
                "settings": grid.settings,
                "covariate_sets": grid.covariate_sets, "notes": grid.notes},
            "landmark": None if self.landmark is None else
            self.landmark.to_frame().to_dict("records"),
            "time_varying": None if self.time_varying is None else
            self.time_varying.to_frame().to_dict("records"),
            "tipping_point": {t.name: _tipping_dict(t) for t in self.tipping_points},
            "benchmarks": {t.name: _benchmarks_dict(t) for t in self.tipping_points},
            "subgroups": None if self.subgroups is None else _subgroup_dict(self.subgroups),
            "subgroup_analyses": [_subgroup_dict(s) for s in self.subgroup_analyses],
            "comparison": self.comparison,
            "time_zero": {"flags": list(self.time_zero_flags), "restricted": [
                {"variable": a.variable, "level": a.level, "n": a.n,
                 "n_treated": a.n_treated, "n_control": a.n_control, "events": a.events,
                 "dropped_constant": list(a.dropped),
                 "estimates": a.to_frame().to_dict("records")} for a in self.restricted]},
            "unavailable": self.unavailable,
            "notes": self.notes,
        }
        # A study's extra stages under their own names (e.g. the Yang 2025 what-ifs).
        out["extras"] = sorted(self.extras)
        for name, result in self.extras.items():
            out[name] = _extra_dict(result)
        return to_jsonable(out)

    def extra(self, name: str):
        """The result of one extra stage (None when not run)."""
        return self.extras.get(name)

    @property
    def tipping_contour(self) -> TippingPointContour | None:
        """The primary HR's contour: where the corrected CI reaches 1, or, when its CI
        already includes 1, where the corrected point estimate does."""
        t = next((t for t in self.tipping_points if t.name == "primary"), None)
        return None if t is None else t.contour

    @property
    def benchmarks(self) -> ConfounderBenchmarks | None:
        """Observed-confounder benchmarks for the primary HR."""
        t = next((t for t in self.tipping_points if t.name == "primary"), None)
        return None if t is None else t.benchmarks

    def plain_sentences(self) -> list[str]:
        """The conclusion of :meth:`summary` as plain sentences (for a report's abstract)."""
        return [line[2:] for line in summary_conclusion(self) if line.startswith("- ")]

    def summary(self) -> str:
        """What the sensitivity analyses say about the paper's claim, from the numbers."""
        return sensitivity_summary(self)


PRIMARY_RATIONALE = (
    "Pre-specified: IPTW for the ATE (stabilised weights, robust SE) targets all patients "
    "of the cohort and keeps every patient; caliper "
    "matching can drop treated patients and then estimates the effect among the matchable "
    "treated only.")


def _subgroup_dict(s: SubgroupAnalysis) -> dict:
    return {"variable": s.variable, "covariates": s.covariates,
            "estimates": s.to_frame().to_dict("records"),
            "interactions": s.interaction_frame().to_dict("records"),
            "settings": s.settings, "notes": s.notes}


def _extra_dict(result):
    if result is None:
        return None
    if hasattr(result, "to_dict"):
        return result.to_dict()
    if hasattr(result, "to_frame"):
        return {"rows": result.to_frame().to_dict("records")}
    return {"summary": result.summary()}


def _tipping_dict(t: TippingPoint) -> dict:
    def contour(c):
        return None if c is None else {"target": c.target, "limit": c.limit, "note": c.note,
                                       "table": c.table.to_dict("records")}
    return {"hr_label": t.hr_label, "method": t.method, "estimand": t.estimand, "hr": t.hr,
            "ci_lower": t.ci_lower, "ci_upper": t.ci_upper, "estimable": t.estimable,
            "reason": t.reason,
            "grid": None if t.grid is None else t.grid.table.to_dict("records"),
            "contour_ci": contour(t.contour_ci), "contour_point": contour(t.contour_point)}


def _benchmarks_dict(t: TippingPoint) -> dict | None:
    b = t.benchmarks
    if b is None:
        return None
    return {"hr_label": b.hr_label, "hr": b.hr, "ci_lower": b.ci_lower, "ci_upper": b.ci_upper,
            "table": b.table.to_dict("records"), "notes": b.notes}


def _stage(name, fn, notes, unavailable):
    """Run one stage; warnings become notes, a CohortError/NotEstimableError 'unavailable'."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = fn()
        except (CohortError, NotEstimableError) as exc:
            unavailable[name] = " ".join(str(exc).split())
            result = None
    for w in caught:
        notes.append(f"{name}: {' '.join(str(w.message).split())}")
    return result


def run_sensitivity(cohort: Cohort, effects: EffectsReport | None = None, *,
                    covariates=None, jobs: int = 1, seed: int = DEFAULT_SEED,
                    progress=None, primary=None, landmarks=None, covariate_sets=None,
                    subgroups=None, benchmarks=None, extra_analyses=None,
                    dask_address: str | None = None) -> SensitivityReport:
    """Run every sensitivity analysis of the package on one cohort.

    Parameters
    ----------
    cohort : Cohort
    effects : EffectsReport, optional
        The adjusted analysis (from :func:`causal_hcc.effects.adjust`); default: run it
        without bootstrap (``n_boot=0``) on ``covariates``.
    covariates : sequence of str, optional
        PS covariates; default those of ``effects``, else the cohort's
        (``cohort.roles.covariates``).
    jobs : int
        Parallel workers of the specification grid (results identical to ``jobs=1``).
    dask_address : str, optional
        Dask scheduler (``tcp://host:port``) the specification grid runs on instead of
        local workers (:func:`causal_hcc.parallel.run_parallel`); same results.
    seed : int
        Seed of the grid's random matching orders and of every extra stage (same seed,
        same report, bit for bit).
    progress : callable, optional
        ``progress(done, total)``: the grid's rows plus one step per other stage.
    primary : (method, estimand), optional
        The primary adjusted HR for the tipping points; default the effects stage's
        (``effects.primary``: the first identified estimand, see ``adjust(primary=)``),
        else IPTW ATE.
    landmarks : sequence of float, optional
        Landmarks of the immortal-time analyses (cohort's time unit); default
        :func:`~causal_hcc.sensitivity.immortal_time.default_immortal_landmarks`.
    covariate_sets : dict, optional
        The grid's covariate sets; default
        :func:`~causal_hcc.sensitivity.grid.default_covariate_sets` (from the roles).
    subgroups : sequence of str, optional
        Binary subgroup variables; default ``cohort.roles.subgroups``.
    benchmarks : sequence of str, optional
        Binary observed confounders for the tipping-point benchmarks; default the binary
        ones among ``covariates``.
    extra_analyses : dict, optional
        name -> ``fn(cohort, covariates, seed)``: a study's own stages (e.g.
        ``causal_hcc.studies.yang2025.what_ifs.extra_analyses()``), run like the others
        (warnings become notes; CohortError / NotEstimableError -> ``unavailable``); their
        results are in ``extras``.

    Returns
    -------
    SensitivityReport
    """
    # A specification met twice on the same data is computed once; a small cohort's
    # tiny matrices on one BLAS thread (sensitivity/_memo.py).
    with shared_rows(), small_blas(cohort.n):
        return _run(cohort, effects, covariates, jobs, seed, progress, primary, landmarks,
                    covariate_sets, subgroups, benchmarks, extra_analyses, dask_address)


def _run(cohort, effects, covariates, jobs, seed, progress, primary, landmarks,
         covariate_sets, subgroups, benchmarks, extra_analyses, dask_address):
    if effects is not None and covariates is not None and \
            tuple(covariates) != tuple(effects.covariates):
        raise ValueError(f"covariates {tuple(covariates)} differ from those of the effects "
                         f"report {tuple(effects.covariates)}; pass one or make them agree.")
    covariates = tuple(covariates if covariates is not None else
                       effects.covariates if effects is not None else cohort.roles.covariates)
    cohort = cohort.with_roles(covariates=covariates)
    extra_analyses = dict(extra_analyses or {})
    subgroups = tuple(cohort.roles.subgroups if subgroups is None else subgroups)
    sets = default_covariate_sets(cohort) if covariate_sets is None else covariate_sets
    notes, unavailable = [], {}
    n_grid = len(build_specifications(sets, seed=seed))
    total = n_grid + 6 + len(subgroups) + len(extra_analyses)   # grid rows + one per stage
    done = [0]

    def tick(k=1):
        done[0] += k
        if progress is not None:
            progress(done[0], total)

    def stage(name, fn):
        result = _stage(name, fn, notes, unavailable)
        tick()
        return result

    if effects is None:
        effects = stage("effects", lambda: adjust(cohort, covariates, n_boot=0, seed=seed))
        if effects is None:
            raise NotEstimableError("The adjusted analysis could not be run: "
                                    + unavailable["effects"])
    else:
        tick()
    if primary is None:
        primary = getattr(effects, "primary", None) or PRIMARY
    evalues = stage("evalues", lambda: effect_evalues(effects))

    def grid_progress(d, _total):
        if progress is not None:
            progress(done[0] + d, total)

    grid = _stage("specification_grid", lambda: specification_grid(
        cohort, covariate_sets=sets, seed=seed, jobs=jobs, progress=grid_progress,
        ties=effects.settings.get("matching_ties", "all"), dask_address=dask_address),
        notes, unavailable)
    done[0] += n_grid
    if landmarks is None:
        landmarks = default_immortal_landmarks(cohort) if cohort.roles.treatment_start else ()
    landmarks = tuple(landmarks)
    landmark = stage("landmark", lambda: landmark_analysis(
        cohort, landmarks, covariates, adjust=landmark_iptw_hook(covariates)))
    time_varying = stage("time_varying", lambda: time_varying_cox(cohort, covariates))
    tipping = stage("tipping_point", lambda: tuple(
        _tipping(name, cohort, effects_estimate(effects, *key), covariates, benchmarks)
        for name, key in (("primary", tuple(primary)), ("crude", ("crude", None)))))
    restricted = stage("restricted", lambda: restricted_analyses(cohort, covariates)) or ()
    flags = _time_zero_flags(cohort, covariates, time_varying)
    analyses = []
    if not subgroups:
        unavailable["subgroups"] = ("no subgroup variable named (role 'subgroups'; CLI "
                                    "--subgroup COL)")
    for variable in subgroups:
        name = "subgroups" if len(subgroups) == 1 else f"subgroups: {variable}"
        result = stage(name, lambda v=variable: subgroup_effects(
            cohort, v, covariates, ties=effects.settings.get("matching_ties", "all")))
        if result is not None:
            analyses.append(result)
    extras = {}
    for name, fn in extra_analyses.items():
        result = stage(name, lambda f=fn: f(cohort, covariates, seed))
        if result is not None:
            extras[name] = result
    settings = {"covariates": list(covariates), "seed": seed, "jobs": jobs,
                "reconstructed": bool(cohort.reconstructed), "primary": list(primary),
                "landmarks": list(landmarks), "time_unit": cohort.labels.time_unit,
                "subgroups": list(subgroups), "extra_analyses": list(extra_analyses),
                "tipping_hr_u": list(TIPPING_HR_U),
                "tipping_prevalences": list(TIPPING_PREVALENCES),
                "contour_hr_u": list(CONTOUR_HR_U), "effects": effects.settings}
    return SensitivityReport(
        label=cohort.label, effects=effects, primary=tuple(primary), evalues=evalues or (),
        grid=grid, landmark=landmark, time_varying=time_varying, tipping_points=tipping or (),
        subgroups=analyses[0] if analyses else None, unavailable=unavailable,
        settings=settings, notes=tuple(dict.fromkeys(notes)),
        subgroup_analyses=tuple(analyses), extras=extras,
        comparison=cohort.labels.comparison, restricted=tuple(restricted),
        time_zero_flags=tuple(flags))


def _time_zero_flags(cohort: Cohort, covariates, time_varying) -> list[str]:
    """Every model of the report that conditions on a post-baseline covariate, named."""
    post = cohort.post_baseline_in(covariates)
    if not post:
        return []
    names = ", ".join(post)
    flags = [f"Every adjusted HR of the effects report and the grid conditions on {names}, "
             "measured after time zero (it may be affected by treatment or by early "
             "survival); the restricted analysis avoids it."]
    if time_varying is not None and len(time_varying.rows) > 1:
        flags.append(f"The adjusted time-varying Cox model conditions on {names}: counting "
                     "treatment from its start removes immortal time, not this bias.")
    return flags


def effects_estimate(effects: EffectsReport, method: str, estimand: str | None):
    """The estimate of ``method`` (and ``estimand``) in an effects report."""
    for e in effects.estimates:
        if e.method == method and (estimand is None or e.estimand == estimand):
            return e
    raise NotEstimableError(f"The effects report has no estimate {method} {estimand or ''}.")
