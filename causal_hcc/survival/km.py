"""Kaplan-Meier, medians, landmarks, follow-up and log-rank: the package's one KM.

Everything here reproduces R's ``survival`` package on the same data: ``survfit`` (KM with
Greenwood SE; CI on the log-log scale by default, ``"log"`` and ``"plain"`` on request,
as ``conf.type``), ``print.survfit`` (median and its Brookmeyer-Crowley CI, R's exact
rule), ``summary.survfit(times = )`` (landmarks) and ``survdiff`` (log-rank). The
SPSS-style symmetric median CI the paper prints (audit.md A7) is reported beside R's.
:func:`causal_hcc.survival.crude.crude_analysis` bundles it all for a Cohort. Times are in
the cohort's unit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from causal_hcc._numeric import chi2_sf, z_value
from causal_hcc.survival.risk_sets import timefix

CONF_TYPES = ("log-log", "log", "plain")
MEDIAN_TOL = np.sqrt(np.finfo(float).eps)   # print.survfit's tolerance around 0.5
SPSS_EPSILON = 0.05                          # Collett's window for the density at the median


# ----------------------------------------------------------------------------- KM
@dataclass(frozen=True)
class MedianSurvival:
    """Median survival (months) with R's Brookmeyer-Crowley CI and the SPSS-style plain CI.

    ``lower``/``upper`` follow R ``print.survfit`` on the curve's ``conf_type`` scale;
    NaN where a CI curve never falls to 0.5. ``se_spss``, ``lower_spss``, ``upper_spss``:
    median -/+ z * SE (see :func:`kaplan_meier` Notes), the paper's symmetric intervals.
    """

    estimate: float
    lower: float
    upper: float
    conf_type: str
    se_spss: float
    lower_spss: float
    upper_spss: float
    estimable: bool
    reason: str = ""


@dataclass(frozen=True)
class Landmark:
    """Survival at a landmark time (months), as R ``summary(survfit, times = )``."""

    time: float
    surv: float
    se: float            # SE of S(t) (Greenwood), R summary()'s std.err
    lower: float
    upper: float
    n_risk: float        # an integer count unless the curve is weighted
    estimable: bool
    reason: str = ""


@dataclass(frozen=True)
class KaplanMeier:
    """A Kaplan-Meier curve at every distinct time, as R ``survfit`` (months).

    ``std_err`` is R's ``fit$std.err``: the Greenwood SE of the cumulative hazard
    (= SE of log S); ``se_surv = surv * std_err`` is the SE of S itself. ``n_risk``,
    ``n_event``, ``n_censor`` are integers, or weighted sums for a weighted curve; ``n``
    and ``events`` are always patient counts.
    """

    label: str
    time: np.ndarray
    n_risk: np.ndarray
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray
    std_err: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    conf_type: str
    conf_level: float
    n: int
    events: int
    median: MedianSurvival
    landmarks: tuple = ()

    @property
    def se_surv(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return np.where(self.surv == 0, np.nan, self.surv * self.std_err)

    def n_at_risk(self, times) -> np.ndarray:
        """Number at risk (time >= t; weighted for a weighted curve): the risk table."""
        times = np.atleast_1d(np.asarray(times, dtype=float))
        idx = np.searchsorted(self.time, times, side="left")
        return np.r_[self.n_risk, 0][idx]

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"group": self.label, "time": self.time, "n_risk": self.n_risk,
                             "n_event": self.n_event, "n_censor": self.n_censor,
                             "surv": self.surv, "std_err": self.std_err,
                             "se_surv": self.se_surv, "lower": self.lower,
                             "upper": self.upper, "conf_type": self.conf_type})

    def summary(self) -> str:
        m = self.median
        pct = f"{100 * self.conf_level:g}%"
        med = (f"median {m.estimate:.1f} months ({pct} CI {_fmt(m.lower)}-{_fmt(m.upper)}, "
               f"Brookmeyer-Crowley, {self.conf_type}; SPSS-style plain "
               f"{_fmt(m.lower_spss)}-{_fmt(m.upper_spss)})" if m.estimable
               else f"median not estimable: {m.reason}")
        lines = [f"{self.label}: n = {self.n}, deaths = {self.events}; {med}."]
        for lm in self.landmarks:
            lines.append(f"  OS at {lm.time:g} months: " + (
                f"{100 * lm.surv:.1f}% ({pct} CI {_pct(lm.lower)}-{_pct(lm.upper)}), "
                f"{lm.n_risk} at risk" if lm.estimable else f"not estimable: {lm.reason}"))
        return "\n".join(lines)


def _time_event(time, event):
    """Float arrays of equal length, finite times, 0/1 events; times tied as R's timefix."""
    time = np.asarray(time, dtype=float).ravel()
    event = np.asarray(event, dtype=float).ravel()
    if time.shape != event.shape:
        raise ValueError(f"time ({time.size}) and event ({event.size}) differ in length")
    if not np.isfinite(time).all():
        raise ValueError("time must be finite (no missing values)")
    if not np.isin(event, (0.0, 1.0)).all():
        raise ValueError("event must be coded 1 (death) / 0 (censored)")
    return timefix(time), event


