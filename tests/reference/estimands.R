# Reference values for estimands and estimators not yet in causal_hcc: the ATC (IPTW and
# caliper matching), exact / coarsened exact (CEM) / propensity-subclass matching for ATT, ATC
# and ATE, and doubly robust AIPW counterfactual survival (riskRegression::ate).
#
# Run from the repository root:   Rscript tests/reference/estimands.R
# Writes tests/reference/estimands/*.csv and tests/reference/estimands/versions.txt (and, when
# tests/reference/datasets/veteran.csv does not exist, tests/reference/datasets/veteran_raw.csv).
# The precise AIPTW formulas are also in tests/reference/estimands_AIPW_NOTES.md.
#
# ------------------------------------------------------------------------------------------
# DATA (two datasets; every table has `dataset` and `data_provenance` columns)
#   bundled  causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv (older
#            checkouts: causal_hcc/data/bundled/...). RECONSTRUCTED PSEUDO-DATA: 76 pseudo-
#            patients generated to reproduce a paper's published tables, NOT real patients.
#            id = patient_id, time = os_months (months), event = death,
#            treat = local_therapy (1/0), PS covariates ecog, intrahepatic_ccr,
#            vascular_invasion (all 0/1, numeric).
#   veteran  R survival's `veteran` (public), read from tests/reference/datasets/veteran.csv
#            if present (checked against survival::veteran), otherwise written by this script
#            to tests/reference/datasets/veteran_raw.csv exactly as in the package (celltype
#            as text). id = sprintf("V%03d", row number), time = time (days), event = status,
#            treat = (trt == 2). PS covariates: celltype (factor, levels sorted alphabetically
#            adeno < large < smallcell < squamous, reference adeno), karno, age (numeric),
#            prior (factor of 0/10, reference 0).
#
# MODEL FITS (tight convergence so that Python fits can be compared at 1e-6)
#   PS: glm(treat ~ covariates, binomial, epsilon = 1e-14, maxit = 100) (as matching.R).
#   Every coxph: Efron ties (default), coxph.control(eps = 1e-11, iter.max = 100).
#   HR CIs: exp(coef -/+ qnorm(0.975) * se) with se = the robust (or cluster) SE.
#
# ------------------------------------------------------------------------------------------
# (1) IPTW for the ATC: w = (1 - e) / e for treated, 1 for controls (e = glm PS);
#     coxph(Surv(time, event) ~ treat, weights = w, robust = TRUE): robust sandwich SE
#     clustered on the row (each row its own cluster).
#
# (2) NEAREST-NEIGHBOUR CALIPER MATCHING FOR THE ATC (MatchIt 4.5.1, matchit2nearest and the
#     C++ nn_matchC_vec). distance = logit PS * 2^26 (Debian's MatchIt 4.5.1 truncates
#     distance differences to integers; the power-of-two scaling makes that harmless and leaves
#     the caliper in SD units unchanged), caliper = 0.2, std.caliper = TRUE: caliper =
#     0.2 * sd(distance over all units, n - 1), i.e. 0.2 SD of the logit PS (column
#     caliper_logit in *_cox.csv is the caliper in logit units).
#     * estimand = "ATC" flips the roles: MatchIt sets the focal indicator to (treat == 0), so
#       every CONTROL is a focal unit that looks for one TREATED partner (1:1, no
#       replacement); treated units are the pool.
#     * m.order: when m.order is not given, MatchIt 4.5.1 uses "smallest" for ATC (and
#       "largest" for ATT). So focal controls are processed in INCREASING distance (logit
#       PS), order(distance[focal], decreasing = FALSE), a stable sort: equal scores in data
#       row order.
#     * For each focal control (in that order): all units are sorted by distance ascending
#       (base::sort.list, stable: ties in row order). From the control's sorted position the
#       search goes left (lower positions) and right, skipping focal units and already used
#       treated units; the first available treated unit on each side is the candidate, and a
#       side yields no candidate if that first available unit is outside the caliper
#       (|d_i - d_k| > caliper). With two candidates the left one is taken when
#       |d_left - d_i| <= |d_right - d_i| (ties go to the lower or equal score, and among
#       units with the same score to the one just before the control in row order; a tied
#       treated unit after the control in row order is a "right" candidate). No candidate: the
#       control stays unmatched (weight 0).
#     * Weights: matched controls 1, matched treated 1 (the non-focal weights are rescaled to
#       sum to the number of matched non-focal units, which changes nothing in 1:1 matching),
#       unmatched 0. subclass = pair id (MatchIt numbers pairs by the character sort of the
#       focal row index; labels are arbitrary, compare partitions).
#     * Cox: coxph(Surv ~ treat, data = match.data(m), weights = weights, cluster = subclass)
#       (variance "cluster_subclass", the primary analysis); a robust-by-row variant is
#       also given.
#
# (3) EXACT MATCHING (matchit2exact): strata = distinct combinations of the exact variables
#     (bundled: ecog x intrahepatic_ccr x vascular_invasion, 8 possible patterns; veteran:
#     celltype x prior only, since karno and age are continuous). A stratum is kept when it
#     contains both arms; units of the other strata get subclass NA and weight 0.
#     Subclasses are numbered by order of first appearance (in the arm met first in the data)
#     of the pattern; labels are arbitrary.
#
# (4) CEM (matchit2cem -> cem_matchit, default cutpoints = "sturges"): every NUMERIC covariate
#     is coarsened, factors are matched exactly. For a numeric x over all n rows:
#       n_bins = nclass.Sturges(x) = ceiling(log2(n) + 1)     (bundled n = 76 -> 8;
#                                                               veteran n = 137 -> 9)
#       breaks = seq(min(x), max(x), length.out = n_bins + 1); breaks[1] = -Inf;
#       breaks[n_bins + 1] = +Inf;  bin = findInterval(x, breaks)  (bins are [b_k, b_k+1);
#       a value equal to an interior break goes to the upper bin).
#     A 0/1 variable therefore gets bin 1 (x = 0) or bin n_bins (x = 1): no coarsening in
#     effect (bundled: CEM = exact matching on the three binary covariates). Veteran: karno
#     and age are binned, celltype and prior (factors) exact. The interior breaks are in
#     *_cem_cutpoints.csv, each row's bins in *_cem_bins.csv; this script checks that this
#     rule reproduces MatchIt's strata exactly. Strata = distinct bin combinations, kept when
#     both arms are present (k2k = FALSE).
#
# (5) PROPENSITY SUBCLASSIFICATION (matchit2subclass, subclass = 6, min.n = 1; distance = the
#     glm PS on the probability scale, passed as a numeric vector):
#       probs = seq(0, 1, length.out = 7);  q = quantile(ps[S], probs) (type 7), with
#       S = treated units for ATT, controls for ATC, all units for ATE;
#       raw = findInterval(ps, q, all.inside = TRUE)   (class k: q_k <= ps < q_k+1; ps below
#       q_1 -> 1, ps >= q_7 -> 6). With tied PS values (bundled: 8 distinct values) several
#       q coincide and fewer classes appear (MatchIt warns).
#     If some observed class lacks an arm (any(table(treat, raw) < 1)), MatchIt's
#     subclass_scoot() moves units: classes are renumbered 1..K (K = observed classes, sorted);
#     for each arm in order of first appearance in the data, while some class j0 has no unit
#     of that arm (j0 = the first such class): if j0 == K or (j0 > 1 and
#       sum_{j<j0} max(n_j - 1, 0) / (j0 - j) >= sum_{j>j0} max(n_j - 1, 0) / (j - j0))
#     (n_j = that arm's count in class j), the unit of that arm with the LARGEST ps in the
#     nearest class to the left that has one moves to j0; otherwise the unit with the
#     SMALLEST ps in the nearest class to the right that has one (first in data order among
#     equal ps). Final labels are 1..K in class order. (Edge cases not met here: an arm with
#     exactly K units is first assigned to classes 1..K in data order; an arm with fewer than
#     K units is an error.) subclass_by_hand() below is the executable form (the script stops
#     unless it matches MatchIt). *_subclass_cuts.csv has q and flags whether the scoot
#     changed anything (bundled ATT: yes, one control moves).
#
# WEIGHTS for exact / CEM / subclass (MatchIt weights.subclass), per kept stratum s with
#   n1_s treated and n0_s controls; units not in a kept stratum get 0:
#     ATT: treated 1; controls n1_s / n0_s, then rescaled so that the control weights sum to
#          the number of kept controls.
#     ATC: controls 1; treated n0_s / n1_s, rescaled so the treated weights sum to the number
#          of kept treated.
#     ATE: treated (n1_s + n0_s) / n1_s, controls (n1_s + n0_s) / n0_s, each arm rescaled so
#          its weights sum to its number of kept units.
#   Cox: coxph(Surv ~ treat, weights = w, robust = TRUE) on the rows with w > 0 (robust SE
#   by row, as WeightIt/cobalt users do with stratification weights: variance "robust");
#   a cluster = subclass variant is also given (variance "cluster_subclass").
#   When strata are dropped the estimand is the ATT/ATC/ATE of the retained (common-support)
#   population only: n_dropped_* columns say how many units were lost.
#
# (6) AIPW (riskRegression 2022.11.28, ate(), estimator "AIPTW"; "GFORMULA" and "IPTW" for
#     comparison). Models, all on the full data with A = factor(treat, levels 0:1):
#       event:  coxph(Surv(time, event) ~ A + covariates, x = TRUE, y = TRUE)
#       censor: coxph(Surv(time, event == 0) ~ A + covariates, x = TRUE, y = TRUE)
#       treat:  glm(A ~ covariates, binomial)
#     times: bundled 12, 24, 36 months; veteran 90, 180, 365 days. Because some units are
#     censored before the last time, ate() upgrades "IPTW" to "IPTW,IPCW" and "AIPTW" to
#     "AIPTW,AIPCW" (column estimator_full).
#     For arm a, time tau, n units, F = 1 - S the risk (absolute risk of the event by tau):
#       Psi_i = F(tau | a, X_i)
#             + 1{A_i = a} / pi_a(X_i) * [ 1{T_i <= tau, D_i = 1} / G_i - F(tau | a, X_i)
#                                           + Aug_i(tau) ]
#       Aug_i(tau) = sum_{k: u_k <= min(T_i, tau)} (F(tau|A_i,X_i) - F(u_k|A_i,X_i)) * dM_ik
#                                                  / (G(u_k- | A_i,X_i) * S(u_k- | A_i,X_i))
#       riskRegression estimate = mean_i Psi_i ; survival = 1 - risk.
#     G_i = censoring survival at the last censoring time strictly before min(T_i, tau),
#     u_k = the sorted censoring times WITH DUPLICATES, dM_ik = 1{T_i = u_k, D_i = 0} -
#     exp(Z_i beta_c) dLambda_c0(u_k). Cox predictions S(t|z) = exp(-exp(z beta) Lambda0(t)),
#     Lambda0 = Efron-type baseline hazard (survival's survfit.coxph) with UNcentred
#     exp(z beta). SE = sqrt(sum_j phi_j^2) with phi_j the influence function (sum scale)
#     including the estimation of all three nuisance models; CI = estimate -/+
#     qnorm(0.975) se clipped to [0, 1] (risk) or [-1, 1] (difference), p-value two-sided
#     normal. Every term, both riskRegression quirks that a Python port must mirror (tied
#     censoring times counted once per duplicate in the augmentation; the Cox coefficient IF
#     ignoring the number of tied events) and the IF formulas are in
#     tests/reference/estimands_AIPW_NOTES.md. aipw_by_hand() below is an independent
#     implementation of all of it; the script stops unless it reproduces ate() (estimates,
#     SEs and every per-unit IF) to 1e-10.
#
# OUTPUT (per dataset <d> = bundled | veteran; doubles written with 17 significant digits)
#   <d>_ps.csv              id, treat, lp (logit PS), ps
#   <d>_ps_coef.csv         glm coefficients (tight convergence)
#   <d>_cox.csv             one row per method x estimand x variance: coef, hr, se, se_model,
#                           p, lower, upper, n, nevent, arm counts, weight sums, ESS, notes
#   <d>_rows.csv            per row and method x estimand: subclass and weight
#   <d>_atc_pairs.csv       nearest ATC matching: focal control id -> treated id
#   <d>_cem_cutpoints.csv   CEM rule and interior breaks per numeric variable
#   <d>_cem_bins.csv        each row's CEM bin per variable
#   <d>_subclass_cuts.csv   quantile cut points per estimand, scoot flag
#   <d>_aipw.csv            per estimator x time x arm (treated, control, treated - control):
#                           risk and survival with se, lower, upper (and p for differences)
#   <d>_aipw_iid.csv        per unit influence function (risk scale, sum scale) per
#                           estimator x arm x time (difference IF = treated IF - control IF)
#   <d>_aipw_terms.csv      per unit and time: ps, counterfactual risks, G_i, IPCW weight,
#                           Aug_i, Psi_i per estimator (to debug a port term by term)
#   <d>_aipw_models.csv     coefficients of the three nuisance models
#   <d>_aipw_variants.csv   NOT riskRegression: the same AIPTW with textbook handling of tied
#                           censoring times (unique jump times) and of tied events in the
#                           Cox-coefficient IF, from aipw_by_hand(), for comparison only
#   versions.txt            R and package versions, bundled md5, self-checks
suppressPackageStartupMessages({
  library(survival)
  library(MatchIt)
  library(riskRegression)
  library(data.table)
})

