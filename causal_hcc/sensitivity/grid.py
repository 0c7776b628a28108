"""Specification grid: how the adjusted hazard ratio moves when each analytic choice moves.

One row per specification (a combination of choices), with the HR of treated vs control
(the cohort's arm labels), its 95% Wald CI and P, the patients used, the effective (or
matched) sample size, the largest |SMD| over the PS covariates after adjustment, and the
choices as columns.

The covariate sets come from the user's roles (:func:`default_covariate_sets`): the PS
covariates ("default"); each left out once ("without X"); each candidate
(``cohort.roles.candidates``) added once ("default + X"); and the default set with every
numeric covariate as a natural cubic spline (R ``ns(x, df = 3)``). A study may pass its own
sets (``covariate_sets=``; e.g. ``causal_hcc.studies.yang2025.what_ifs.covariate_sets``).

What is crossed with each set (not the Cartesian product of everything, which explodes):

- **matching family** = calipers x ratios x (without replacement: treated order largest,
  smallest, random with ``n_order_seeds`` seeds; with replacement: order does not matter,
  one row). Defaults: 5 calipers (0.05, 0.1, 0.2, 0.5 SD of the logit PS, none) x 2 ratios
  (1:1, 1:2) x (7 + 1) = **80 rows per set**;
- **weighting family** = estimand/stabilisation (ATE and ATT stabilised or not, ATO) x
  truncation (none, 1st-99th, 5th-95th percentiles) x PS trimming (none, 0.05-0.95,
  0.1-0.9). Defaults: 5 x 3 x 3 = **45 rows per set**.

Each row is the computation of :func:`causal_hcc.effects.spec.estimate` (the same as
:func:`causal_hcc.effects.adjust` for the same choices, without the bootstrap), run on the
batched core: one task per covariate set (one PS fit; its rows' Cox models in one batched
fit, :func:`causal_hcc.effects.spec.estimate_prepared_many`), the tasks through
:func:`causal_hcc.parallel.run_parallel` (joblib locally, Dask with ``dask_address``). A row that cannot be estimated (no match within the caliper, separation in
the PS model, an arm without events, nobody left after trimming) stays in the grid with
``estimable=False`` and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd

from causal_hcc.data.cohort import Cohort
from causal_hcc.defaults import SEED, SMD_THRESHOLD
from causal_hcc.effects.spec import Specification, estimate_prepared_many, prepare
from causal_hcc.parallel import run_parallel
from causal_hcc.sensitivity._memo import data_key, memo

CALIPERS = (0.05, 0.1, 0.2, 0.5, None)
RATIOS = (1, 2)
REPLACE = (False, True)
ORDERS = ("largest", "smallest", "random")
N_ORDER_SEEDS = 5
WEIGHTINGS = (("ATE", True), ("ATE", False), ("ATT", True), ("ATT", False), ("ATO", False))
TRUNCATIONS = (None, (1.0, 99.0), (5.0, 95.0))
TRIMS = (None, (0.05, 0.95), (0.1, 0.9))
#: Degrees of freedom of the natural splines of numeric covariates.
SPLINE_DF = 3
DEFAULT_SEED = SEED
#: Specifications balanced to max |SMD| <= this are counted apart in the summary.
BALANCE_THRESHOLD = SMD_THRESHOLD
#: The grid's family names of the two specification families.
FAMILY_NAMES = {"psm": "matching", "iptw": "weighting"}
#: The choice columns of the grid, in the order the specification curve shows them.
CHOICE_COLUMNS = ("family", "covariate_set", "caliper", "ratio", "replacement", "order",
                  "weights", "stabilized", "truncation", "trimming")
COLUMNS = ("spec_id", *CHOICE_COLUMNS, "caliper_sd", "order_seed", "estimand", "covariates",
           "is_default", "estimable", "reason", "hr", "ci_lower", "ci_upper", "p_value",
           "se_log_hr", "variance", "n_treated", "n_control", "n_used", "events",
           "ess_treated", "ess_control", "max_abs_smd", "smd_denominator", "note")


def _spline_candidates(cohort: Cohort, covariates) -> tuple[str, ...]:
    """Numeric covariates with enough distinct values for a df-3 natural spline."""
    return tuple(c for c in covariates if cohort.kind(c) == "numeric"
                 and cohort.data[c].nunique() > SPLINE_DF + 1)


def default_covariate_sets(cohort: Cohort) -> dict[str, dict]:
    """The PS covariate sets of the grid, from the cohort's roles.

    Returns
    -------
    dict
        name -> ``{"covariates": tuple, "splines": {name: df}}``: "default" (the PS
        covariates), "without X" for each (when there are two or more), "default + X" for
        each candidate not already in, and "default, numeric as splines" (each numeric
        covariate as ``ns(x, df=3)``) when there is a numeric covariate.
    """
    base = tuple(cohort.roles.covariates)
    sets = {"default": {"covariates": base, "splines": {}}}
    if len(base) > 1:
        for c in base:
            sets[f"without {c}"] = {"covariates": tuple(x for x in base if x != c),
                                    "splines": {}}
    for c in cohort.roles.candidates:
        if c not in base:
            sets[f"default + {c}"] = {"covariates": base + (c,), "splines": {}}
    numeric = _spline_candidates(cohort, base)
    if numeric:
        sets["default, numeric as splines"] = {"covariates": base,
                                               "splines": {c: SPLINE_DF for c in numeric}}
    return sets


def _normalise_sets(sets) -> dict[str, tuple[tuple, tuple]]:
    out = {}
    for name, value in sets.items():
        if isinstance(value, dict):
            splines = value.get("splines") or {}
            out[name] = (tuple(value["covariates"]), tuple(dict(splines).items()))
        else:
            out[name] = (tuple(value), ())
    return out


def spec_id(spec: Specification) -> str:
    """A readable unique name of one grid specification."""
    if spec.family == "psm":
        order = spec.order + (f" {spec.order_seed}" if spec.order == "random" else "")
        return (f"PSM | {spec.name} | caliper {_caliper_label(spec.caliper_sd)} "
                f"| 1:{spec.ratio} | {'with' if spec.replace else 'without'} "
                f"replacement | {order if not spec.replace else 'any order'}")
    return (f"IPTW | {spec.name} | {spec.estimand} "
            f"{'stabilised' if spec.stabilized else 'unstabilised'} | truncation "
            f"{_range_label(spec.truncate)} | trimming {_range_label(spec.trim)}")


def choices(spec: Specification) -> dict:
    """The choice columns of one specification ("" where not applicable)."""
    out = dict.fromkeys(CHOICE_COLUMNS, "")
    out.update(family=FAMILY_NAMES[spec.family], covariate_set=spec.name)
    if spec.family == "psm":
        out.update(caliper=_caliper_label(spec.caliper_sd), ratio=f"1:{spec.ratio}",
                   replacement="with" if spec.replace else "without",
                   order="any (with replacement)" if spec.replace else spec.order)
    else:
        out.update(weights=spec.estimand,
                   stabilized=("n/a" if spec.estimand == "ATO" else
                               "yes" if spec.stabilized else "no"),
                   truncation=_range_label(spec.truncate), trimming=_range_label(spec.trim))
    return out


def _caliper_label(caliper_sd) -> str:
    return "none" if caliper_sd is None else f"{caliper_sd:g} SD"


def _range_label(limits) -> str:
    return "none" if limits is None else f"{limits[0]:g}-{limits[1]:g}"


def is_default(spec: Specification) -> bool:
    """The package's default analysis (effects.adjust): PSM 1:1, caliper 0.2 SD, largest
    first, no replacement; IPTW ATE stabilised, untrimmed, untruncated; default set."""
    if spec.name != "default" or spec.splines:
        return False
    if spec.family == "psm":
        return (spec.caliper_sd == 0.2 and spec.ratio == 1 and not spec.replace
                and spec.order == "largest")
    return (spec.estimand == "ATE" and spec.stabilized and spec.truncate is None
            and spec.trim is None)


def build_specifications(covariate_sets, *, calipers=CALIPERS, ratios=RATIOS,
                         replace=REPLACE, orders=ORDERS, n_order_seeds=N_ORDER_SEEDS,
                         weightings=WEIGHTINGS, truncations=TRUNCATIONS, trims=TRIMS,
                         seed: int = DEFAULT_SEED, ties: str = "all"
                         ) -> tuple[Specification, ...]:
    """Every specification of the grid, in a fixed order (set, family, options).

    ``covariate_sets``: name -> covariates, or name -> ``{"covariates", "splines"}``. The
    random-order seeds are drawn once from ``seed``, so the same seed gives the same grid
    whatever the number of workers.
    """
    order_seeds = [int(s) for s in np.random.default_rng(seed).integers(
        0, 2**31 - 1, size=n_order_seeds)]
    specs = []
    for name, (covs, splines) in _normalise_sets(covariate_sets).items():
        psm = dict(covariates=covs, splines=splines, name=name)
        for cal in calipers:
            for ratio in ratios:
                for rep in replace:
                    if rep:
                        specs.append(Specification.psm(caliper_sd=cal, ratio=ratio,
                                                       replace=True, ties=ties, **psm))
                        continue
                    for order in orders:
                        seeds = order_seeds if order == "random" else [None]
                        specs += [Specification.psm(caliper_sd=cal, ratio=ratio, order=order,
                                                    order_seed=s, ties=ties, **psm)
                                  for s in seeds]
        for estimand, stab in weightings:
            for trunc in truncations:
                for trim in trims:
                    specs.append(Specification.iptw(estimand=estimand, stabilized=bool(stab),
                                                    truncate=trunc, trim=trim, **psm))
    return tuple(specs)


# ----------------------------------------------------------------------------- one set
def _empty_row(spec: Specification) -> dict:
    nan = float("nan")
    row = {c: nan for c in COLUMNS}
    row.update(choices(spec))
    covs = ", ".join(f"ns({c}, df={dict(spec.splines)[c]})" if c in dict(spec.splines)
                     else c for c in spec.covariates)
    row.update(spec_id=spec_id(spec), caliper_sd=nan if spec.caliper_sd is None or
               spec.family == "iptw" else spec.caliper_sd, order_seed=spec.order_seed,
               estimand="ATT" if spec.family == "psm" else spec.estimand, covariates=covs,
               is_default=is_default(spec), estimable=False, reason="", variance="",
               smd_denominator="", note="", n_treated=0, n_control=0, n_used=0, events=0)
    return row


def evaluate_set(cohort: Cohort, specs) -> list[dict]:
    """Rows of the grid for specifications sharing one PS model (one PS fit).

    Parameters
    ----------
    cohort : Cohort
    specs : sequence of Specification
        All with the same covariates and splines.

    Returns
    -------
    list of dict
        One row per specification, with the columns :data:`COLUMNS`.

    Notes
    -----
    Inside :func:`causal_hcc.sensitivity._memo.shared_rows` (as in ``run_sensitivity``),
    a set whose rows were all computed before on the same data is not computed again.
    """
    specs = list(specs)
    if not specs:
        return []
    keys = {s.key for s in specs}
    if len(keys) > 1:
        raise ValueError("evaluate_set: specifications of one call share one PS model.")
    rows_memo = memo()
    if rows_memo is None:
        return _evaluate_set(cohort, specs)
    data = data_key(cohort, specs[0].covariates)
    if all((data, spec) in rows_memo for spec in specs):
        return [dict(rows_memo[data, spec]) for spec in specs]
    rows = _evaluate_set(cohort, specs)
    rows_memo.update(((data, spec), dict(row)) for spec, row in zip(specs, rows))
    return rows


def _evaluate_set(cohort: Cohort, specs) -> list[dict]:
    prep = prepare(cohort, specs[0].covariates, specs[0].splines)
    rows = []
    for spec, res in zip(specs, estimate_prepared_many(prep, specs)):
        e = res.estimate
        row = _empty_row(spec)
        row.update(estimable=e.estimable, reason=e.reason, n_treated=e.n_treated,
                   n_control=e.n_control, n_used=e.n_treated + e.n_control, events=e.events,
                   note=" ".join(n for n in res.notes if n))
        if not prep.reason:
            row.update(estimand=res.estimand_text or e.estimand, hr=e.hr,
                       ci_lower=e.ci_lower, ci_upper=e.ci_upper, p_value=e.p_value,
                       se_log_hr=e.se_log_hr, variance=e.variance,
                       ess_treated=e.ess_treated, ess_control=e.ess_control,
                       max_abs_smd=res.max_abs_smd, smd_denominator=res.smd_denominator)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- the grid
@dataclass(frozen=True)
class SpecificationGrid:
    """The adjusted HR of treated vs control across analytic choices.

    Attributes
    ----------
    label : str
        Provenance of the data (the cohort's label).
    rows : pandas.DataFrame
        One row per specification, columns :data:`COLUMNS`: the choices, ``estimable`` and
        ``reason``, HR, Wald 95% CI, P, SE of log HR and its type, n treated / control /
        used (positive weight), events, ESS per arm, max |SMD| over the PS covariates and
        its denominator, and notes (e.g. the events-per-variable warning of the PS model).
    covariate_sets : dict
        name -> covariates (splines, if any, in ``settings["splines"]``).
    design : str
        What is crossed and how many rows result.
    settings : dict
        The options of the grid (calipers, ratios, ..., seed, random-order seeds).
    """

    label: str
    rows: pd.DataFrame
    covariate_sets: dict
    design: str
    settings: dict
    notes: tuple = field(default=())
    comparison: str = "treated vs control (reference)"

    @property
    def n_specifications(self) -> int:
        return len(self.rows)

    @property
    def estimable_rows(self) -> pd.DataFrame:
        return self.rows[self.rows["estimable"].astype(bool)]

    def to_frame(self) -> pd.DataFrame:
        """One row per specification (a copy)."""
        return self.rows.copy()

    def ci_counts(self, family: str | None = None, max_smd: float | None = None) -> dict:
        """Counts behind the headline: estimable specs, CI excluding 1, HR < 1 / > 1.

        ``family`` restricts to "matching" or "weighting"; ``max_smd`` to estimable
        specifications whose max |SMD| over the PS covariates is at most that value.
        """
        ok = self.estimable_rows
        if family is not None:
            ok = ok[ok["family"] == family]
        if max_smd is not None:
            ok = ok[ok["max_abs_smd"] <= max_smd]
        below = ok["ci_upper"] < 1
        above = ok["ci_lower"] > 1
        return {"n_specifications": int(len(self.rows) if family is None else
                                        (self.rows["family"] == family).sum()),
                "n_estimable": int(len(ok)), "n_ci_excludes_1": int((below | above).sum()),
                "n_ci_excludes_1_below": int(below.sum()),
                "n_ci_excludes_1_above": int(above.sum()),
                "n_hr_below_1": int((ok["hr"] < 1).sum()),
                "hr_min": float(ok["hr"].min()) if len(ok) else float("nan"),
                "hr_median": float(ok["hr"].median()) if len(ok) else float("nan"),
                "hr_max": float(ok["hr"].max()) if len(ok) else float("nan")}

    def headline(self, family: str | None = None, max_smd: float | None = None) -> str:
        """'In X of Y estimable specifications the 95% CI excludes 1 (HR < 1 in A, > 1 in
        B).'"""
        c = self.ci_counts(family, max_smd)
        which = ("" if max_smd is None else
                 f" with max |SMD| <= {max_smd:g} over the PS covariates")
        return (f"In {c['n_ci_excludes_1']} of {c['n_estimable']} estimable specifications"
                f"{which} the 95% CI excludes 1 (HR < 1 in {c['n_ci_excludes_1_below']}, > 1 "
                f"in {c['n_ci_excludes_1_above']}).")

    def denominator_text(self) -> str:
        """How many specifications in all, estimable, excluding 1, and among balanced ones."""
        c = self.ci_counts()
        b = self.ci_counts(max_smd=BALANCE_THRESHOLD)
        return (f"Denominator: {c['n_specifications']} specifications in all; "
                f"{c['n_estimable']} estimable ({c['n_specifications'] - c['n_estimable']} "
                f"not, with their reasons); the 95% CI excludes 1 in {c['n_ci_excludes_1']} "
                f"of the {c['n_estimable']} estimable; {b['n_estimable']} of those reach max "
                f"|SMD| <= {BALANCE_THRESHOLD:g} over the PS covariates, and among them the CI "
                f"excludes 1 in {b['n_ci_excludes_1']}. Shares are of the estimable "
                "specifications, each counted once; the specifications are not independent "
                "analyses (they share patients), so the share is not a probability.")

    def summary(self) -> str:
        c = self.ci_counts()
        lines = [self.label,
                 f"Specification grid: HR of {self.comparison} across analytic choices; "
                 "Wald 95% CIs with robust SEs (no bootstrap).",
                 self.design,
                 self.denominator_text(),
                 self.headline(),
                 f"Estimable: {c['n_estimable']} of {c['n_specifications']}; HR median "
                 f"{c['hr_median']:.3f} (range {c['hr_min']:.3f} to {c['hr_max']:.3f}); "
                 f"point estimate < 1 in {c['n_hr_below_1']}.",
                 self.headline(max_smd=BALANCE_THRESHOLD)]
        for family in ("matching", "weighting"):
            f = self.ci_counts(family)
            lines.append(f"  {family}: {f['n_estimable']} of {f['n_specifications']} "
                         f"estimable; HR median {f['hr_median']:.3f} (range "
                         f"{f['hr_min']:.3f} to {f['hr_max']:.3f}); "
                         + self.headline(family))
        by_set = []
        for name, part in self.rows.groupby("covariate_set", sort=False):
            ok = part[part["estimable"].astype(bool)]
            by_set.append(f"  {name}: {len(ok)} of {len(part)} estimable"
                          + (f", HR median {ok['hr'].median():.3f}" if len(ok) else ""))
        lines += ["By covariate set:"] + by_set
        failed = self.rows[~self.rows["estimable"].astype(bool)]
        if len(failed):
            lines.append("Not estimable, by reason:")
            reasons = failed["reason"].str.split(":").str[0].str.split(".").str[0]
            for reason, count in reasons.value_counts().items():
                lines.append(f"  {count} x {reason}")
        default = self.rows[self.rows["is_default"].astype(bool)]
        for r in default.itertuples():
            lines.append(f"Default {r.family}: " + (
                f"HR {r.hr:.3f} ({r.ci_lower:.3f}-{r.ci_upper:.3f})" if r.estimable
                else f"not estimable ({r.reason})"))
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _design_text(sets, specs, settings) -> str:
    n_sets = len(sets)
    per_set_m = sum(1 for s in specs if s.family == "psm") // max(n_sets, 1)
    per_set_w = sum(1 for s in specs if s.family == "iptw") // max(n_sets, 1)
    orders = ", ".join(o + (f" ({settings['n_order_seeds']} seeds)" if o == "random" else "")
                       for o in settings["orders"])
    return (f"Crossed: matching options x covariate sets, and weighting options x covariate "
            f"sets (not matching x weighting). Matching: {n_sets} covariate sets x "
            f"{len(settings['calipers'])} calipers x {len(settings['ratios'])} ratios x "
            f"(without replacement: orders {orders}; with replacement: one row, order "
            f"irrelevant) = {n_sets} x {per_set_m} = {n_sets * per_set_m} rows. Weighting: "
            f"{n_sets} sets x {len(settings['weightings'])} estimand/stabilisation x "
            f"{len(settings['truncations'])} truncations x {len(settings['trims'])} trims = "
            f"{n_sets} x {per_set_w} = {n_sets * per_set_w} rows. Total {len(specs)} rows. "
            f"Covariate sets: {'; '.join(sets)}.")