def _case_weights(weights, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = np.asarray(weights, dtype=float).ravel()
    if w.shape != (n,) or not np.isfinite(w).all() or (w <= 0).any():
        raise ValueError("weights must be finite and > 0, one per patient (as R survfit)")
    return w


def _fmt(x: float) -> str:
    return "NA" if not np.isfinite(x) else f"{x:.1f}"


def _pct(x: float) -> str:
    return "NA" if not np.isfinite(x) else f"{100 * x:.1f}%"


def _confint(surv, std_err, conf_type: str, conf_level: float):
    """Pointwise CI of S, R's ``survfit_confint`` (``logse = TRUE``)."""
    z = z_value(conf_level)
    with np.errstate(divide="ignore", invalid="ignore"):
        if conf_type == "plain":
            half = z * std_err * surv
            return np.maximum(surv - half, 0), np.minimum(surv + half, 1)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            return np.exp(np.log(xx) - z * std_err), np.minimum(np.exp(np.log(xx) + z * std_err), 1)
        xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
        shift = z * std_err / np.log(xx)
        loglog = np.log(-np.log(xx))
        return np.exp(-np.exp(loglog - shift)), np.exp(-np.exp(loglog + shift))


def _first_below_half(y: np.ndarray, x: np.ndarray) -> float:
    """R print.survfit's ``minmin``: where a curve first falls to 0.5 (flat runs averaged)."""
    keep = ~np.isnan(y) & (y < 0.5 + MEDIAN_TOL)
    if not keep.any():
        return np.nan
    x, y = x[keep], y[keep]
    if abs(y[0] - 0.5) < MEDIAN_TOL and (y < y[0]).any():
        return (x[0] + x[np.argmax(y < y[0])]) / 2
    return float(x[0])


def _spss_median_se(time, surv, std_err, n_event, median) -> float:
    """SE of the median: Greenwood SE of S at the median over a density estimate (Collett).

    f = (S(u) - S(l)) / (l - u) with u the last event time where S >= 0.55 (0 if none),
    l the first event time where S <= 0.45.
    """
    ev = n_event > 0
    t, s, se = np.r_[0.0, time[ev]], np.r_[1.0, surv[ev]], np.r_[0.0, std_err[ev]]
    upper_pts = np.flatnonzero(s >= 0.5 + SPSS_EPSILON)
    lower_pts = np.flatnonzero(s <= 0.5 - SPSS_EPSILON)
    if lower_pts.size == 0:
        return np.nan
    u, l = upper_pts[-1], lower_pts[0]
    density = (s[u] - s[l]) / (t[l] - t[u])
    at = np.searchsorted(t, median, side="right") - 1
    if s[at] == 0:                  # median where the curve reaches 0: Greenwood SE undefined
        return np.nan
    return float(s[at] * se[at] / density)


def _median(time, surv, std_err, lower, upper, n_event, conf_type, conf_level):
    est = _first_below_half(surv, time)
    lo, hi = _first_below_half(lower, time), _first_below_half(upper, time)
    if np.isnan(est):
        last = f"{time[-1]:g}" if time.size else "NA"
        return MedianSurvival(est, lo, hi, conf_type, np.nan, np.nan, np.nan, False,
                              f"survival did not fall to 50% (median not reached; last "
                              f"follow-up {last} months)")
    se = _spss_median_se(time, surv, std_err, n_event, est)
    z = z_value(conf_level)
    return MedianSurvival(est, lo, hi, conf_type, se, est - z * se, est + z * se, True)


def _product_limit(time, event, w):
    """Distinct times, row -> time index, weighted deaths, totals, at risk, and S(t)."""
    uniq, inv = np.unique(time, return_inverse=True)
    n_event = np.bincount(inv, weights=event * w, minlength=uniq.size)
    n_total = np.bincount(inv, weights=w, minlength=uniq.size)
    n_risk = np.cumsum(n_total[::-1])[::-1]
    return uniq, inv, n_event, n_total, n_risk, np.cumprod(1 - n_event / n_risk)


def survival_curve(time, event, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """The (weighted) Kaplan-Meier step function only: distinct times and S(t).

    The point estimate of :func:`kaplan_meier` without variance, CIs or median, for
    loops (bootstrap) that need only the curve. Times are not passed through
    ``timefix``; pass times already rounded as the data are.
    """
    time = np.asarray(time, dtype=float)
    w = np.ones(time.size) if weights is None else np.asarray(weights, dtype=float)
    uniq, _, _, _, _, surv = _product_limit(time, np.asarray(event, dtype=float), w)
    return uniq, surv


def kaplan_meier(time, event, *, weights=None, conf_type: str = "log-log",
                 conf_level: float = 0.95, landmarks=(), label: str = "all",
                 variance: str | None = None) -> KaplanMeier:
    """Kaplan-Meier estimate with Greenwood SE, pointwise CIs, median and landmarks.

    Parameters
    ----------
    time : array_like
        Follow-up (months).
    event : array_like
        1 = death, 0 = censored.
    weights : array_like, optional
        Case weights (> 0, e.g. IPTW or matching weights). Counts become weighted sums.
    variance : {"greenwood", "robust"}, optional
        SE of log S: the (weighted) Greenwood formula, as R ``survfit(robust = FALSE)``,
        or the infinitesimal-jackknife (robust) SE, sqrt(sum_i w_i^2 U_i(t)^2) with U_i
        the influence of patient i on log S(t). Default as R's survfit: robust when
        some weight is not an integer, else Greenwood. (R then reports ``std.err`` on
        the survival scale, S * SE(log S); ours is always SE(log S).)
    conf_type : {"log-log", "log", "plain"}
        Scale of the pointwise CI and of the median's CI. Default log-log (as lifelines);
        R's survfit defaults to "log", SPSS reports "plain".
    conf_level : float
    landmarks : sequence of float
        Times (months) at which to report S(t) with CI and the number at risk.
    label : str

    Returns
    -------
    KaplanMeier

    Notes
    -----
    Agrees with R ``survfit(Surv(time, event) ~ 1, conf.type = conf_type)``: ``std.err``
    = sqrt(sum d / (n (n - d))), CIs from R's ``survfit_confint``. The median and its CI
    follow ``print.survfit``: the first time a curve is below 0.5 + sqrt(eps), or the
    midpoint of a flat stretch at exactly 0.5 and the next drop. The SPSS-style interval
    is median -/+ z * SE with SE = SE(S(median)) / f, f = (S(u) - S(l)) / (l - u), u the
    last event time with S >= 0.55, l the first with S <= 0.45 (Collett 2015, sec. 2.4;
    believed to be SPSS's method, not verified against SPSS output).

    References
    ----------
    Brookmeyer & Crowley (1982), Biometrics 38:29-41. Collett (2015), Modelling Survival
    Data in Medical Research, 3rd ed.
    """
    if conf_type not in CONF_TYPES:
        raise ValueError(f"conf_type must be one of {CONF_TYPES}, not {conf_type!r}")
    time, event = _time_event(time, event)
    if time.size == 0:
        raise ValueError(f"{label}: no patients; a Kaplan-Meier curve needs at least one")
    w = _case_weights(weights, time.size)
    uniq, inv, n_event, n_total, n_risk, surv = _product_limit(time, event, w)
    if variance is None:
        variance = "robust" if np.any(w != np.round(w)) else "greenwood"
    if variance not in ("greenwood", "robust"):
        raise ValueError(f"variance must be 'greenwood' or 'robust', not {variance!r}")
    with np.errstate(divide="ignore", invalid="ignore"):
        increments = np.where(n_event > 0, n_event / (n_risk * (n_risk - n_event)), 0.0)
        if variance == "greenwood":
            std_err = np.sqrt(np.cumsum(increments))
        else:
            std_err = _ij_std_err(inv, event, w, increments, n_risk, n_event)
    lower, upper = _confint(surv, std_err, conf_type, conf_level)
    median = _median(uniq, surv, std_err, lower, upper, n_event, conf_type, conf_level)
    counts = (lambda a: a) if weights is not None else (lambda a: np.rint(a).astype(int))
    km = KaplanMeier(label, uniq, counts(n_risk), counts(n_event), counts(n_total - n_event),
                     surv, std_err, lower, upper, conf_type, conf_level, int(time.size),
                     int(event.sum()), median)
    lms = tuple(_landmark(km, float(t)) for t in landmarks)
    return KaplanMeier(**{**vars(km), "landmarks": lms})


def _ij_std_err(inv, event, w, increments, n_risk, n_event) -> np.ndarray:
    """Infinitesimal-jackknife SE of log S(t) at each distinct time, in O(n log n).

    The influence of patient i (time index k_i) on log S at time index k is
    A(k) for k < k_i, and A(k_i) - event_i / (n(k_i) - d(k_i)) for k >= k_i, with
    A the cumulative sum of d / (n (n - d)). Summing w_i^2 U_i^2 splits into patients
    still at risk after k and those whose influence is frozen. Agrees with R
    ``survfit(weights = w, robust = TRUE)`` (std.err / surv).
    """
    size = n_risk.size
    cum_a = np.cumsum(increments)
    own_b = np.where(n_event > 0, 1.0 / (n_risk - n_event), 0.0)
    w2_at = np.bincount(inv, weights=w ** 2, minlength=size)
    frozen = np.bincount(inv, weights=w ** 2 * (cum_a[inv] - event * own_b[inv]) ** 2,
                         minlength=size)
    later = np.cumsum(w2_at[::-1])[::-1] - w2_at
    return np.sqrt(cum_a ** 2 * later + np.cumsum(frozen))


def _landmark(km: KaplanMeier, t: float) -> Landmark:
    n_risk = km.n_at_risk([t])[0].item()
    if t > km.time[-1] and km.surv[-1] > 0:
        return Landmark(t, np.nan, np.nan, np.nan, np.nan, 0, False,
                        f"no patient followed to {t:g} months (last follow-up "
                        f"{km.time[-1]:g} months, all censored or dead before)")
    i = np.searchsorted(km.time, t, side="right") - 1
    if i < 0:                       # R summary.survfit: S = 1 with CI (1, 1) on every scale
        return Landmark(t, 1.0, 0.0, 1.0, 1.0, n_risk, True,
                        "before the first observed time: S = 1")
    surv, se = float(km.surv[i]), float(km.se_surv[i])
    reason = ("survival reached 0 (last patient died); no CI at 0" if surv == 0 else
              "no CI on the log-log scale while S = 1" if surv == 1 and km.conf_type == "log-log"
              else "")
    return Landmark(t, surv, se, float(km.lower[i]), float(km.upper[i]), n_risk, True, reason)


# ----------------------------------------------------------------------------- follow-up
@dataclass(frozen=True)
class FollowUp:
    """Median follow-up (months): reverse Kaplan-Meier and plain median of observed times."""

    reverse_km_median: float
    reverse_km_lower: float
    reverse_km_upper: float
    observed_median: float
    observed_min: float
    observed_max: float
    n: int
    estimable: bool
    reason: str = ""

    def summary(self) -> str:
        rev = (f"{self.reverse_km_median:.1f} months by reverse Kaplan-Meier (95% CI "
               f"{_fmt(self.reverse_km_lower)}-{_fmt(self.reverse_km_upper)})"
               if self.estimable else f"reverse Kaplan-Meier not estimable ({self.reason})")
        return (f"Median follow-up {rev}; median of observed times {self.observed_median:.1f} "
                f"(range {self.observed_min:.1f}-{self.observed_max:.1f}) months, n = {self.n}.")


def median_follow_up(time, event, *, conf_type: str = "log-log") -> FollowUp:
    """Median follow-up by reverse KM (censoring as the event) and of the observed times.

    Notes
    -----
    Reverse KM: R ``survfit(Surv(time, 1 - event) ~ 1)`` and ``print.survfit``'s median
    rule. The paper's "median follow-up 15 (2.5-72.0) months" does not say which it is.
    """
    time, event = np.asarray(time, dtype=float), np.asarray(event, dtype=float)
    rev = kaplan_meier(time, 1 - event, conf_type=conf_type, label="reverse KM").median
    return FollowUp(rev.estimate, rev.lower, rev.upper, float(np.median(time)),
                    float(time.min()), float(time.max()), int(time.size), rev.estimable,
                    rev.reason.replace("survival", "the censoring curve"))


# ----------------------------------------------------------------------------- log-rank
@dataclass(frozen=True)
class LogRank:
    """Log-rank test (R ``survdiff``, rho = 0): chi-square, df, P, observed and expected."""

    chisq: float
    df: int
    p: float
    groups: tuple
    observed: tuple
    expected: tuple
    stratified_by: str
    description: str
    estimable: bool
    reason: str = ""

    def summary(self) -> str:
        what = ", ".join(x for x in (self.description, self.stratified_by and
                                     f"stratified by {self.stratified_by}") if x)
        head = f"Log-rank ({what})" if what else "Log-rank"
        if not self.estimable:
            return f"{head}: not estimable: {self.reason}"
        oe = "; ".join(f"{g}: O {o:g}, E {e:.2f}" for g, o, e in
                       zip(self.groups, self.observed, self.expected))
        return (f"{head}: chi-square {self.chisq:.3f} on {self.df} df, P = {self.p:.4f} "
                f"({oe}).")


def log_rank(time, event, group, *, strata=None, description: str = "",
             stratified_by: str = "", group_names: dict | None = None) -> LogRank:
    """Log-rank test of equal survival across groups, optionally stratified.

    Parameters
    ----------
    time, event : array_like
        Months; 1 = death.
    group : array_like
        Group labels (two or more).
    strata : array_like, optional
        Stratum labels: observed - expected and variances are summed over strata.
    description, stratified_by : str
        Text for the summary.
    group_names : dict, optional
        Display name of each group label (e.g. {1: "local therapy"}).

    Notes
    -----
    As R ``survdiff``: at each death time the hypergeometric expectation n_k d / n and
    covariance d (n - d) / (n - 1) n_k / n (delta_kl - n_l / n); chi-square =
    (O - E)' V^- (O - E) over groups with non-zero expectation, dropping the first.
    """
    time, event = _time_event(time, event)
    if np.asarray(group).shape != time.shape:
        raise ValueError(f"group has {np.asarray(group).size} values for {time.size} times")
    labels, g = np.unique(np.asarray(group), return_inverse=True)
    s = np.zeros(time.size, int) if strata is None else np.unique(np.asarray(strata),
                                                                    return_inverse=True)[1]
    names = group_names or {}
    base = dict(groups=tuple(names.get(lv, str(lv)) for lv in labels.tolist()),
                description=description,
                stratified_by=stratified_by)
    if labels.size < 2:
        return LogRank(np.nan, 0, np.nan, observed=(), expected=(), estimable=False,
                       reason=f"{time.size} patient(s), all in one group: nothing to compare",
                       **base)
    obs, exp, var = _survdiff_sums(time, event, g.ravel(), s.ravel(), labels.size)
    keep = np.flatnonzero(exp > 0)
    if keep.size < 2 or event.sum() == 0:
        return LogRank(np.nan, 0, np.nan, observed=tuple(obs), expected=tuple(exp),
                       estimable=False, reason="no deaths at times when two groups were at risk",
                       **base)
    diff = (obs - exp)[keep][1:]
    sub_var = var[np.ix_(keep, keep)][1:, 1:]
    if np.linalg.matrix_rank(sub_var) < sub_var.shape[0]:
        return LogRank(np.nan, 0, np.nan, observed=tuple(obs), expected=tuple(exp),
                       estimable=False, reason="the log-rank variance is zero (every death "
                       "time leaves no survivor at risk)", **base)
    chisq = float(diff @ np.linalg.solve(sub_var, diff))
    df = keep.size - 1
    return LogRank(chisq, df, float(chi2_sf(chisq, df)), observed=tuple(obs),
                   expected=tuple(exp), estimable=True, **base)


def _survdiff_sums(time, event, g, s, k):
    obs = np.bincount(g, weights=event, minlength=k)
    exp, var = np.zeros(k), np.zeros((k, k))
    for stratum in np.unique(s):
        at = s == stratum
        t, d, gg = time[at], event[at], g[at]
        uniq, inv = np.unique(t, return_inverse=True)
        counts = np.zeros((uniq.size, k))
        deaths = np.zeros((uniq.size, k))
        np.add.at(counts, (inv, gg), 1.0)
        np.add.at(deaths, (inv, gg), d)
        n_k = np.cumsum(counts[::-1], axis=0)[::-1]
        n, dt = n_k.sum(axis=1), deaths.sum(axis=1)
        use = dt > 0
        n_k, n, dt = n_k[use], n[use], dt[use]
        exp += (n_k * (dt / n)[:, None]).sum(axis=0)
        factor = np.where(n > 1, dt * (n - dt) / np.maximum(n - 1, 1), 0.0) / n
        weighted = factor[:, None] * n_k
        var += np.diag(weighted.sum(axis=0)) - weighted.T @ (n_k / n[:, None])
    return obs, exp, var


# ----------------------------------------------------------------------------- by group