if (!dir.exists("tests/reference")) stop("run from the repository root")
out_dir <- "tests/reference/estimands"
dir.create(out_dir, showWarnings = FALSE)
SCALE <- 2^26
Z975 <- qnorm(0.975)
COX_CTL <- coxph.control(eps = 1e-11, iter.max = 100)
GLM_CTL <- glm.control(epsilon = 1e-14, maxit = 100)
PROV_BUNDLED <- "RECONSTRUCTED PSEUDO-DATA"
PROV_VETERAN <- "PUBLIC: R survival::veteran"

num17 <- function(df) {
  # Full double precision in the CSV (write.csv keeps only 15 significant digits).
  for (nm in names(df)) {
    if (is.double(df[[nm]])) {
      x <- df[[nm]]
      df[[nm]] <- ifelse(is.na(x), NA, ifelse(is.infinite(x), ifelse(x > 0, "Inf", "-Inf"),
                                              sprintf("%.17g", x)))
    }
  }
  df
}
save_csv <- function(df, name) {
  write.csv(num17(df), file.path(out_dir, name), row.names = FALSE, na = "NA")
  invisible(nrow(df))
}
with_provenance <- function(df, ds) {
  cbind(data.frame(dataset = ds$name, data_provenance = ds$provenance,
                   stringsAsFactors = FALSE), df)
}