def specification_grid(cohort: Cohort, *, covariate_sets: dict | None = None,
                       calipers=CALIPERS, ratios=RATIOS, replace=REPLACE, orders=ORDERS,
                       n_order_seeds: int = N_ORDER_SEEDS, weightings=WEIGHTINGS,
                       truncations=TRUNCATIONS, trims=TRIMS, seed: int = DEFAULT_SEED,
                       jobs: int = 1, progress=None, ties: str = "all",
                       dask_address: str | None = None) -> SpecificationGrid:
    """Re-run the adjusted analysis across analytic choices; one row per specification.

    Parameters
    ----------
    cohort : Cohort
    covariate_sets : dict, optional
        name -> PS covariates (or ``{"covariates": ..., "splines": {name: df}}``); default
        :func:`default_covariate_sets` (from the cohort's roles).
    calipers : sequence of float or None
        Calipers in SDs of the logit PS (MatchIt's SD over all patients); None = none.
    ratios : sequence of int
        Controls per treated patient (1:k).
    replace : sequence of bool
        Matching without / with replacement.
    orders : sequence of {"largest", "smallest", "random"}
        Order in which treated patients choose (without replacement only).
    n_order_seeds : int
        Seeds for the random order (drawn from ``seed``).
    weightings : sequence of (estimand, stabilized)
        Default ATE and ATT stabilised or not, and ATO.
    truncations : sequence of (low, high) percentiles or None
    trims : sequence of (low, high) PS limits or None
    seed : int
        Seed of the random matching orders.
    jobs : int
        Parallel workers (joblib processes). The result is identical to ``jobs=1``.
    progress : callable, optional
        ``progress(done, total)`` in rows, called as each covariate set is done.
    dask_address : str, optional
        Dask scheduler (``tcp://host:port``) to run the covariate sets on instead
        (:func:`causal_hcc.parallel.run_parallel`, as the bootstrap); same result.

    Returns
    -------
    SpecificationGrid

    Notes
    -----
    See the module docstring for what is crossed. Each row uses the point estimate and
    the model-based robust SE of its method as :func:`causal_hcc.effects.adjust` does; the
    default rows reproduce ``adjust``'s ``psm`` and ``iptw`` (ATE) estimates exactly.
    """
    sets = dict(default_covariate_sets(cohort) if covariate_sets is None else covariate_sets)
    specs = build_specifications(sets, calipers=calipers, ratios=ratios, replace=replace,
                                 orders=orders, n_order_seeds=n_order_seeds,
                                 weightings=weightings, truncations=truncations, trims=trims,
                                 seed=seed, ties=ties)
    # One task per covariate set: one PS fit and one batched Cox fit for all its rows.
    tasks = [chunk for chunk in ([s for s in specs if s.name == name] for name in sets)
             if chunk]
    total = len(specs)
    ends = np.cumsum([len(chunk) for chunk in tasks])
    results = run_parallel(partial(evaluate_set, cohort), tasks, jobs=jobs,
                           dask_address=dask_address,
                           progress=None if progress is None else
                           (lambda done, _n: progress(int(ends[done - 1]), total)))
    rows = [row for chunk_rows in results for row in chunk_rows]
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    table["estimable"] = table["estimable"].astype(bool)
    table["is_default"] = table["is_default"].astype(bool)
    settings = {"calipers": list(calipers), "ratios": list(ratios), "replace": list(replace),
                "orders": list(orders), "n_order_seeds": n_order_seeds,
                "order_seeds": sorted({s.order_seed for s in specs if s.order_seed is not None}),
                "weightings": [list(w) for w in weightings],
                "truncations": [None if t is None else list(t) for t in truncations],
                "trims": [None if t is None else list(t) for t in trims], "seed": seed,
                "caliper_sd_denominator": "all", "ties": "efron", "matching_ties": ties,
                "bootstrap": False}
    notes = ("Wald CIs from robust SEs (cluster-robust over matched sets for PSM without "
             "replacement, robust on patient otherwise); no bootstrap in the grid.",
             "Max |SMD| over the PS covariates (each category level a row); denominator "
             "the treated arm's SD for matching and ATT, pooled for ATE and ATO.")
    normal = _normalise_sets(sets)
    settings["splines"] = {k: dict(v[1]) for k, v in normal.items() if v[1]}
    return SpecificationGrid(cohort.label, table, {k: v[0] for k, v in normal.items()},
                             _design_text(sets, specs, settings), settings, notes,
                             cohort.labels.comparison)


