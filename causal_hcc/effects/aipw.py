"""Doubly robust counterfactual survival: augmented IPW (AIPW) with a Cox outcome model, a
logistic propensity score and a Cox censoring model, as R ``riskRegression::ate``.

For each arm a and landmark tau the estimate of the counterfactual risk F_a(tau) is the mean
of the per-patient terms

    Psi_i = F(tau | a, X_i) + 1{A_i = a} / pi_a(X_i)
            * [ 1{T_i <= tau, D_i = 1} / G_i - F(tau | a, X_i) + Aug_i(tau) ],

Aug_i the censoring-martingale augmentation; the counterfactual survival is 1 - F_a(tau).
Standard errors come from the influence function, including the estimation of all three
nuisance models (sum scale: se = sqrt(sum_j phi_j^2)). Every formula, and the two
riskRegression quirks mirrored here, are in ``tests/reference/estimands_AIPW_NOTES.md``.

Everything is vectorised over patients and over the censoring jump times: the cost is
O(n K) for K distinct censoring times before the last landmark (the augmentation is an
n x K sum, computed over blocks of patients, so memory stays bounded), plus O(n log n)
sorts.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from causal_hcc._numeric import norm_sf, z_value
from causal_hcc.data.cohort import Cohort
from causal_hcc.design import build_design
from causal_hcc.propensity import fit_propensity
from causal_hcc.survival.cox import fit_cox, timefix

ESTIMATORS = {"aipw": "AIPTW,AIPCW", "iptw": "IPTW,IPCW", "gformula": "GFORMULA"}
POSITIVITY_BOUND = 0.025      # PS below it or above 1 - it is reported (near-violation)
FEW_AT_RISK = 5               # fewer patients at risk in an arm at tau: estimate unstable


# ----------------------------------------------------------------------------- Cox pieces
def efron_increments(s0, tied_risk, n_events) -> np.ndarray:
    """Baseline hazard increments at the distinct event times, as R ``survfit.coxph``.

    ``lambda_k = sum_{l=0}^{d_k-1} 1 / (S0_k - (l / d_k) R_k)`` (Efron), with ``S0_k`` the
    risk-set sum of exp(z beta), ``R_k`` that sum over the d_k events at t_k. Equal to
    d_k / S0_k (Breslow) when d_k = 1.
    """
    s0, tied_risk = np.asarray(s0, float), np.asarray(tied_risk, float)
    d = np.asarray(n_events, dtype=np.int64)
    group = np.repeat(np.arange(d.size), d)
    start = np.repeat(np.cumsum(d) - d, d)
    frac = (np.arange(group.size) - start) / d[group]
    return np.bincount(group, weights=1.0 / (s0[group] - frac * tied_risk[group]),
                       minlength=d.size)


@dataclass(frozen=True)
class CoxPredictor:
    """A fitted Cox model's baseline hazard, predictions and influence functions.

    Built by :func:`cox_predictor`. Times are handled through their position on the grid
    of distinct event times ``event_times``: ``index(t)`` = #{t_k <= t} (``left=True``:
    #{t_k < t}, the left limit), and every cumulative quantity is stored per position
    (arrays of length K + 1, first entry 0).
    """

    coef: np.ndarray
    design: np.ndarray          # n x p, uncentred (the IF formulas use uncentred exp(z b))
    risk: np.ndarray            # exp(design @ coef)
    time: np.ndarray
    status: np.ndarray
    event_times: np.ndarray     # distinct event times t_k
    s0: np.ndarray              # risk-set sums at t_k
    mean: np.ndarray            # E_k = S1_k / S0_k (K x p)
    hazard: np.ndarray          # baseline hazard increments lambda_k
    cum_hazard: np.ndarray      # Lambda0 at each grid position (K + 1)
    cum_ratio: np.ndarray       # sum_{k < g} lambda_k / S0_k
    cum_mean_hazard: np.ndarray  # sum_{k < g} E_k lambda_k ((K + 1) x p)
    if_beta: np.ndarray         # influence function of the coefficients (n x p, sum scale)
    own: np.ndarray             # event rows: index of their time in t_k (-1 otherwise)
    n_le: np.ndarray            # #{t_k <= T_j}

    def index(self, t, left: bool = False) -> np.ndarray:
        return np.searchsorted(self.event_times, t, side="left" if left else "right")

    def survival(self, design, position) -> np.ndarray:
        """S(t | z) = exp(-exp(z b) Lambda0(t)) for rows of ``design`` (n x len(position))."""
        exb = np.exp(design @ self.coef)
        return np.exp(-exb[:, None] * self.cum_hazard[np.asarray(position)])

    def _if_cum_hazard(self, weight_by_position) -> np.ndarray:
        """sum_l c_l IF_j[Lambda0(t_l)] from the weights c summed per grid position."""
        c = weight_by_position
        tail = np.cumsum(c[::-1])[::-1]                      # sum over positions >= g
        head = np.r_[0.0, np.cumsum(c * self.cum_ratio)][:-1]  # sum over positions < g
        ev = self.own >= 0
        out = np.zeros(self.time.size)
        out[ev] = tail[self.n_le[ev]] / self.s0[self.own[ev]]
        g = self.n_le
        out -= self.risk * (head[g] + self.cum_ratio[g] * tail[g])
        return out - self.if_beta @ (c @ self.cum_mean_hazard)

    def survival_if_sum(self, design, position, weight) -> np.ndarray:
        """sum_{i,l} weight_il IF_j[S(t_l | z_i)] for every unit j of the fit.

        ``position`` (grid positions of the t_l) broadcasts against ``weight`` (n_eval x L).
        IF[S(t|z)] = -S e^{zb} (IF[Lambda0(t)] + Lambda0(t) z' IF[b]).
        """
        exb = np.exp(design @ self.coef)
        position = np.broadcast_to(position, weight.shape)
        lam0 = self.cum_hazard[position]
        w = weight * np.exp(-exb[:, None] * lam0) * exb[:, None]
        by_position = np.bincount(position.ravel(), weights=w.ravel(),
                                  minlength=self.cum_hazard.size)
        return self.survival_if_from_sums(by_position, design.T @ (w * lam0).sum(axis=1))

    def survival_if_from_sums(self, by_position, design_sum) -> np.ndarray:
        """:meth:`survival_if_sum` from its two sums over (i, l): the weights
        ``weight_il S(t_l | z_i) exp(z_i b)`` per grid position, and the same times
        ``Lambda0(t_l) z_i`` (p-vector)."""
        return -(self._if_cum_hazard(by_position) + self.if_beta @ design_sum)

    def hazard_if_sum(self, design, event_index, weight) -> np.ndarray:
        """sum_{i,l} weight_il IF_j[exp(z_i b) lambda(t_l)], t_l = event_times[event_index]."""
        exb = np.exp(design @ self.coef)
        fe = weight * exb[:, None]
        c = np.bincount(event_index, weights=fe.sum(axis=0), minlength=self.hazard.size)
        return self.hazard_if_from_sums(
            c, design.T @ (fe * self.hazard[event_index]).sum(axis=1))

    def hazard_if_from_sums(self, c, design_sum) -> np.ndarray:
        """:meth:`hazard_if_sum` from its two sums over (i, l): the weights
        ``weight_il exp(z_i b)`` per event time, and the same times ``lambda(t_l) z_i``."""
        ev = self.own >= 0
        out = np.zeros(self.time.size)
        out[ev] = c[self.own[ev]] / self.s0[self.own[ev]]
        out -= self.risk * np.r_[0.0, np.cumsum(c * self.hazard / self.s0)][self.n_le]
        out -= self.if_beta @ (c @ (self.mean * self.hazard[:, None]))
        return out + self.if_beta @ design_sum


def cox_predictor(fit, design, time, status, *, riskregression: bool = True) -> CoxPredictor:
    """Baseline hazard (Efron or Breslow, as the fit) and influence functions of a Cox fit.

    Parameters
    ----------
    fit : CoxFit
        From :func:`causal_hcc.survival.cox.fit_cox` on (time, status, design).
    design : array (n, p)
    time, status : arrays (n,)
    riskregression : bool
        True mirrors riskRegression's ``IFbeta_cpp``: the compensator of the coefficient IF
        omits the number of tied events d_k. False: the textbook score residual (with
        ``lambda_k``-free ``d_k / S0_k`` weights).

    Notes
    -----
    ``IF[b]_j = V U_j`` with V = inverse information and
    ``U_j = D_j (Z_j - E(T_j)) - r_j sum_{t_k <= T_j} (Z_j - E_k) m_k / S0_k`` (m_k = 1 or
    d_k). The baseline hazard agrees with R ``survfit.coxph`` / ``basehaz(centered=FALSE)``.
    """
    beta = np.asarray(fit.coef, float)
    z = np.asarray(design, float)
    risk = np.exp(z @ beta)
    event = np.asarray(status) == 1
    tk, inverse = np.unique(time[event], return_inverse=True)
    order = np.argsort(time, kind="stable")
    first = np.searchsorted(time[order], tk, side="left")
    s0 = np.cumsum(risk[order][::-1])[::-1][first]
    s1 = np.cumsum((risk[:, None] * z)[order][::-1], axis=0)[::-1][first]
    mean = s1 / s0[:, None]
    d = np.bincount(inverse, minlength=tk.size)
    if fit.ties == "efron":
        hazard = efron_increments(s0, np.bincount(inverse, weights=risk[event],
                                                  minlength=tk.size), d)
    else:
        hazard = d / s0
    own = np.full(time.size, -1)
    own[event] = inverse
    n_le = np.searchsorted(tk, time, side="right")
    mult = np.ones(tk.size) if riskregression else d.astype(float)
    cm = np.r_[0.0, np.cumsum(mult / s0)]
    cem = np.vstack([np.zeros(z.shape[1]), np.cumsum(mean * (mult / s0)[:, None], axis=0)])
    score = -risk[:, None] * (z * cm[n_le][:, None] - cem[n_le])
    score[event] += z[event] - mean[inverse]
    var = np.asarray(fit.variance_model, float)
    return CoxPredictor(
        beta, z, risk, time, event.astype(float), tk, s0, mean, hazard,
        np.r_[0.0, np.cumsum(hazard)], np.r_[0.0, np.cumsum(hazard / s0)],
        np.vstack([np.zeros(z.shape[1]), np.cumsum(mean * hazard[:, None], axis=0)]),
        score @ var, own, n_le)


# ----------------------------------------------------------------------------- jumps
@dataclass(frozen=True)
class JumpColumns:
    """The censoring jump list of the augmentation, one column per distinct entry.

    riskRegression's list has one entry per censored patient (quirk 2), so a censoring
    time shared by m patients is m identical terms except for G at the previous entry
    (quirk 1: the first copy takes G at the previous distinct time, copies 2..m take G at
    the time itself). The list is therefore stored as at most two columns per distinct
    time: the first copy (multiplicity 1) and the other copies (multiplicity m - 1).
    Every sum over the list is a sum over columns weighted by the multiplicity: the same
    terms, so the same number up to summation order (multiplying by m instead of adding
    m equal terms), while the work is per distinct time (<= 2 x #distinct censoring times
    instead of #censored patients).
    """

    u: np.ndarray          # time of each column
    prev: np.ndarray       # quirk 1: the list entry before it (0 for the first)
    mult: np.ndarray       # entries of the full list the column stands for (float)
    n_jump: np.ndarray     # columns at or before each landmark
    full: np.ndarray       # the full list (riskRegression's, cut as it is)


def jump_columns(time, status, times, riskregression: bool = True) -> JumpColumns:
    """The jump list of :func:`aipw_core` for landmarks ``times``, by distinct entry."""
    tau = np.asarray(times, float)
    u = np.sort(time[status == 0])
    if not riskregression:
        u = np.unique(u)
    # Cut after the last entry strictly before some min(T_i, tau) (the largest such stop
    # is min(max T, max tau)).
    if u.size and time.size and tau.size:
        u = u[:int(np.searchsorted(u, min(time.max(), tau.max()), side="left"))]
    else:
        u = u[:0]
    ud, first, counts = np.unique(u, return_index=True, return_counts=True)
    prev_first = np.r_[0.0, u[:-1]][first]
    idx = np.repeat(np.arange(ud.size), 1 + (counts > 1))
    rest = np.zeros(idx.size, dtype=bool)
    rest[1:] = idx[1:] == idx[:-1]
    cu = ud[idx]
    return JumpColumns(cu, np.where(rest, cu, prev_first[idx]),
                       np.where(rest, counts[idx] - 1, 1).astype(float),
                       np.searchsorted(cu, tau, side="right"), u)


def augmentation_cells(time, status, times, riskregression: bool = True) -> int:
    """Patients x jump columns of :func:`aipw_survival` at landmarks ``times``: the size
    of the augmentation's work (its cost is about proportional, its memory is not)."""
    time = timefix(time)
    return int(time.size) * int(jump_columns(time, np.asarray(status), times,
                                             riskregression).u.size)


#: Patients x jump columns computed at once (rows are taken in blocks of this many cells,
#: so that memory stays ~100 MB whatever n).
CHUNK_CELLS = 1 << 20


# ----------------------------------------------------------------------------- core
@dataclass(frozen=True)
class _Core:
    risk: np.ndarray            # (2, nt): control, treated counterfactual risks
    iid: np.ndarray             # (n, nt, 2) risk-scale IF, sum scale
    psi: np.ndarray             # (n, nt, 2)
    terms: dict


def _ps_if(w_design, ps, ps_cov, arm):
    """f -> sum_i f_i IF_j[pi_a(X_i)] (n x columns of f), logistic PS."""
    if_gamma = (w_design * (np.asarray(arm, float) - ps)[:, None]) @ ps_cov
    dens = ps * (1 - ps)

    def apply(f, a):
        sign = 1.0 if a == 1 else -1.0
        return sign * if_gamma @ (w_design.T @ (f * dens[:, None]))
    return apply


@dataclass
class _AugSums:
    """Sums over patients of the augmentation's IF terms, accumulated block by block.

    For arm a (weights w = 1{A = a} / pi_a) and landmark m, each IF term of the
    augmentation is a survival_if_sum / hazard_if_sum whose weight is
    w_i [F(tau_m | X_i) B_ik - D_ik] over the columns k before tau_m: linear, so it needs
    only column sums over patients (per grid position) and per-patient sums over the
    columns (through the design), accumulated here.
    """

    col: dict              # name -> (K, q) column sums
    design: dict           # name -> (p, 2, nt) design sums


def _augmentation(time, status, jumps, z_outcome, outcome, censoring, F_tau, weights,
                  with_if: bool):
    """Aug_i(tau) (n x nt), the cumulated integrand at each tau (n x nt) and, when
    ``with_if``, the IF sums of the augmentation (:class:`_AugSums`), by row blocks."""
    n, nt = F_tau.shape
    u, mult, n_jump = jumps.u, jumps.mult, jumps.n_jump
    K = u.size
    before = (np.arange(K)[:, None] < n_jump[None, :]) * mult[:, None]    # (K, nt)
    g_u, g_u_left = outcome.index(u), outcome.index(u, left=True)
    gc_prev, gc_left = censoring.index(jumps.prev), censoring.index(u, left=True)
    k_c = censoring.index(u) - 1
    lam_u, lam_left = outcome.cum_hazard[g_u], outcome.cum_hazard[g_u_left]
    lam_c_prev, lam_c_left = censoring.cum_hazard[gc_prev], censoring.cum_hazard[gc_left]
    hc = censoring.hazard[k_c]
    p_lam = {"2": before * lam_u[:, None], "3": before * lam_left[:, None],
             "4": before * lam_c_left[:, None], "5": before * hc[:, None]}
    eo_all = np.exp(z_outcome @ outcome.coef)
    rc_all = censoring.risk
    # S(u_k | Z_i) is computed once per distinct Lambda0(u_k) and gathered into its
    # columns (copies of a tied time share it); 1 / (G S-) and G(u_k-) / G at the previous
    # entry are single exponentials: exp(rc Lambda_c(prev) + eo Lambda0(u_k-)) and
    # exp(-rc (Lambda_c(u_k-) - Lambda_c(prev))), the latter 1 for all but tied copies.
    lam_o, inv_o = np.unique(lam_u, return_inverse=True)
    step_c = lam_c_left - lam_c_prev
    # Columns of each censored row's own time (where dM jumps): first to stop - 1.
    cen_first = np.searchsorted(u, time, side="left")
    cen_stop = np.where(status == 0, np.searchsorted(u, time, side="right"), cen_first)
    n_risk = np.searchsorted(u, time, side="right")      # at risk: columns k < n_risk
    cum_i = np.zeros((n, nt))
    cum_fi = np.zeros((n, nt))
    sums = _AugSums({}, {})
    w_pair = np.column_stack(weights)                                    # (n, 2)
    # Rows in time order: a block is at risk only in the columns before its last time,
    # so the work is the at-risk triangle, not the whole n x K rectangle.
    order = np.argsort(time, kind="stable")
    step = max(1, CHUNK_CELLS // max(K, 1))
    for lo in range(0, n, step):
        s = order[lo:lo + step]
        kk = int(n_risk[s].max())
        if kk == 0:
            continue
        c = slice(0, kk)
        eo, rc = eo_all[s, None], rc_all[s, None]
        S_right = np.exp(-eo * lam_o[:inv_o[kk - 1] + 1])[:, inv_o[c]]   # S(u_k | Z_i)
        F_u = 1 - S_right
        # Q = 1{at risk} / (G S-); integ = dM Q with dM = 1{T_i = u_k, censored} - rc lambda_c
        Q = np.exp(rc * lam_c_prev[c] + eo * lam_left[c])
        Q[np.arange(kk) >= n_risk[s, None]] = 0.0
        integ = Q * (-rc * hc[c])
        for extra in (0, 1):            # a time has at most two columns (first, rest)
            r = np.flatnonzero(cen_stop[s] - cen_first[s] > extra)
            k = cen_first[s][r] + extra
            integ[r, k] += Q[r, k]
        cum_i[s] = integ @ before[c]
        cum_fi[s] = (F_u * integ) @ before[c]
        if not with_if:
            continue
        w2 = w_pair[s]                                      # (rows, 2)
        wf = (w2[:, :, None] * F_tau[s][:, None, :]).reshape(-1, 2 * nt)
        B3 = integ * eo
        B4 = integ * rc
        tied = np.flatnonzero(step_c[c] != 0)
        if tied.size:
            B4[:, tied] *= np.exp(-rc * step_c[tied])
        B5 = Q * rc
        terms = {"2": (B3 * S_right, None), "3": (B3, F_u * B3), "4": (B4, F_u * B4),
                 "5": (B5, F_u * B5)}
        design = {"2": z_outcome[s], "3": z_outcome[s], "4": censoring.design[s],
                  "5": censoring.design[s]}
        for name, (B, D) in terms.items():
            pl = p_lam[name][c]
            if D is None:               # weight w_i B_ik (no F(tau) factor)
                col = B.T @ w2                                          # (kk, 2)
                rows = (B @ pl)[:, None, :] * w2[:, :, None]            # (rows, 2, nt)
            else:                       # weight w_i [F(tau_m | X_i) B_ik - D_ik]
                col = np.hstack([B.T @ wf, D.T @ w2])                   # (kk, 2 nt + 2)
                rows = (F_tau[s] * (B @ pl) - D @ pl)[:, None, :] * w2[:, :, None]
            d = np.einsum("ip,iam->pam", design[name], rows)
            if name not in sums.col:
                sums.col[name] = np.zeros((K, col.shape[1]))
                sums.design[name] = np.zeros_like(d)
            sums.col[name][c] += col
            sums.design[name] += d
    aug = F_tau * cum_i - cum_fi
    return aug, cum_i, sums, (g_u, g_u_left, gc_left, k_c)


def _aug_if(a, m, jumps, sums, positions, outcome, censoring, nt) -> np.ndarray:
    """sum over patients of the augmentation's IF terms for arm a at landmark m."""
    g_u, g_u_left, gc_left, k_c = positions
    k = slice(0, int(jumps.n_jump[m]))
    mult = jumps.mult[k]

    def column(name):           # per-column weight sums of arm a at landmark m
        c = sums.col[name]
        if c.shape[1] == 2:
            return c[k, a] * mult
        return (c[k, a * nt + m] - c[k, 2 * nt + a]) * mult

    def by_position(index, values, size):
        return np.bincount(index[k], weights=values, minlength=size)

    out = outcome.survival_if_from_sums(by_position(g_u, column("2"),
                                                    outcome.cum_hazard.size),
                                        sums.design["2"][:, a, m])
    out -= outcome.survival_if_from_sums(by_position(g_u_left, column("3"),
                                                     outcome.cum_hazard.size),
                                         sums.design["3"][:, a, m])
    out -= censoring.survival_if_from_sums(by_position(gc_left, column("4"),
                                                       censoring.cum_hazard.size),
                                           sums.design["4"][:, a, m])
    out -= censoring.hazard_if_from_sums(by_position(k_c, column("5"),
                                                     censoring.hazard.size),
                                         sums.design["5"][:, a, m])
    return out


def aipw_core(time, status, treated, z_outcome, outcome, censoring, w_design, ps, ps_cov,
              times, estimator: str = "aipw", *, riskregression: bool = True) -> _Core:
    """Array-level AIPW / IPTW / g-formula risks and their influence functions.

    ``z_outcome`` is the Cox design with the treatment in column 0; the censoring model
    uses the same design (``censoring`` None: no censoring, G = 1). ``outcome`` and
    ``censoring`` are :class:`CoxPredictor`. Returns risks (not survival).

    The augmentation runs over the censoring jump list by distinct entry
    (:class:`JumpColumns`) and over patients in blocks: its cost is O(n K) for K
    distinct censoring times before the last landmark, with O(K) memory per patient
    block; its IF terms are column and row sums of that work (:class:`_AugSums`).
    """
    n = time.size
    tau = np.asarray(times, float)
    nt = tau.size
    stop = np.minimum(time[:, None], tau[None, :])
    if censoring is not None:
        jumps = jump_columns(time, status, tau, riskregression)
        rc = censoring.risk
        g_s = censoring.index(stop, left=True)          # G(min(T_i, tau)-)
        G = np.exp(-rc[:, None] * censoring.cum_hazard[g_s])
    else:
        jumps = None
        g_s = np.zeros((n, nt), dtype=np.int64)
        G = np.ones((n, nt))
    Y = ((time[:, None] <= tau) & (status == 1)[:, None]).astype(float)
    C = 1.0 - ((time[:, None] <= tau) & (status == 0)[:, None])
    WC = C / G
    g_tau = outcome.index(tau)
    F_tau = 1 - outcome.survival(z_outcome, g_tau)
    ps_if = _ps_if(w_design, ps, ps_cov, treated)
    arm_w = [(treated == a).astype(float) / (ps if a == 1 else 1 - ps) for a in (0, 1)]
    if jumps is not None and jumps.u.size:
        aug, cum_i, sums, positions = _augmentation(
            time, status, jumps, z_outcome, outcome, censoring, F_tau, arm_w,
            estimator == "aipw")
        n_jump = jumps.n_jump
    else:
        aug = cum_i = np.zeros((n, nt))
        n_jump = np.zeros(nt, dtype=np.int64)
    risk = np.full((2, nt), np.nan)
    iid = np.zeros((n, nt, 2))
    psi_all = np.zeros((n, nt, 2))
    cf = {}
    for a in (0, 1):
        z_a = z_outcome.copy()
        z_a[:, 0] = a
        F_a = 1 - outcome.survival(z_a, g_tau)
        cf[a] = F_a
        p_a = ps if a == 1 else 1 - ps
        I_a = (treated == a).astype(float)
        w = I_a / p_a
        if estimator == "gformula":
            psi = F_a
        elif estimator == "iptw":
            psi = w[:, None] * Y * WC
        else:
            psi = F_a + w[:, None] * (Y * WC - F_a + aug)
        mu = psi.mean(axis=0)
        phi = (psi - mu) / n
        for m in range(nt):
            col = np.zeros(n)
            if estimator in ("gformula", "aipw"):
                f = np.ones(n) if estimator == "gformula" else 1 - w
                col -= outcome.survival_if_sum(z_a, g_tau[m], f[:, None])
            if estimator in ("iptw", "aipw"):
                r = Y[:, m] * WC[:, m] if estimator == "iptw" \
                    else Y[:, m] * WC[:, m] - F_a[:, m] + aug[:, m]
                col += ps_if((-r * I_a / p_a ** 2)[:, None], a)[:, 0]
                if censoring is not None:
                    col += censoring.survival_if_sum(
                        censoring.design, g_s[:, m][:, None],
                        (-w * Y[:, m] * C[:, m] / G[:, m] ** 2)[:, None])
            if estimator == "aipw" and n_jump[m] > 0:
                col -= outcome.survival_if_sum(z_outcome, g_tau[m],
                                               (w * cum_i[:, m])[:, None])
                col += _aug_if(a, m, jumps, sums, positions, outcome, censoring, nt)
            phi[:, m] += col / n
        risk[a] = mu
        iid[:, :, a] = phi
        psi_all[:, :, a] = psi
    terms = {"Y": Y, "G": G, "ipcw_weight": WC, "aug": aug, "risk_cf_control": cf[0],
             "risk_cf_treated": cf[1],
             "censoring_times": jumps.full if jumps is not None else np.zeros(0)}
    return _Core(risk, iid, psi_all, terms)


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class AIPWResult:
    """Counterfactual survival of each arm at given times, and their difference.

    Attributes
    ----------
    label : str
        Provenance of the data.
    estimator : {"aipw", "iptw", "gformula"}
    estimator_r : str
        The riskRegression name of the estimator computed ("AIPTW,AIPCW" etc.).
    times : ndarray
        Landmark times (``time_unit``).
    table : pandas.DataFrame
        One row per time: quantity ("survival"), time, treated, control, difference
        (treated - control), their SEs and Wald CIs, P of the difference, patients at risk.
    influence : ndarray (n, times, 3)
        Influence function (sum scale: se = sqrt(sum over patients of its square)) of the
        treated survival, the control survival and the difference, per patient (rows in the
        cohort's order, ``patient_id``).
    models : pandas.DataFrame
        Coefficients of the outcome Cox, censoring Cox and propensity models.
    notes : tuple of str
        Times beyond follow-up, positivity, instability, estimates outside [0, 1].
    """

    label: str
    estimator: str
    estimator_r: str
    times: np.ndarray
    time_unit: str
    arm_labels: tuple
    conf_level: float
    n: int
    n_treated: int
    n_control: int
    riskregression_quirks: bool
    table: pd.DataFrame
    influence: np.ndarray = field(repr=False)
    patient_id: np.ndarray = field(repr=False)
    models: pd.DataFrame = field(repr=False)
    covariates: tuple = ()
    notes: tuple = ()

    def to_frame(self) -> pd.DataFrame:
        return self.table.copy()

    def curve_rows(self) -> pd.DataFrame:
        """Rows for ``adjusted_curves.csv``: method "aipw", quantity, the time column
        (named after the time unit: ``months``, ``days``...), treated, control, difference,
        and the SE / CI columns."""
        t = self.table.rename(columns={"time": self.time_unit}).drop(columns=["time_unit"])
        return t.assign(method=self.estimator)[["method"] + [c for c in t.columns]]

    def summary(self) -> str:
        pct = f"{100 * self.conf_level:g}%"
        t1, t0 = self.arm_labels
        lines = [self.label,
                 (f"Counterfactual survival by {ESTIMATORS[self.estimator]} (R riskRegression"
                 f"::ate): Cox outcome model, logistic propensity score, Cox censoring model; "
                 f"covariates {', '.join(self.covariates)}. n = {self.n} ({self.n_treated} "
                 f"{t1}, {self.n_control} {t0}). Influence-function SEs, Wald {pct} CIs."),
                 f"{'time':>8}  {t1:>22}  {t0:>22}  {'difference':>24}"]
        fmt = (lambda v, lo, hi: f"{v:6.3f} ({lo:6.3f}, {hi:6.3f})")
        for r in self.table.itertuples():
            lines.append(f"{r.time:>8g}  {fmt(r.treated, r.ci_lower_treated, r.ci_upper_treated):>22}"
                         f"  {fmt(r.control, r.ci_lower_control, r.ci_upper_control):>22}"
                         f"  {fmt(r.difference, r.ci_lower_difference, r.ci_upper_difference):>24}")
        lines.append(f"Difference = {t1} - {t0} ({self.time_unit}); survival = 1 - risk.")
        if not self.riskregression_quirks:
            lines.append("Textbook variant (unique censoring times; tied-event counts in the "
                         "Cox coefficient IF): does not reproduce riskRegression.")
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)


def _models_frame(names, outcome_fit, censoring_fit, ps_model) -> pd.DataFrame:
    rows = []
    for model, fit in (("outcome_cox", outcome_fit), ("censoring_cox", censoring_fit)):
        if fit is not None:
            rows += [{"model": model, "term": t, "estimate": b, "std_error": s}
                     for t, b, s in zip(names, fit.coef, fit.se_model)]
    coefs = ps_model.coefficients
    rows += [{"model": "treatment_glm", "term": t, "estimate": b, "std_error": s}
             for t, b, s in zip(coefs["term"], coefs["estimate"], coefs["std_error"])]
    return pd.DataFrame(rows)


def aipw_survival(cohort: Cohort, times, covariates=None, *, estimator: str = "aipw",
                  conf_level: float = 0.95, riskregression_quirks: bool = True) -> AIPWResult:
    """Doubly robust (AIPW) counterfactual survival of each arm at ``times``, and the
    difference treated - control, with influence-function SEs and Wald CIs.

    Parameters
    ----------
    cohort : Cohort
    times : sequence of float
        Landmarks, in the cohort's time unit (months for the bundled study).
    covariates : sequence of str, optional
        Adjustment set of all three nuisance models. Default: the PS covariates
        (``cohort.roles.covariates``) plus any outcome-model covariates for the two Cox
        models, the PS covariates for the propensity model.
    estimator : {"aipw", "iptw", "gformula"}
        AIPW (augmented IPTW with IPCW, doubly robust); IPTW with IPCW (Horvitz-Thompson,
        weights not normalised); the g-formula (standardised Cox predictions).
    conf_level : float
    riskregression_quirks : bool
        True (default) reproduces riskRegression 2022.11.28: a censoring time shared by m
        patients enters the augmentation m times, and the Cox coefficient IF omits the
        number of tied events. False gives the textbook estimator.

    Returns
    -------
    AIPWResult

    Notes
    -----
    Models, as R: ``coxph(Surv(t, e) ~ A + X)`` (outcome, Efron ties),
    ``coxph(Surv(t, e == 0) ~ A + X)`` (censoring), ``glm(A ~ X, binomial)``;
    ``riskRegression::ate(event, treatment, censor, times, estimator = "AIPTW")`` gives the
    same estimates, SEs and per-patient influence function (tests/test_aipw.py, rtol 1e-6).
    Survival = 1 - risk; the CI of an arm is estimate -/+ z se clipped to [0, 1], of the
    difference clipped to [-1, 1]. AIPW estimates are not range-respecting: a point estimate
    may fall outside [0, 1] (a note says so). Times after the last follow-up time give NaN
    (R: NA). Left limits G(t-), S(t-) are exact (R subtracts 1e-12).

    References
    ----------
    Ozenne BMH, Scheike TH, Staerk L, Gerds TA (2020). On the estimation of average
    treatment effects with right-censored time to event outcome and competing risks.
    Biometrical Journal 62:751-763.
    Bai X, Tsiatis AA, O'Brien SM (2013). Doubly-robust estimators of treatment-specific
    survival distributions in observational studies with stratified sampling. Biometrics
    69:830-839.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {tuple(ESTIMATORS)}, not {estimator!r}")
    tau = np.atleast_1d(np.asarray(times, dtype=float))
    if tau.ndim != 1 or tau.size == 0 or not np.all(np.isfinite(tau)) or np.any(tau < 0):
        raise ValueError(f"times must be finite, >= 0 and at least one: {times!r}")
    ps_covs = tuple(cohort.roles.covariates if covariates is None else covariates)
    out_covs = tuple(cohort.roles.model_covariates if covariates is None else covariates)
    time = timefix(cohort.time)
    status = cohort.event
    treated = cohort.treated
    ps_model = fit_propensity(cohort, ps_covs)
    ps_design = build_design(cohort.data, ps_covs, levels=dict(cohort.levels))
    w_design = ps_design.matrix
    ps = np.asarray(ps_model.ps, float)
    dens = ps * (1 - ps)
    ps_cov = np.linalg.inv((w_design * dens[:, None]).T @ w_design)
    x_design = build_design(cohort.data, out_covs, levels=dict(cohort.levels))
    names = (cohort.roles.treatment,) + x_design.terms[1:]
    z = np.column_stack([treated.astype(float), x_design.matrix[:, 1:]])
    outcome_fit = fit_cox(time, status, z, names=names)
    outcome = cox_predictor(outcome_fit, z, time, status, riskregression=riskregression_quirks)
    censoring_fit = censoring = None
    if (status == 0).any():
        censoring_fit = fit_cox(time, 1 - status, z, names=names)
        censoring = cox_predictor(censoring_fit, z, time, 1 - status,
                                  riskregression=riskregression_quirks)
    core = aipw_core(time, status, treated, z, outcome, censoring, w_design, ps, ps_cov, tau,
                     estimator, riskregression=riskregression_quirks)
    beyond = tau > time.max()
    risk = core.risk.copy()
    risk[:, beyond] = np.nan
    # survival scale: S = 1 - risk, IF(S) = -IF(risk); columns treated, control, difference
    iid = -np.stack([core.iid[:, :, 1], core.iid[:, :, 0],
                     core.iid[:, :, 1] - core.iid[:, :, 0]], axis=-1)
    iid[:, beyond, :] = np.nan
    iid.setflags(write=False)
    table = _table(tau, risk, iid, conf_level, time, status, treated, cohort.labels.time_unit)
    notes = _notes(tau, beyond, risk, ps, treated, time, status, cohort, table,
                   censoring is not None, riskregression_quirks)
    return AIPWResult(
        label=cohort.label, estimator=estimator, estimator_r=ESTIMATORS[estimator],
        times=tau, time_unit=cohort.labels.time_unit,
        arm_labels=(cohort.labels.treated, cohort.labels.control), conf_level=conf_level,
        n=int(time.size), n_treated=int(treated.sum()), n_control=int((treated == 0).sum()),
        riskregression_quirks=riskregression_quirks, table=table, influence=iid,
        patient_id=np.asarray(cohort.ids), models=_models_frame(names, outcome_fit,
                                                                censoring_fit, ps_model),
        covariates=out_covs, notes=tuple(notes))


def _table(tau, risk, iid, conf_level, time, status, treated, time_unit) -> pd.DataFrame:
    z = z_value(conf_level)
    surv = np.stack([1 - risk[1], 1 - risk[0], risk[0] - risk[1]], axis=-1)   # (nt, 3)
    se = np.sqrt(np.sum(iid ** 2, axis=0))
    lo, hi = np.empty_like(surv), np.empty_like(surv)
    # riskRegression clips the risk CI to [0, 1] (difference: [-1, 1]); survival mirrors it
    lo[:, :2], hi[:, :2] = (np.clip(surv[:, :2] - z * se[:, :2], 0, 1),
                            np.clip(surv[:, :2] + z * se[:, :2], 0, 1))
    lo[:, 2], hi[:, 2] = (np.clip(surv[:, 2] - z * se[:, 2], -1, 1),
                          np.clip(surv[:, 2] + z * se[:, 2], -1, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = 2 * norm_sf(np.abs(surv[:, 2]) / se[:, 2])
    cols = {"quantity": "survival", "time": tau, "time_unit": time_unit}
    for j, arm in enumerate(("treated", "control", "difference")):
        cols[arm] = surv[:, j]
    for j, arm in enumerate(("treated", "control", "difference")):
        cols[f"se_{arm}"] = se[:, j]
        cols[f"ci_lower_{arm}"] = lo[:, j]
        cols[f"ci_upper_{arm}"] = hi[:, j]
    cols["p_difference"] = p
    cols["n_at_risk_treated"] = [(time[treated == 1] >= t).sum() for t in tau]
    cols["n_at_risk_control"] = [(time[treated == 0] >= t).sum() for t in tau]
    cols["n_censored_by_time"] = [((status == 0) & (time <= t)).sum() for t in tau]
    return pd.DataFrame(cols)


def _notes(tau, beyond, risk, ps, treated, time, status, cohort, table, censored,
           quirks) -> list:
    notes = []
    unit = cohort.labels.time_unit
    if beyond.any():
        notes.append(f"Times {tau[beyond].tolist()} {unit} are after the last follow-up time "
                     f"({time.max():g}): not estimable (NaN; R gives NA).")
    lo_ps, hi_ps = ps.min(), ps.max()
    near = (ps < POSITIVITY_BOUND) | (ps > 1 - POSITIVITY_BOUND)
    if near.any():
        notes.append(f"Positivity: {int(near.sum())} patients have a propensity score below "
                     f"{POSITIVITY_BOUND} or above {1 - POSITIVITY_BOUND} (range "
                     f"{lo_ps:.3g}-{hi_ps:.3g}); their inverse weights dominate the estimate.")
    w = np.where(treated == 1, 1 / ps, 1 / (1 - ps))
    notes.append(f"Propensity score range {lo_ps:.3g}-{hi_ps:.3g}; largest inverse "
                 f"probability weight {w.max():.3g}.")
    for r in table.itertuples():
        few = min(r.n_at_risk_treated, r.n_at_risk_control)
        if few < FEW_AT_RISK and not np.isnan(r.treated):
            notes.append(f"At {r.time:g} {unit} only {r.n_at_risk_treated} treated and "
                         f"{r.n_at_risk_control} control patients are at risk: the estimate "
                         "is numerically unstable (large censoring weights).")
    for arm, row in (("treated", 1), ("control", 0)):
        bad = tau[(risk[row] < 0) | (risk[row] > 1)]
        if bad.size:
            notes.append(f"The {arm} estimate at {bad.tolist()} {unit} is outside [0, 1]: "
                         "AIPW is not range-respecting; do not report it as a probability.")
    if censored and quirks:
        u = time[status == 0]
        dup = int(u.size - np.unique(u).size)
        if dup:
            notes.append(f"{dup} censoring times are tied; as riskRegression, each copy "
                         "enters the augmentation (riskregression_quirks=True).")
    return notes