# ------------------------------------------------------------------------------ datasets
bundled_paths <- c("causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv",
                   "causal_hcc/data/bundled/reconstructed_pseudo_cohort.csv")
bundled_path <- bundled_paths[file.exists(bundled_paths)][1]
if (is.na(bundled_path)) stop("bundled cohort not found")
bun <- read.csv(bundled_path, stringsAsFactors = FALSE)
bundled <- list(
  name = "bundled", provenance = PROV_BUNDLED, time_unit = "months",
  data = data.frame(id = bun$patient_id, time = bun$os_months, event = bun$death,
                    treat = bun$local_therapy, ecog = bun$ecog,
                    intrahepatic_ccr = bun$intrahepatic_ccr,
                    vascular_invasion = bun$vascular_invasion, stringsAsFactors = FALSE),
  covs = c("ecog", "intrahepatic_ccr", "vascular_invasion"),
  exact_covs = c("ecog", "intrahepatic_ccr", "vascular_invasion"),
  landmarks = c(12, 24, 36))

vet_pkg <- survival::veteran
vet_pkg$celltype <- as.character(vet_pkg$celltype)
vet_shared <- "tests/reference/datasets/veteran.csv"
vet_raw <- "tests/reference/datasets/veteran_raw.csv"
if (file.exists(vet_shared)) {
  vet_src <- vet_shared
  vet_in <- read.csv(vet_shared, stringsAsFactors = FALSE)
  cols <- c("trt", "celltype", "time", "status", "karno", "diagtime", "age", "prior")
  if (!all(cols %in% names(vet_in)) || nrow(vet_in) != nrow(vet_pkg) ||
      !isTRUE(all.equal(as.list(vet_in[, cols]), as.list(vet_pkg[, cols]),
                        check.attributes = FALSE))) {
    stop(vet_shared, " differs from survival::veteran")
  }
  vet <- vet_in[, cols]
} else {
  vet_src <- vet_raw
  dir.create(dirname(vet_raw), showWarnings = FALSE)
  write.csv(vet_pkg, vet_raw, row.names = FALSE)
  vet <- vet_pkg
}
veteran <- list(
  name = "veteran", provenance = PROV_VETERAN, time_unit = "days",
  data = data.frame(id = sprintf("V%03d", seq_len(nrow(vet))), time = vet$time,
                    event = vet$status, treat = as.integer(vet$trt == 2),
                    celltype = factor(vet$celltype, levels = sort(unique(vet$celltype))),
                    karno = vet$karno, age = vet$age,
                    prior = factor(vet$prior, levels = c(0, 10)), stringsAsFactors = FALSE),
  covs = c("celltype", "karno", "age", "prior"),
  exact_covs = c("celltype", "prior"),
  landmarks = c(90, 180, 365))

# ------------------------------------------------------------------------------ helpers
ess <- function(w) if (sum(w) > 0) sum(w)^2 / sum(w^2) else NA_real_

cox_row <- function(ds, method, estimand, variance, d, w, subclass = NULL, extra = list(),
                    note = "") {
  # Weighted Cox of treat on the rows with w > 0; never drops a failing fit silently.
  keep <- w > 0
  dd <- d[keep, ]
  dd$w <- w[keep]
  if (!is.null(subclass)) dd$subclass <- as.character(subclass[keep])
  base <- data.frame(method = method, estimand = estimand, variance = variance,
                     coef = NA_real_, hr = NA_real_, se = NA_real_, se_model = NA_real_,
                     z = NA_real_, p = NA_real_, lower = NA_real_, upper = NA_real_,
                     n = sum(keep), nevent = sum(dd$event),
                     n_treated = sum(dd$treat == 1), n_control = sum(dd$treat == 0),
                     sum_w_treated = sum(dd$w[dd$treat == 1]),
                     sum_w_control = sum(dd$w[dd$treat == 0]),
                     ess_treated = ess(dd$w[dd$treat == 1]),
                     ess_control = ess(dd$w[dd$treat == 0]),
                     n_dropped_treated = sum(!keep & d$treat == 1),
                     n_dropped_control = sum(!keep & d$treat == 0),
                     n_subclass = if (is.null(subclass)) NA_integer_ else
                       length(unique(dd$subclass)),
                     caliper_logit = NA_real_, m_order = NA_character_,
                     ties = "efron", note = note, stringsAsFactors = FALSE)
  for (nm in names(extra)) base[[nm]] <- extra[[nm]]
  fitw <- tryCatch(capture_warnings({
    if (variance == "cluster_subclass") {
      coxph(Surv(time, event) ~ treat, data = dd, weights = w, cluster = subclass,
            control = COX_CTL)
    } else {
      coxph(Surv(time, event) ~ treat, data = dd, weights = w, robust = TRUE,
            control = COX_CTL)
    }
  }), error = function(e) e)
  if (inherits(fitw, "condition")) {
    base$note <- trimws(paste(note, "FIT FAILED:", conditionMessage(fitw)))
    return(with_provenance(base, ds))
  }
  fit <- fitw$value
  if (nzchar(fitw$warnings)) base$note <- trimws(paste(note, "coxph warning:", fitw$warnings))
  s <- summary(fit)$coefficients
  base$coef <- s[1, "coef"]
  base$hr <- exp(base$coef)
  base$se <- s[1, "robust se"]
  base$se_model <- s[1, "se(coef)"]
  base$z <- base$coef / base$se
  base$p <- 2 * pnorm(-abs(base$z))
  base$lower <- exp(base$coef - Z975 * base$se)
  base$upper <- exp(base$coef + Z975 * base$se)
  base$n <- fit$n
  base$nevent <- fit$nevent
  with_provenance(base, ds)
}

rows_table <- function(ds, method, estimand, d, w, subclass) {
  with_provenance(data.frame(id = d$id, treat = d$treat, time = d$time, event = d$event,
                             method = method, estimand = estimand,
                             subclass = if (is.null(subclass)) NA_character_ else
                               as.character(subclass),
                             weight = unname(as.numeric(w)), stringsAsFactors = FALSE), ds)
}

capture_warnings <- function(expr) {
  msgs <- character(0)
  val <- withCallingHandlers(expr, warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w))
    invokeRestart("muffleWarning")
  })
  list(value = val, warnings = paste(unique(msgs), collapse = " | "))
}

same_partition <- function(a, b) {
  # TRUE when the two labelings define the same strata (NA = not in any stratum).
  a <- unname(as.character(a))
  b <- unname(as.character(b))
  if (!identical(is.na(a), is.na(b))) return(FALSE)
  k <- !is.na(a)
  all(tapply(as.character(b[k]), as.character(a[k]), function(x) length(unique(x))) == 1) &&
    all(tapply(as.character(a[k]), as.character(b[k]), function(x) length(unique(x))) == 1)
}

