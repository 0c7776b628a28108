"""The reconstruction search's targets and loss (times in tenths of a month).

:func:`search_targets` reads the numeric targets and tolerances from the paper's numbers
(audit readings applied); :class:`SearchState` holds the pseudo-patients during the
annealing (:mod:`causal_hcc.studies.yang2025.reconstruct_anneal`) and scores them against
the Kaplan-Meier landmarks and medians, log-rank P values, follow-up and the Table 3 Cox
models, with the fast estimators of :mod:`causal_hcc.studies.yang2025.reconstruct_fast`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from causal_hcc.studies.yang2025.reconstruct_fast import (TieBlocks, binary_cox_newton,
                                                          cox_efron_fast, km_fast,
                                                          km_from_counts, logrank_fast,
                                                          logrank_from_counts)
from causal_hcc.studies.yang2025.reconstruct_start import milan_within
from causal_hcc.studies.yang2025.targets import CELLS, LOGRANK_BANDS


KM_GROUPS = ("overall", "local", "no_local", "local_oligo", "no_local_oligo",
             "local_non_oligo", "no_local_non_oligo")
LANDMARKS = (12.0, 24.0, 36.0, 60.0)
#: Univariable Cox columns of the search, coded 1 for the level each published HR is for
#: (Table 3 read with the reversed label convention, audit C1).
UNI = ("ecog", "milan_within", "intrahepatic_ccr", "non_oligo", "no_local", "female",
       "age_over_50", "no_hepatitis", "no_cirrhosis", "child_pugh_b", "afp_positive",
       "extrahepatic_over_2cm", "vascular_invasion", "combination")
UNI_KEYS = ("ecog_ps", "intrahepatic_milan", "intrahepatic_ccr", "oligometastasis",
            "local_therapy", "sex", "age", "hepatitis", "cirrhosis", "child_pugh_class",
            "afp", "extrahepatic_max_diameter")
MULTI = UNI[:5]


@dataclass
class SearchTargets:
    """Numeric search targets taken from paper_targets.json (audit readings applied)."""

    km_rate: np.ndarray          # (5 groups, 4 landmarks), fraction
    km_tol: np.ndarray
    km_weight: np.ndarray
    median_groups: tuple
    median_value: np.ndarray
    logrank_target: np.ndarray   # log10 P
    logrank_tol: np.ndarray
    uni_log_hr: np.ndarray
    uni_tol: np.ndarray
    uni_weight: np.ndarray
    multi_log_hr: np.ndarray
    follow_up: tuple = (15.0, 2.5, 72.0)
    ned_max: float = 64.6
    n_deaths: int = 32


def search_targets(targets, params):
    """The search's numeric targets and tolerances from the paper's numbers."""
    surv = targets["survival"]
    arms, oligo = surv["by_local_therapy"], surv["oligometastatic_subgroup"]
    non_oligo = surv["non_oligometastatic_subgroup"]
    rates = [surv["overall"]["os_rate_pct"], arms["local"]["os_rate_pct"],
             arms["no_local"]["os_rate_pct"], oligo["local"]["os_rate_pct"],
             oligo["no_local"]["os_rate_pct"]]
    km_rate = np.array([[r[str(int(m))] / 100.0 for m in LANDMARKS] for r in rates])
    km_tol = np.array([[0.03, 0.03, 0.03, 0.04]] * 3 + [[0.07] * 4] * 2)
    km_weight = np.ones_like(km_rate)
    km_weight[1, 3] = km_weight[3, 3] = params.weight_landmark_tail   # audit A3/A5
    median_groups = ("overall", "no_local", "no_local_oligo", "local_non_oligo",
                     "no_local_non_oligo")
    median_value = np.array([entry["median_os_months"]["value"] for entry in
                             (surv["overall"], arms["no_local"], oligo["no_local"],
                              non_oligo["local"], non_oligo["no_local"])])
    published_p = np.array([arms["log_rank_p"], oligo["log_rank_p"], non_oligo["log_rank_p"]])
    bands = np.log10(np.array(list(LOGRANK_BANDS.values())))
    target_p = np.log10(published_p)
    tol_p = np.minimum(target_p - bands[:, 0], bands[:, 1] - target_p)
    cox = targets["cox_table3"]["variables"]
    uni, uni_tol, uni_w = [], [], []
    for i, key in enumerate(UNI_KEYS):
        row = cox[key]["univariable"]
        uni.append(math.log(row["hr"]))
        if i < 5:      # hard: |log ratio| <= 0.15
            uni_tol.append(0.15)
            uni_w.append(1.0)
        else:          # soft: inside the published CI
            uni_tol.append(0.5 * math.log(row["ci95_upper"] / row["ci95_lower"]))
            uni_w.append(params.weight_soft_cox)
    uni += [params.log_hr_vascular_invasion, params.log_hr_combination_regimen]
    uni_tol += [0.3, 0.3]
    uni_w += [params.weight_soft_cox] * 2
    multi = [math.log(cox[key]["multivariable"]["hr"]) for key in UNI_KEYS[:5]]
    return SearchTargets(km_rate, km_tol, km_weight, median_groups, median_value, target_p, tol_p,
                    np.array(uni), np.array(uni_tol), np.array(uni_w), np.array(multi),
                    n_deaths=int(surv["overall"]["deaths"]),
                    ned_max=float(targets["ned"]["median_cumulative_ned_months"]["range_max"]),
                    follow_up=(surv["median_follow_up_months"]["value"],
                               surv["median_follow_up_months"]["range_min"],
                               surv["median_follow_up_months"]["range_max"]))


def _term(value, target, tol, weight, margin, hinge=1.0):
    """Weighted squared error in tolerance units, plus a steep unweighted penalty beyond
    ``margin`` of the tolerance (a low weight lets a target sit anywhere inside its
    tolerance, never outside)."""
    z = np.abs((value - target) / tol)
    return float(np.sum(weight * z * z + 30.0 * hinge * np.maximum(z - margin, 0.0) ** 2))


#: The 32 covariate patterns of the five-variable model (bit j = covariate j of MULTI).
_PATTERNS = ((np.arange(32)[:, None] >> np.arange(5)) & 1).astype(float)
_PATTERN_SQ = (_PATTERNS[:, :, None] * _PATTERNS[:, None, :]).reshape(32, 25)
_BITS = 2 ** np.arange(5)


class SearchState:
    """State and loss of the annealing search (times in tenths of a month).

    All Cox covariates are binary, so inside the search the Efron risk-set sums are
    pattern counts times exp(pattern . beta): one cumulative sum of the counts per
    configuration, after which each Newton step is a few tiny matrix products.
    """

    def __init__(self, cov, cell_index, tenths, event, tg, params):
        self.cov, self.cell, self.tg, self.params = cov, cell_index, tg, params
        self.tenths, self.event = tenths, event
        local = np.array([CELLS[c][1] for c in cell_index]) == 1
        oligo = np.array([CELLS[c][2] for c in cell_index]) == 1
        self.local, self.oligo = local, oligo
        cell_no = {name: c for c, (name, _, _) in enumerate(CELLS)}
        cols = [np.ones_like(local), local, ~local] + [cell_index == cell_no[g]
                                                       for g in KM_GROUPS[3:]]
        self.groups = np.column_stack(cols)
        self.lr_group = np.column_stack([local, local, local])
        self.lr_subset = np.column_stack([np.ones_like(local), oligo, ~oligo])
        self.count_columns = np.hstack((self.groups, self.lr_subset,
                                        self.lr_group & self.lr_subset,
                                        ~oligo[:, None])).astype(float)
        self.cell_x = np.column_stack([~local, ~oligo]).astype(float)
        self.beta_cell = np.zeros(2)
        self.median_cols = [KM_GROUPS.index(g) for g in tg.median_groups]
        self.cells = [np.flatnonzero(cell_index == c) for c in range(4)]
        self.beta_uni = np.zeros(len(UNI))
        self.beta_multi = np.zeros(len(MULTI))
        # Survival targets as flat vectors: 20 landmarks, 5 medians, 3 log10 P, follow-up
        # (median, min, max), log HR of no local therapy and of non-oligometastatic.
        self.s_target = np.concatenate((tg.km_rate.ravel(), tg.median_value, tg.logrank_target,
                                        tg.follow_up, tg.uni_log_hr[[4, 3]]))
        self.s_tol = np.concatenate((tg.km_tol.ravel(), np.full(5, 1.5), tg.logrank_tol,
                                     [1.0, 0.5, 0.5], [0.15, 0.15]))
        self.s_weight = np.concatenate((tg.km_weight.ravel(), np.ones(13)))
        # Cox targets: the 14 univariable rows (the two cell-defined ones are counted in the
        # survival part, so weight 0 here) and the five-variable model.
        self.c_target = np.concatenate((tg.uni_log_hr, tg.multi_log_hr))
        self.c_tol = np.concatenate((tg.uni_tol, np.full(5, 0.15)))
        self.c_weight = np.concatenate((tg.uni_weight, np.ones(5)))
        self.c_weight[[3, 4]] = 0.0
        self.c_hinge = np.ones_like(self.c_weight)
        self.c_hinge[[3, 4]] = 0.0
        self.design_state = self.design()

    def design(self):
        """(design matrix of ``UNI``, one-hot pattern of ``MULTI``, plausibility loss)."""
        c = self.cov
        milan = milan_within(c, self.params)
        x = np.column_stack([c["ecog"], milan, c["intrahepatic_ccr"], ~self.oligo,
                             ~self.local, c["female"], c["age"] > 50, 1 - c["hepatitis"],
                             1 - c["cirrhosis"], c["child_pugh_b"], c["afp_positive"],
                             c["extrahepatic_max_diameter_cm"] > 2.0,
                             c["vascular_invasion"], c["combination"]]).astype(float)
        onehot = np.zeros((len(x), 32))
        onehot[np.arange(len(x)), (x[:, :5] @ _BITS).astype(np.int64)] = 1.0
        return x, onehot, self._plausibility(milan)

    def blocks(self):
        """Tie blocks of the current times (integer sort key: time, deaths first)."""
        order = np.argsort(self.tenths * 2 + (1 - self.event), kind="stable")
        return TieBlocks(self.tenths / 10.0, self.event, order)

    def survival_loss(self, n_iter=2):
        """Loss of everything that depends on (time, event, cell) only.

        KM landmarks and medians, log-rank P, follow-up, early censoring, and the two
        univariable Cox HRs whose covariate is the cell (local therapy, oligometastasis).
        Swapping (time, event) between two patients of the same cell leaves it unchanged.

        Returns
        -------
        loss : float
        blocks : TieBlocks
        beta : ndarray, shape (2,)
            log HR of no local therapy and of non-oligometastatic (warm start for the next call).
        """
        p = self.params
        b = self.blocks()
        at_risk, deaths = b.block_sums(self.count_columns[b.order])
        g = self.groups.shape[1]
        surv, med = km_from_counts(b, at_risk[:, :g], deaths[:, :g], LANDMARKS)
        _, pv = logrank_from_counts(at_risk[:, g:g + 6], deaths[:, g:g + 6], 3)
        # Efron risk sets at each death, all patients and the two cell-defined covariates.
        k, f = b.death_block, b.efron_frac[:, None]
        a = at_risk[k][:, [0, 2, g + 6]] - f * deaths[k][:, [0, 2, g + 6]]
        beta = binary_cox_newton(a[:, :1], a[:, 1:], self.event @ self.cell_x, self.beta_cell,
                                  n_iter)
        st = b.time
        n = len(st)
        values = np.concatenate((surv[:5].ravel(), np.minimum(med[self.median_cols], 200.0),
                                 np.log10(np.maximum(pv, 1e-300)),
                                 [0.5 * (st[(n - 1) // 2] + st[n // 2]), st[0], st[-1]], beta))
        loss = _term(values, self.s_target, self.s_tol, self.s_weight, p.hinge_margin)
        loss += p.early_censoring_weight * np.count_nonzero((self.event == 0) & (self.tenths < 60))
        return loss, b, beta

    def cox_loss(self, b, design, n_iter=2):
        """Cox and plausibility loss, from warm-started Newton steps; returns the betas too."""
        tg, p = self.tg, self.params
        x, onehot, plaus = design
        csum = b.cumulative(np.hstack((x, onehot))[b.order])
        f = b.efron_frac[:, None]
        a = (csum[-1] - csum[b.d_start]) - f * (csum[b.d_end] - csum[b.d_start])
        k = x.shape[1]
        a1, apat = a[:, :k], a[:, k:]
        atot = apat.sum(axis=1, keepdims=True)
        xd = self.event @ x
        beta_u = binary_cox_newton(atot, a1, xd, self.beta_uni, n_iter)
        beta_m = self.beta_multi
        for _ in range(n_iter):
            w = np.exp(_PATTERNS @ beta_m)
            den = apat @ w
            m1 = (apat @ (w[:, None] * _PATTERNS)) / den[:, None]
            info = ((apat @ (w[:, None] * _PATTERN_SQ)) / den[:, None]).sum(axis=0)
            info = info.reshape(5, 5) - m1.T @ m1
            step = np.linalg.solve(info, xd[:5] - m1.sum(axis=0))
            beta_m = np.clip(beta_m + step, -12.0, 12.0)
        loss = _term(np.concatenate((beta_u, beta_m)), self.c_target, self.c_tol,
                     self.c_weight, p.hinge_margin, self.c_hinge) + plaus
        # The longest NED (64.6 months) needs a treated cCR patient followed that long.
        best = self.tenths[self.local & (x[:, 2] > 0)].max() / 10.0
        loss += 5.0 * max(0.0, tg.ned_max + 0.5 - best) ** 2
        return loss, beta_u, beta_m

    def _plausibility(self, milan):
        """Soft plausibility penalties (see ``diameter_advanced_corr``, ``min_milan_untreated``)."""
        c = self.cov
        short = max(0, self.params.min_milan_untreated - int(milan[~self.local].sum()))
        advanced = ((c["vascular_invasion"] == 1) | (c["lesions"] == 2)).astype(float)
        logd = np.log(c["intrahepatic_max_diameter_cm"])
        logd = logd - logd.mean()
        advanced = advanced - advanced.mean()
        r = (logd @ advanced) / math.sqrt((logd @ logd) * (advanced @ advanced))
        return 10.0 * max(0.0, self.params.diameter_advanced_corr - r) ** 2 + 5.0 * short ** 2

    def check(self, margin=1.0, part="all"):
        """Fully converged fast statistics and whether every hard survival/Cox target is met.

        Parameters
        ----------
        margin : float
            Fraction of each tolerance that counts as met (< 1 asks for a safety margin).
        part : {"all", "survival", "association"}
            "survival": only the targets that depend on (time, event, cell); "association":
            only the Cox targets of covariates and the room for the longest NED.

        Returns
        -------
        ok : bool
        stats : dict
            KM rates, medians, log-rank P, follow-up, and Cox log-HRs (the five hard
            univariable ones and the five-variable model) of the current state.
        """
        tg = self.tg
        time = self.tenths / 10.0
        b = self.blocks()
        surv, med = km_fast(time, self.event, self.groups, LANDMARKS, blocks=b)
        _, pv = logrank_fast(time, self.event, self.lr_group, self.lr_subset, blocks=b)
        x = self.design_state[0]
        uni = np.array([cox_efron_fast(time, self.event, x[:, j], blocks=b)[0][0]
                        for j in range(len(MULTI))])
        multi = cox_efron_fast(time, self.event, x[:, :5], blocks=b)[0]
        bands = np.array(list(LOGRANK_BANDS.values()))
        fu = np.array([np.median(time), time.min(), time.max()])
        treated_ccr = self.local & (x[:, 2] > 0)
        lp, lo, hi = np.log10(pv), np.log10(bands[:, 0]), np.log10(bands[:, 1])
        hard_uni = [3, 4] if part == "survival" else [0, 1, 2, 3, 4]
        assoc_ok = bool(np.all(np.abs(uni - tg.uni_log_hr[:5]) <= 0.15 * margin)
                        and np.all(np.abs(multi - tg.multi_log_hr) <= 0.15 * margin)
                        and time[treated_ccr].max() >= tg.ned_max + 0.5)
        stats = {"surv": surv, "median": med, "logrank_p": pv, "uni": uni, "multi": multi,
                 "follow_up": fu}
        if part == "association":
            return assoc_ok, stats
        ok = bool(np.all(np.abs(surv[:5] - tg.km_rate) <= tg.km_tol * margin)
                  and np.all(np.abs(med[self.median_cols] - tg.median_value) <= 1.5 * margin)
                  and np.all(np.abs(lp - tg.logrank_target) <= tg.logrank_tol * margin)
                  and np.all((lp > lo) & (lp < hi))
                  and np.all(np.abs(uni[hard_uni] - tg.uni_log_hr[hard_uni]) <= 0.15 * margin)
                  and np.all(np.abs(fu - np.array(tg.follow_up))
                             <= np.array([1.0, 0.5, 0.5]) * margin))
        return (ok and assoc_ok if part == "all" else ok), stats