# ------------------------------------------------------------------------------ NN by hand
# Independent implementation of MatchIt 4.5.1's greedy 1:1 nearest-neighbour matching without
# replacement (matchit2nearest + nn_matchC_vec) for a scaled distance: the executable form of
# the rule in the header, (2). The script stops unless it reproduces MatchIt's match.matrix.
nn_by_hand <- function(dist, focal, caliper, m.order = c("smallest", "largest")) {
  m.order <- match.arg(m.order)
  n <- length(dist)
  ord_all <- order(dist)                                   # stable: ties in row order
  pos <- integer(n)
  pos[ord_all] <- seq_len(n)
  avail <- !focal
  fidx <- which(focal)
  fo <- fidx[order(dist[fidx], decreasing = m.order == "largest")]
  partner <- setNames(rep(NA_integer_, length(fidx)), fidx)
  adiff <- function(a, b) trunc(abs(dist[a] - dist[b]))    # 4.5.1's integer abs()
  for (i in fo) {
    cand <- c(NA_integer_, NA_integer_)
    for (side in 1:2) {
      k <- pos[i] + if (side == 1) -1 else 1
      while (k >= 1 && k <= n) {
        j <- ord_all[k]
        if (!focal[j] && avail[j]) {
          if (adiff(i, j) <= caliper) cand[side] <- j
          break
        }
        k <- k + if (side == 1) -1 else 1
      }
    }
    ch <- if (!anyNA(cand)) {
      if (adiff(cand[1], i) <= adiff(cand[2], i)) cand[1] else cand[2]
    } else if (!is.na(cand[1])) cand[1] else cand[2]
    if (!is.na(ch)) {
      partner[as.character(i)] <- ch
      avail[ch] <- FALSE
    }
  }
  partner
}

# ------------------------------------------------------------------------------ subclass by hand
# Executable form of the header's (5) and of the stratum weights; the script stops unless
# they reproduce MatchIt's subclasses and weights.
subclass_by_hand <- function(ps, treat, estimand, nsub = 6) {
  idx <- switch(estimand, ATT = treat == 1, ATC = treat == 0, ATE = rep(TRUE, length(ps)))
  q <- quantile(ps[idx], probs = seq(0, 1, length.out = nsub + 1), names = FALSE)
  raw <- findInterval(ps, q, all.inside = TRUE)
  K <- length(unique(raw))
  sub <- match(raw, sort(unique(raw)))                     # consecutive 1..K
  if (any(table(treat, raw) < 1)) {
    for (t in unique(treat)) {
      cnt <- tabulate(sub[treat == t], K)
      while (any(cnt == 0)) {
        j0 <- which(cnt == 0)[1]
        soft <- pmax(cnt - 1, 0)
        left <- if (j0 > 1) sum(soft[1:(j0 - 1)] / (j0 - 1:(j0 - 1))) else 0
        right <- if (j0 < K) sum(soft[(j0 + 1):K] / ((j0 + 1):K - j0)) else 0
        if (j0 == K || (j0 != 1 && left >= right)) {
          src <- max(which(cnt[1:(j0 - 1)] > 0))
          cand <- which(treat == t & sub == src)
          mv <- cand[which(ps[cand] == max(ps[cand]))[1]]
        } else {
          src <- j0 + min(which(cnt[(j0 + 1):K] > 0))
          cand <- which(treat == t & sub == src)
          mv <- cand[which(ps[cand] == min(ps[cand]))[1]]
        }
        sub[mv] <- j0
        cnt[j0] <- 1
        cnt[src] <- cnt[src] - 1
      }
    }
  }
  sub
}
stratum_weights <- function(sub, treat, estimand) {
  # MatchIt weights.subclass; sub = NA for units outside the kept strata
  w <- rep(0, length(treat))
  k <- !is.na(sub)
  n1 <- table(factor(sub[k & treat == 1], levels = unique(sub[k])))
  n0 <- table(factor(sub[k & treat == 0], levels = unique(sub[k])))
  s <- as.character(sub)
  i1 <- k & treat == 1
  i0 <- k & treat == 0
  if (estimand == "ATT") {
    w[i1] <- 1
    w[i0] <- (n1 / n0)[s[i0]]
  } else if (estimand == "ATC") {
    w[i0] <- 1
    w[i1] <- (n0 / n1)[s[i1]]
  } else {
    w[i1] <- ((n1 + n0) / n1)[s[i1]]
    w[i0] <- ((n1 + n0) / n0)[s[i0]]
  }
  w[i1] <- w[i1] * sum(i1) / sum(w[i1])
  w[i0] <- w[i0] * sum(i0) / sum(w[i0])
  w
}

# ------------------------------------------------------------------------------ AIPW by hand
# Independent implementation of riskRegression::ate (2022.11.28) for a binary treatment with
# a Cox outcome model, a logistic PS and a Cox censoring model, estimators GFORMULA,
# IPTW,IPCW and AIPTW,AIPCW, and the influence function of iidATE (method.iid = 1).
# riskRegression = TRUE mirrors its two quirks (duplicated censoring jump times; Cox
# coefficient IF without the number of tied events); FALSE gives the textbook variant.
cox_parts <- function(fit, time, status, riskRegression = TRUE) {
  Z <- fit$x
  b <- coef(fit)
  eXb <- drop(exp(Z %*% b))                                  # uncentred
  n <- length(time)
  tk <- sort(unique(time[status == 1]))                      # distinct event times
  atrisk <- outer(time, tk, ">=")
  S0 <- colSums(eXb * atrisk)
  E <- crossprod(atrisk * eXb, Z) / S0                       # S1 / S0, one row per tk
  Se <- colSums(eXb * outer(time, tk, "==") * (status == 1))
  dk <- colSums(outer(time, tk, "==") * (status == 1))
  efron <- fit$method == "efron"
  lam <- vapply(seq_along(tk), function(k) {                 # survfit.coxph / agsurv5
    if (efron && dk[k] > 1) sum(1 / (S0[k] - (0:(dk[k] - 1)) / dk[k] * Se[k])) else
      dk[k] / S0[k]
  }, 0)
  mult <- if (riskRegression) rep(1, length(tk)) else dk     # the IFbeta_cpp quirk
  score <- t(vapply(seq_len(n), function(i) {
    k <- tk <= time[i]
    ev <- if (status[i] == 1) Z[i, ] - E[tk == time[i], ] else 0 * Z[i, ]
    ev - eXb[i] * (Z[i, ] * sum(mult[k] / S0[k]) -
                     colSums(E[k, , drop = FALSE] * mult[k] / S0[k]))
  }, numeric(ncol(Z))))
  if (ncol(Z) == 1) score <- t(score)
  list(Z = Z, b = b, eXb = eXb, time = time, status = status, tk = tk, S0 = S0, E = E,
       lam = lam, IFb = score %*% fit$var, tmax = max(time))
}
cumhaz0 <- function(cp, t) {
  vapply(t, function(s) if (s > cp$tmax) NA_real_ else sum(cp$lam[cp$tk <= s]), 0)
}
haz0 <- function(cp, t) {
  vapply(t, function(s) { k <- which(cp$tk == s); if (length(k)) cp$lam[k] else 0 }, 0)
}
IF_cumhaz0 <- function(cp, tau) {
  a <- cp$status * (cp$time <= tau) / cp$S0[match(cp$time, cp$tk)]
  a[is.na(a)] <- 0
  ratio <- cp$lam / cp$S0
  b <- cp$eXb * vapply(cp$time, function(Ti) sum(ratio[cp$tk <= min(Ti, tau)]), 0)
  k <- cp$tk <= tau
  a - b - drop(cp$IFb %*% colSums(cp$E[k, , drop = FALSE] * cp$lam[k]))
}
IF_haz0 <- function(cp, u) {
  k <- which(cp$tk == u)
  if (!length(k)) return(rep(0, length(cp$time)))
  cp$status * (cp$time == u) / cp$S0[k] - cp$eXb * (u <= cp$time) * cp$lam[k] / cp$S0[k] -
    drop(cp$IFb %*% (cp$E[k, ] * cp$lam[k]))
}
surv_pred <- function(cp, Znew, t) exp(-outer(drop(exp(Znew %*% cp$b)), cumhaz0(cp, t)))
avg_IF_surv <- function(cp, Znew, t, f) {
  # (1/nrow(Znew)) sum_i f[i, m] IF_j[S(t_m | Z_i)]  -> n x length(t)
  exb <- drop(exp(Znew %*% cp$b))
  S <- surv_pred(cp, Znew, t)
  L <- cumhaz0(cp, t)
  vapply(seq_along(t), function(m) {
    w <- f[, m] * S[, m] * exb
    -(IF_cumhaz0(cp, t[m]) * sum(w) + L[m] * drop(cp$IFb %*% colSums(Znew * w))) / nrow(Znew)
  }, numeric(length(cp$time)))
}
avg_IF_haz <- function(cp, Znew, u, f) {
  exb <- drop(exp(Znew %*% cp$b))
  l <- haz0(cp, u)
  vapply(seq_along(u), function(m) {
    w <- f[, m] * exb
    (IF_haz0(cp, u[m]) * sum(w) + l[m] * drop(cp$IFb %*% colSums(Znew * w))) / nrow(Znew)
  }, numeric(length(cp$time)))
}
avg_IF_surv_diag <- function(cp, Znew, t, f) {
  # (1/n) sum_i f[i] IF_j[S(t_i | Z_i)] (one time per unit)
  exb <- drop(exp(Znew %*% cp$b))
  L <- cumhaz0(cp, t)
  S <- exp(-exb * L)
  out <- rep(0, length(cp$time))
  for (i in seq_along(t)) {
    if (f[i] == 0 || t[i] < min(cp$tk)) next
    out <- out - f[i] * S[i] * exb[i] * (IF_cumhaz0(cp, t[i]) + L[i] * drop(cp$IFb %*% Znew[i, ]))
  }
  out / length(t)
}

aipw_by_hand <- function(time, status, A, fit_event, fit_censor, fit_ps, times,
                         riskRegression = TRUE, tol = 1e-12) {
  n <- length(time)
  nt <- length(times)
  ce <- cox_parts(fit_event, time, status, riskRegression)
  cc <- cox_parts(fit_censor, time, 1 - status, riskRegression)
  Wm <- model.matrix(fit_ps)
  p1 <- unname(fitted(fit_ps))
  IFg <- (Wm * (A - p1)) %*% solve(crossprod(Wm * sqrt(p1 * (1 - p1))))
  Zo <- ce$Z
  Zc <- cc$Z
  acol <- which(colnames(Zo) == "A1")
  ecz <- drop(exp(Zc %*% cc$b))
  u <- sort(time[status == 0])                           # censoring jump times
  if (!riskRegression) u <- unique(u)
  idxG <- sapply(times, function(ta) findInterval(pmin(time, ta) - tol, u))
  idxG <- matrix(idxG, nrow = n)
  K <- max(idxG)
  u <- u[seq_len(K)]
  nJ <- vapply(times, function(ta) sum(u <= ta), 0)
  Y <- matrix(sapply(times, function(ta) (time <= ta) * (status == 1)), nrow = n)
  Cc <- 1 - matrix(sapply(times, function(ta) (time <= ta) * (status == 0)), nrow = n)
  Gtime <- matrix(c(0, u)[idxG + 1], nrow = n)
  Gt <- matrix(exp(-ecz * cumhaz0(cc, Gtime)), nrow = n)
  WC <- Cc / Gt
  Fo_tau <- 1 - surv_pred(ce, Zo, times)
  Fo_u <- 1 - surv_pred(ce, Zo, u)
  So_u <- surv_pred(ce, Zo, u - tol)
  G_u <- exp(-outer(ecz, cumhaz0(cc, if (K > 1) c(0, u[-K]) else 0)))
  dM <- outer(time, u, "==") * (status == 0) - outer(ecz, haz0(cc, u))
  before <- outer(time, u, ">=")
  integ <- ifelse(before, dM / (G_u * So_u), 0)
  aug <- sapply(seq_len(nt), function(m) {
    k <- seq_len(nJ[m])
    if (!length(k)) return(rep(0, n))
    rowSums((Fo_tau[, m] - Fo_u[, k, drop = FALSE]) * integ[, k, drop = FALSE])
  })
  aug <- matrix(aug, nrow = n)
  est <- list(); iid <- list(); psi_out <- list(); Fcf <- list()
  for (a in c(0, 1)) {
    Za <- Zo
    Za[, acol] <- a
    Fa <- 1 - surv_pred(ce, Za, times)
    Fcf[[as.character(a)]] <- Fa
    pa <- if (a == 1) p1 else 1 - p1
    Ia <- as.numeric(A == a)
    w <- Ia / pa
    dpa <- (if (a == 1) 1 else -1) * Wm * (p1 * (1 - p1))    # d pa_i / d gamma
    IFpa_avg <- function(f) drop(IFg %*% colSums(dpa * f)) / n
    for (e in c("GFORMULA", "IPTW", "AIPTW")) {
      psi <- switch(e, GFORMULA = Fa, IPTW = w * Y * WC, AIPTW = Fa + w * (Y * WC - Fa + aug))
      mu <- colMeans(psi)
      phi <- sweep(psi, 2, mu) / n
      if (e %in% c("GFORMULA", "AIPTW")) {
        f <- if (e == "GFORMULA") matrix(1, n, nt) else matrix(1 - w, n, nt)
        phi <- phi - avg_IF_surv(ce, Za, times, f)
      }
      if (e %in% c("IPTW", "AIPTW")) {
        for (m in seq_len(nt)) {
          r <- if (e == "IPTW") Y[, m] * WC[, m] else Y[, m] * WC[, m] - Fa[, m] + aug[, m]
          phi[, m] <- phi[, m] + IFpa_avg(-r * Ia / pa^2)
          phi[, m] <- phi[, m] + avg_IF_surv_diag(cc, Zc, Gtime[, m],
                                                  -w * Y[, m] * Cc[, m] / Gt[, m]^2)
        }
      }
      if (e == "AIPTW") {
        for (m in seq_len(nt)) {
          k <- seq_len(nJ[m])
          if (!length(k)) next
          cum <- vapply(seq_len(n), function(i) sum(integ[i, u <= min(time[i], times[m])]), 0)
          phi[, m] <- phi[, m] - avg_IF_surv(ce, Zo, times[m], matrix(w * cum, n, 1))
          phi[, m] <- phi[, m] - rowSums(avg_IF_surv(ce, Zo, u[k], -w * integ[, k, drop = FALSE]))
          dF <- Fo_tau[, m] - Fo_u[, k, drop = FALSE]
          bk <- before[, k, drop = FALSE]
          dMk <- dM[, k, drop = FALSE]
          Sk <- So_u[, k, drop = FALSE]
          Gk <- G_u[, k, drop = FALSE]
          phi[, m] <- phi[, m] + rowSums(avg_IF_surv(ce, Zo, u[k] - tol,
                                                     -w * ifelse(bk, dF * dMk / (Sk^2 * Gk), 0)))
          phi[, m] <- phi[, m] + rowSums(avg_IF_surv(cc, Zc, u[k] - tol,
                                                     -w * ifelse(bk, dF * dMk / (Sk * Gk^2), 0)))
          phi[, m] <- phi[, m] + rowSums(avg_IF_haz(cc, Zc, u[k],
                                                    -w * ifelse(bk, dF / (Sk * Gk), 0)))
        }
      }
      est[[length(est) + 1]] <- data.frame(estimator = e, treatment = a, time = times,
                                           estimate = mu, se = sqrt(colSums(phi^2)))
      iid[[paste(e, a)]] <- phi
      psi_out[[paste(e, a)]] <- psi
    }
  }
  list(est = do.call(rbind, est), iid = iid, psi = psi_out, Fcf = Fcf,
       terms = list(p1 = p1, Y = Y, Gt = Gt, Gtime = Gtime, WC = WC, aug = aug, u = u))
}

# ------------------------------------------------------------------------------ per dataset
checks <- character(0)
row_counts <- list()

run_dataset <- function(ds) {
  d <- ds$data
  rownames(d) <- d$id
  nm <- ds$name
  rhs <- paste(ds$covs, collapse = " + ")
  f_ps <- as.formula(paste("treat ~", rhs))

  # ---- 1. propensity score
  ps_fit <- glm(f_ps, family = binomial(), data = d, control = GLM_CTL)
  d$lp <- unname(predict(ps_fit, type = "link"))
  d$ps <- unname(fitted(ps_fit))
  row_counts[[paste0(nm, "_ps.csv")]] <<- save_csv(
    with_provenance(data.frame(id = d$id, treat = d$treat, lp = d$lp, ps = d$ps), ds),
    paste0(nm, "_ps.csv"))
  s <- summary(ps_fit)$coefficients
  row_counts[[paste0(nm, "_ps_coef.csv")]] <<- save_csv(with_provenance(data.frame(
    term = rownames(s), estimate = s[, 1], std_error = s[, 2], z_value = s[, 3],
    p_value = s[, 4], converged = ps_fit$converged, iterations = ps_fit$iter), ds),
    paste0(nm, "_ps_coef.csv"))

  cox_rows <- list()
  unit_rows <- list()

  # ---- 2a. IPTW for the ATC
  w_atc <- ifelse(d$treat == 1, (1 - d$ps) / d$ps, 1)
  cox_rows[["iptw"]] <- cox_row(ds, "iptw", "ATC", "robust", d, w_atc,
                                note = "w = (1-e)/e treated, 1 control")
  unit_rows[["iptw"]] <- rows_table(ds, "iptw", "ATC", d, w_atc, NULL)

  # ---- 2b. nearest-neighbour caliper matching for the ATC
  mcw <- capture_warnings(matchit(f_ps, data = d, method = "nearest", distance = d$lp * SCALE,
                                  estimand = "ATC", caliper = 0.2, std.caliper = TRUE))
  m <- mcw$value
  cal_logit <- unname(m$caliper) / SCALE
  stopifnot(abs(cal_logit - 0.2 * sd(d$lp)) < 1e-12 * max(1, cal_logit))
  sub_nn <- m$subclass
  nn_h <- nn_by_hand(d$lp * SCALE, d$treat == 0, unname(m$caliper), "smallest")
  if (!identical(unname(nn_h), unname(match(m$match.matrix[, 1], d$id)))) {
    stop(nm, ": nearest ATC rule not reproduced")
  }
  checks <<- c(checks, sprintf(
    "%s: nearest ATC (m.order smallest, caliper %.6f logit) reproduced by nn_by_hand: TRUE (%d pairs)",
    nm, cal_logit, sum(!is.na(nn_h))))
  extra <- list(caliper_logit = cal_logit, m_order = "smallest (MatchIt default for ATC)")
  for (v in c("cluster_subclass", "robust")) {
    cox_rows[[paste("nn", v)]] <- cox_row(ds, "nearest_caliper", "ATC", v, d,
                                          unname(m$weights), sub_nn, extra, mcw$warnings)
  }
  unit_rows[["nn"]] <- rows_table(ds, "nearest_caliper", "ATC", d, m$weights, sub_nn)
  mm <- m$match.matrix
  row_counts[[paste0(nm, "_atc_pairs.csv")]] <<- save_csv(with_provenance(data.frame(
    control_id = rownames(mm), treated_id = unname(mm[, 1]),
    control_lp = d[rownames(mm), "lp"],
    treated_lp = d$lp[match(mm[, 1], d$id)],
    processing_order = match(rownames(mm), rownames(mm)[order(d[rownames(mm), "lp"])]),
    stringsAsFactors = FALSE), ds), paste0(nm, "_atc_pairs.csv"))

  # ---- 3-5. exact, CEM, subclass for ATT / ATC / ATE
  f_exact <- as.formula(paste("treat ~", paste(ds$exact_covs, collapse = " + ")))
  cuts_rows <- list()
  for (E in c("ATT", "ATC", "ATE")) {
    mx <- capture_warnings(matchit(f_exact, data = d, method = "exact", estimand = E))
    me <- capture_warnings(matchit(f_ps, data = d, method = "cem", estimand = E))
    msb <- capture_warnings(matchit(f_ps, data = d, method = "subclass", distance = d$ps,
                                    estimand = E, subclass = 6))
    for (res in list(list("exact", mx), list("cem", me), list("subclass", msb))) {
      meth <- res[[1]]
      mo <- res[[2]]$value
      note <- res[[2]]$warnings
      for (v in c("robust", "cluster_subclass")) {
        cox_rows[[paste(meth, E, v)]] <- cox_row(ds, meth, E, v, d, unname(mo$weights),
                                                 mo$subclass, list(), note)
      }
      unit_rows[[paste(meth, E)]] <- rows_table(ds, meth, E, d, mo$weights, mo$subclass)
    }
    # hand rules for subclasses and weights must reproduce MatchIt
    sb <- subclass_by_hand(d$ps, d$treat, E)
    if (!same_partition(sb, msb$value$subclass)) stop(nm, " ", E, ": subclass rule not reproduced")
    for (mo in list(mx$value, me$value, msb$value)) {
      wh <- stratum_weights(as.character(mo$subclass), d$treat, E)
      if (max(abs(wh - unname(mo$weights))) > 1e-12) stop(nm, " ", E, ": weights not reproduced")
    }
    # subclass cut points and whether subclass_scoot changed the raw classes
    q <- msb$value$q.cut
    raw <- findInterval(d$ps, q, all.inside = TRUE)
    cuts_rows[[E]] <- data.frame(estimand = E, basis = switch(E, ATT = "treated",
                                                              ATC = "control", ATE = "all"),
                                 k = seq_along(q) - 1, prob = seq(0, 1, length.out = 7),
                                 q_cut = unname(q),
                                 n_subclasses = nlevels(droplevels(msb$value$subclass)),
                                 scoot_changed = !same_partition(raw, msb$value$subclass),
                                 warning = msb$warnings, stringsAsFactors = FALSE)
    # CEM: reproduce the Sturges rule and compare with MatchIt's strata
    bins <- d[, ds$covs, drop = FALSE]
    for (v in ds$covs) {
      if (is.numeric(d[[v]])) {
        nb <- nclass.Sturges(d[[v]])
        br <- seq(min(d[[v]]), max(d[[v]]), length.out = nb + 1)
        br[c(1, nb + 1)] <- c(-Inf, Inf)
        bins[[v]] <- findInterval(d[[v]], br)
      } else {
        bins[[v]] <- as.character(d[[v]])
      }
    }
    pattern <- do.call(paste, c(bins, sep = "|"))
    both <- intersect(pattern[d$treat == 1], pattern[d$treat == 0])
    mine <- ifelse(pattern %in% both, pattern, NA)
    if (!same_partition(mine, me$value$subclass)) stop(nm, " ", E, ": CEM rule not reproduced")
    # exact: same rule without coarsening
    xpat <- do.call(paste, c(lapply(ds$exact_covs, function(v) as.character(d[[v]])), sep = "|"))
    xboth <- intersect(xpat[d$treat == 1], xpat[d$treat == 0])
    if (!same_partition(ifelse(xpat %in% xboth, xpat, NA), mx$value$subclass)) {
      stop(nm, " ", E, ": exact strata not reproduced")
    }
  }
  checks <<- c(checks, sprintf(paste(
    "%s: CEM Sturges rule, exact strata, subclass quantiles + scoot and stratum weights",
    "reproduce MatchIt (ATT, ATC, ATE): TRUE"), nm))
  row_counts[[paste0(nm, "_subclass_cuts.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, cuts_rows), ds), paste0(nm, "_subclass_cuts.csv"))

  # CEM cut points and bins
  cp_rows <- list()
  bin_df <- data.frame(id = d$id, treat = d$treat, stringsAsFactors = FALSE)
  for (v in ds$covs) {
    if (is.numeric(d[[v]])) {
      nb <- nclass.Sturges(d[[v]])
      br <- seq(min(d[[v]]), max(d[[v]]), length.out = nb + 1)
      cp_rows[[v]] <- data.frame(variable = v, type = "numeric", rule = "sturges",
                                 n = nrow(d), n_bins = nb, min = min(d[[v]]), max = max(d[[v]]),
                                 break_index = seq_len(nb - 1), interior_break = br[2:nb],
                                 stringsAsFactors = FALSE)
      br[c(1, nb + 1)] <- c(-Inf, Inf)
      bin_df[[v]] <- findInterval(d[[v]], br)
    } else {
      cp_rows[[v]] <- data.frame(variable = v, type = "factor", rule = "exact (no coarsening)",
                                 n = nrow(d), n_bins = nlevels(d[[v]]), min = NA_real_,
                                 max = NA_real_, break_index = NA_integer_,
                                 interior_break = NA_real_, stringsAsFactors = FALSE)
      bin_df[[v]] <- as.character(d[[v]])
    }
  }
  row_counts[[paste0(nm, "_cem_cutpoints.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, cp_rows), ds), paste0(nm, "_cem_cutpoints.csv"))
  row_counts[[paste0(nm, "_cem_bins.csv")]] <<- save_csv(with_provenance(bin_df, ds),
                                                         paste0(nm, "_cem_bins.csv"))

  cox_tab <- do.call(rbind, unname(cox_rows))
  rownames(cox_tab) <- NULL
  row_counts[[paste0(nm, "_cox.csv")]] <<- save_csv(cox_tab, paste0(nm, "_cox.csv"))
  unit_tab <- do.call(rbind, unname(unit_rows))
  rownames(unit_tab) <- NULL
  row_counts[[paste0(nm, "_rows.csv")]] <<- save_csv(unit_tab, paste0(nm, "_rows.csv"))

  # ---- 6. AIPW (riskRegression::ate)
  da <- d[, c("id", "time", "event", "treat", ds$covs)]
  da$A <- factor(da$treat, levels = c(0, 1))
  f_ev <- as.formula(paste("Surv(time, event) ~ A +", rhs))
  f_ce <- as.formula(paste("Surv(time, event == 0) ~ A +", rhs))
  f_tr <- as.formula(paste("A ~", rhs))
  fit_ev <- coxph(f_ev, data = da, x = TRUE, y = TRUE, control = COX_CTL)
  fit_ce <- coxph(f_ce, data = da, x = TRUE, y = TRUE, control = COX_CTL)
  fit_tr <- glm(f_tr, family = binomial(), data = da, control = GLM_CTL)
  times <- ds$landmarks
  a <- ate(event = fit_ev, treatment = fit_tr, censor = fit_ce, data = da, times = times,
           cause = 1, estimator = c("GFORMULA", "IPTW", "AIPTW"), se = TRUE, iid = TRUE,
           verbose = FALSE)
  full <- setNames(attr(a$estimator, "full"), a$estimator)
  nrisk <- as.data.frame(attr(a$eval.times, "n.at.risk"))
  ncens <- setNames(attr(a$eval.times, "n.censored"), times)

  mr <- as.data.frame(a$meanRisk)
  dr <- as.data.frame(a$diffRisk)
  out <- list()
  for (i in seq_len(nrow(mr))) {
    r <- mr[i, ]
    arm <- if (r$treatment == "1") "treated" else "control"
    nr <- nrisk[as.character(nrisk[[1]]) == as.character(r$treatment), as.character(r$time)]
    out[[length(out) + 1]] <- data.frame(
      estimator = r$estimator, estimator_full = full[[r$estimator]], time = r$time,
      arm = arm, risk = r$estimate, risk_se = r$se, risk_lower = r$lower,
      risk_upper = r$upper, survival = 1 - r$estimate, survival_se = r$se,
      survival_lower = 1 - r$upper, survival_upper = 1 - r$lower, p = NA_real_,
      n = nrow(da), n_at_risk = nr, n_censored_by_time = ncens[[as.character(r$time)]],
      stringsAsFactors = FALSE)
  }
  for (i in seq_len(nrow(dr))) {
    r <- dr[i, ]
    stopifnot(r$A == "0", r$B == "1")                  # estimate = risk(1) - risk(0)
    out[[length(out) + 1]] <- data.frame(
      estimator = r$estimator, estimator_full = full[[r$estimator]], time = r$time,
      arm = "treated - control", risk = r$estimate, risk_se = r$se, risk_lower = r$lower,
      risk_upper = r$upper, survival = -r$estimate, survival_se = r$se,
      survival_lower = -r$upper, survival_upper = -r$lower, p = r$p.value,
      n = nrow(da), n_at_risk = NA_real_, n_censored_by_time = ncens[[as.character(r$time)]],
      stringsAsFactors = FALSE)
  }
  aipw <- do.call(rbind, out)
  aipw$note <- ifelse(aipw$arm != "treated - control" & (aipw$risk < 0 | aipw$risk > 1),
                      "point estimate outside [0, 1] (AIPW is not range-respecting)", "")
  aipw$ci_rule <- ifelse(aipw$arm == "treated - control",
                         "risk diff -/+ 1.96 se clipped to [-1, 1]; survival = -risk",
                         "risk -/+ 1.96 se clipped to [0, 1]; survival = 1 - risk")
  row_counts[[paste0(nm, "_aipw.csv")]] <<- save_csv(with_provenance(aipw, ds),
                                                     paste0(nm, "_aipw.csv"))

  iid_rows <- list()
  for (e in c("GFORMULA", "IPTW", "AIPTW")) for (tr in c("0", "1")) for (m in seq_along(times)) {
    iid_rows[[length(iid_rows) + 1]] <- data.frame(
      id = da$id, estimator = e, arm = if (tr == "1") "treated" else "control",
      time = times[m], iid_risk = a$iid[[e]][[tr]][, m], stringsAsFactors = FALSE)
  }
  row_counts[[paste0(nm, "_aipw_iid.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, iid_rows), ds), paste0(nm, "_aipw_iid.csv"))

  # independent implementation: must reproduce ate() exactly
  h <- aipw_by_hand(da$time, da$event, da$treat, fit_ev, fit_ce, fit_tr, times)
  cmp <- merge(mr[, c("estimator", "treatment", "time", "estimate", "se")], h$est,
               by = c("estimator", "treatment", "time"))
  d_est <- max(abs(cmp$estimate.x - cmp$estimate.y))
  d_se <- max(abs(cmp$se.x - cmp$se.y))
  d_iid <- max(sapply(names(h$iid), function(k) {
    p <- strsplit(k, " ")[[1]]
    max(abs(a$iid[[p[1]]][[p[2]]] - h$iid[[k]]))
  }))
  if (max(d_est, d_se, d_iid) > 1e-10) stop(nm, ": aipw_by_hand does not reproduce ate()")
  checks <<- c(checks, sprintf(
    "%s: aipw_by_hand vs riskRegression::ate max |diff|: estimate %.2g, se %.2g, iid %.2g",
    nm, d_est, d_se, d_iid))

  term_rows <- list()
  for (m in seq_along(times)) {
    term_rows[[m]] <- data.frame(
      id = da$id, time_landmark = times[m], treat = da$treat, time = da$time,
      event = da$event, ps_treated = h$terms$p1,
      risk_cf_treated = h$Fcf[["1"]][, m], risk_cf_control = h$Fcf[["0"]][, m],
      Y = h$terms$Y[, m], G_time = h$terms$Gtime[, m], G = h$terms$Gt[, m],
      ipcw_weight = h$terms$WC[, m], aug = h$terms$aug[, m],
      psi_aiptw_treated = h$psi[["AIPTW 1"]][, m], psi_aiptw_control = h$psi[["AIPTW 0"]][, m],
      psi_iptw_treated = h$psi[["IPTW 1"]][, m], psi_iptw_control = h$psi[["IPTW 0"]][, m],
      stringsAsFactors = FALSE)
  }
  row_counts[[paste0(nm, "_aipw_terms.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, term_rows), ds), paste0(nm, "_aipw_terms.csv"))

  mod_rows <- list()
  for (mname in c("outcome_cox", "censoring_cox", "treatment_glm")) {
    fit <- switch(mname, outcome_cox = fit_ev, censoring_cox = fit_ce, treatment_glm = fit_tr)
    cf <- coef(fit)
    se <- sqrt(diag(vcov(fit)))
    mod_rows[[mname]] <- data.frame(
      model = mname, term = names(cf), estimate = unname(cf), std_error = unname(se),
      loglik = if (mname == "treatment_glm") as.numeric(logLik(fit)) else fit$loglik[2],
      iterations = fit$iter, n = if (mname == "treatment_glm") nobs(fit) else fit$n,
      nevent = if (mname == "treatment_glm") NA_real_ else fit$nevent,
      stringsAsFactors = FALSE)
  }
  row_counts[[paste0(nm, "_aipw_models.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, mod_rows), ds), paste0(nm, "_aipw_models.csv"))

  # textbook variant (not riskRegression) for comparison
  hv <- aipw_by_hand(da$time, da$event, da$treat, fit_ev, fit_ce, fit_tr, times,
                     riskRegression = FALSE)
  var_rows <- list()
  for (e in c("GFORMULA", "IPTW", "AIPTW")) for (m in seq_along(times)) {
    i1 <- hv$iid[[paste(e, 1)]][, m]
    i0 <- hv$iid[[paste(e, 0)]][, m]
    e1 <- hv$est$estimate[hv$est$estimator == e & hv$est$treatment == 1][m]
    e0 <- hv$est$estimate[hv$est$estimator == e & hv$est$treatment == 0][m]
    rr <- mr$estimate[mr$estimator == e & mr$treatment == "1" & mr$time == times[m]]
    rc <- mr$estimate[mr$estimator == e & mr$treatment == "0" & mr$time == times[m]]
    var_rows[[length(var_rows) + 1]] <- data.frame(
      variant = "textbook: unique censoring jump times, IFbeta with tied-event counts",
      estimator = e, time = times[m],
      arm = c("treated", "control", "treated - control"),
      risk = c(e1, e0, e1 - e0),
      risk_se = c(sqrt(sum(i1^2)), sqrt(sum(i0^2)), sqrt(sum((i1 - i0)^2))),
      riskRegression_risk = c(rr, rc, rr - rc), stringsAsFactors = FALSE)
  }
  row_counts[[paste0(nm, "_aipw_variants.csv")]] <<- save_csv(
    with_provenance(do.call(rbind, var_rows), ds), paste0(nm, "_aipw_variants.csv"))
  invisible(NULL)
}

run_dataset(bundled)
run_dataset(veteran)

writeLines(c(
  R.version.string,
  paste("survival", packageVersion("survival")),
  paste("MatchIt", packageVersion("MatchIt")),
  paste("riskRegression", packageVersion("riskRegression")),
  paste("data.table", packageVersion("data.table")),
  paste("prodlim", packageVersion("prodlim")),
  paste("bundled cohort:", bundled_path, "(RECONSTRUCTED PSEUDO-DATA)"),
  paste("bundled cohort md5:", unname(tools::md5sum(bundled_path))),
  paste("veteran source:", vet_src),
  "glm control: epsilon = 1e-14, maxit = 100; coxph control: eps = 1e-11, iter.max = 100, Efron ties",
  "MatchIt nearest: distance = logit PS * 2^26 (MatchIt 4.5.1 integer-truncation workaround)",
  checks,
  paste("rows:", paste(sprintf("%s=%d", names(row_counts), unlist(row_counts)), collapse = ", ")),
  paste("generated:", format(Sys.Date()))
), file.path(out_dir, "versions.txt"))
