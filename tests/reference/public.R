# Reference values on four PUBLIC survival data sets (rossi, veteran, pbc, ovarian):
# Kaplan-Meier, log-rank, Cox, propensity score, MatchIt matching, IPTW and weighted KM.
#
# Run from the repository root:   Rscript tests/reference/public.R
#
# ---------------------------------------------------------------------------- inputs
# tests/reference/datasets/<dataset>.csv, the raw public data, read by R and by Python
# (identical bytes on both sides):
#   rossi.csv    lifelines.datasets.load_rossi() written by pandas (432 rows)
#   veteran.csv  survival::veteran as is (137 rows), celltype written as text
#   pbc.csv      survival::pbc as is (418 rows, incl. the 106 with trt NA), sex as text
#   ovarian.csv  survival::ovarian as is (26 rows)
# Original column names and codings, NA written as an empty field, doubles written with
# the shortest of 15/16/17 significant digits that reads back to the same double. If
# veteran/pbc/ovarian.csv is missing this script writes it from the survival package
# first; it then ALWAYS reads the CSV and checks it equals the package object exactly
# (result in versions.txt). Everything below is computed from the CSVs only.
#
# ---------------------------------------------------------------------------- study roles
#   dataset  time     event           treatment A = 1 if   landmarks        PS covariates
#   rossi    week     arrest          fin == 1             13 26 39 52      age race wexp mar paro prio
#   veteran  time     status          trt == 2             90 180 365       celltype karno age prior
#   pbc      time     status == 2     trt == 1             1000 2000 3000   age sex bili albumin edema
#   ovarian  futime   fustat          rx == 2              365 730          age resid.ds ecog.ps
# pbc: rows with trt NA are excluded (312 analysed); status 1 (transplant) is censored.
# Covariate coding (decided on the analysed rows; the model frame is built explicitly):
#   numeric with values only {0, 1}            -> numeric 0/1            (rossi race wexp mar paro)
#   numeric with exactly 2 other values        -> factor, levels ascending, reference smallest
#                                                 (veteran prior 0/10, ovarian resid.ds, ecog.ps 1/2)
#   numeric with > 2 values                    -> linear                 (pbc edema 0/0.5/1 too)
#   text                                       -> factor, levels sort(unique(x), method = "radix")
#                                                 (C-locale order), reference = first
#                                                 (veteran celltype: adeno; pbc sex: f)
# Term names: `term` is R's (A, age, celltypelarge, prior10, sexm, resid.ds2, ...);
# `term_py` is the Python naming: "treatment" for A, "(Intercept)", numeric "age",
# categorical "celltype[large]", "prior[10]", "sex[m]", "resid.ds[2]".
#
# ---------------------------------------------------------------------------- outputs
# tests/reference/public/<dataset>_<what>.csv. Doubles with 17 significant digits, NA as
# "NA". Common columns: dataset; row = 1-based row of the ANALYSED data (pbc: after dropping
# trt NA); id = rossi/veteran/ovarian: 1-based row of the CSV, pbc: its `id` column;
# A = treatment indicator; note = "" or why a value is NA / special.
#
# <d>_km.csv  Kaplan-Meier (survfit, conf.type = "log-log", conf.int 0.95, unweighted,
#   Greenwood variance) per group x landmark.
#   group ("treated" A = 1, "control" A = 0, "overall"), A (1, 0, NA), n (rows in group),
#   events (events in group), landmark, n_risk (at risk at the landmark, summary(times=)),
#   n_event_cum (events up to and including the landmark), surv (S(landmark), right-
#   continuous: events at the landmark included), std_err = summary.survfit's std.err,
#   i.e. the SE of S itself (Greenwood: S * sqrt(sum d / (n (n - d)))), std_err_cumhaz =
#   std_err / surv = the SE of -log S (the scale survfit stores in $std.err),
#   lower, upper (log-log: S^exp(-/+ 1.96 * std_err_cumhaz / log S)),
#   median, median_lower, median_upper (quantile(fit, 0.5): the first time S <= 0.5, with
#   R's rule of averaging when S is exactly 0.5 on an interval; CI from the log-log band;
#   NA when not reached), last_time (largest time in the group), note ("landmark after
#   last follow-up time: value carried forward (extend = TRUE)" and/or "median not reached").
# <d>_logrank.csv  survdiff(Surv ~ A), rho = 0. One row per arm: group, A, n, observed,
#   expected, o_minus_e; chisq, df, p (pchisq upper tail), var_o_minus_e (var[1, 1]) repeated.
# <d>_cox.csv  coxph, Efron ties, model (not robust) SE. model ("crude": A only;
#   "multivariable": A + all PS covariates), term, term_py, coef, hr = exp(coef), se, z,
#   p (Wald, two-sided), hr_lower, hr_upper (exp(coef -/+ qnorm(0.975) se)), n, nevent,
#   loglik_null, loglik (partial log-likelihood at 0 and at the fit), iter.
# <d>_ps.csv  glm(A ~ covariates, binomial), control epsilon = 1e-14, maxit = 100 (as
#   matching.R): row, id, A, ps (fitted probability), lp (linear predictor, logit ps).
# <d>_ps_coef.csv  term, term_py, estimate, se, z, p, converged, iterations, note (glm
#   warnings, e.g. fitted probabilities 0 or 1).
# <d>_match.csv  MatchIt 4.5.1 nearest 1:1 without replacement, caliper = 0.2 with
#   std.caliper = TRUE, distance = lp * 2^26 (MatchIt 4.5.1 truncates distance
#   differences below 1; scaling by a power of two is exact and leaves the caliper in SD
#   units unchanged: caliper = 0.2 * sd(lp) over all analysed rows, n - 1 denominator).
#   m.order left at MatchIt's default, which for a numeric distance is:
#     ATT: "largest"  - treated units are the focal group, processed in DEcreasing lp,
#          each takes the nearest still-unmatched control within the caliper;
#     ATC: "smallest" - MatchIt swaps the labels (controls become focal), processes the
#          CONTROLS in INcreasing lp (the lp is not negated), each takes the nearest
#          still-unmatched treated unit within the caliper.
#   Ties (they matter: rossi has 40 lp values shared by treated and controls; a "first in
#   data order" rule would change 59 of rossi's ATT pairs and 4 of veteran's): MatchIt's
#   nn_matchC_vec sorts ALL units by lp with sort.list (stable: equal lp keep data order),
#   and for the focal unit looks at the nearest still-available non-focal unit to its LEFT
#   and to its RIGHT in that sorted order; it takes the left one when |diff left| <=
#   |diff right| (so equal distances go to the lower lp, and among equal-lp units to the
#   one just before the focal unit in data order), and leaves the focal unit unmatched when
#   the nearest available unit is outside the caliper. Focal units with equal lp are
#   processed in data order (order() is stable). greedy_match() below ports this in plain
#   R with exact arithmetic; versions.txt records that it reproduces MatchIt's pairs.
#   Columns: estimand, row, id, A, lp, weight (MatchIt weight, 1 matched / 0 not),
#   subclass (MatchIt's subclass, integer, NA unmatched), partner_row, partner_id (the
#   matched unit of the other arm), abs_lp_diff (|lp - lp of partner|), caliper_lp
#   (0.2 * sd(lp)), n_pairs (matched pairs for this estimand).
# <d>_effects.csv  Hazard ratio of A: method, estimand, coef, hr, se (cluster/robust SE for
#   psm/iptw, model SE for crude/multivariable), se_model (model-based SE), z, p (from se),
#   hr_lower, hr_upper (from se), n (rows in the fit), nevent (unweighted event count),
#   sum_w (sum of weights), note. Rows:
#     crude / multivariable                 coxph, Efron, model SE
#     psm ATT, psm ATC                      coxph(Surv ~ A, data = match.data(m),
#                                           weights = weights, cluster = subclass)
#     iptw ATE (stabilised: p / e, (1 - p) / (1 - e), p = mean(A))
#     iptw ATT (1, e / (1 - e));  iptw ATC ((1 - e) / e, 1);  iptw ATO (1 - e, e)
#                                           coxph(Surv ~ A, weights = w, robust = TRUE)
#                                           (robust = per-row sandwich)
# <d>_weights.csv  row, id, A, ps, w_ate (stabilised), w_ate_unstabilised (1/e, 1/(1-e)),
#   w_att, w_atc, w_ato.
# <d>_wkm.csv  weighted KM per arm at the landmarks, survfit(weights = w, conf.type =
#   "log-log"): weights ("iptw_ate": stabilised ATE weights, all rows; "psm_att": MatchIt
#   ATT weights, matched rows only), variance ("greenwood": robust = FALSE, the weighted
#   Greenwood formula; "robust": robust = TRUE, infinitesimal jackknife with one cluster per
#   row; with unit weights, as psm_att, it equals Greenwood to rounding), r_default (TRUE for the variance survfit uses when robust is not given: robust for
#   non-integer weights, i.e. iptw_ate; Greenwood for integer weights, i.e. psm_att), group,
#   A, n (rows), sum_w, landmark, n_risk (weighted), n_event_cum (weighted), surv, std_err (SE of S, as in _km.csv),
#   std_err_cumhaz, lower, upper (both variance modes: survfit_confint works with
#   std_err / surv, exactly as in _km.csv), median, median_lower, median_upper, last_time, note.
# versions.txt  R and package versions, the dataset checks, caliper checks, glm warnings.
suppressPackageStartupMessages({library(survival); library(MatchIt)})

data_dir <- "tests/reference/datasets"
out_dir <- "tests/reference/public"
if (!dir.exists(data_dir)) stop("run from the repository root")
dir.create(out_dir, showWarnings = FALSE)
SCALE <- 2^26
Z <- qnorm(0.975)
log_lines <- character()
say <- function(...) {
  s <- paste0(...)
  log_lines <<- c(log_lines, s)
  message(s)
}

# ---------------------------------------------------------------------------- helpers
shortest <- function(x) {
  # Shortest of %.15g / %.16g / %.17g that reads back to the same double.
  out <- sprintf("%.15g", x)
  for (d in 16:17) {
    bad <- !is.na(x) & as.numeric(out) != x
    if (!any(bad)) break
    out[bad] <- sprintf(paste0("%.", d, "g"), x[bad])
  }
  out[is.na(x)] <- ""
  out
}
write_dataset <- function(df, path) {
  for (nm in names(df)) {
    if (is.factor(df[[nm]])) df[[nm]] <- as.character(df[[nm]])
    if (is.double(df[[nm]])) df[[nm]] <- suppressWarnings(shortest(df[[nm]]))
  }
  write.csv(df, path, row.names = FALSE, quote = FALSE, na = "")
}
read_dataset <- function(name) {
  read.csv(file.path(data_dir, paste0(name, ".csv")), stringsAsFactors = FALSE,
           na.strings = "", check.names = FALSE)
}
num17 <- function(df) {
  for (nm in names(df)) {
    if (is.double(df[[nm]])) df[[nm]] <- ifelse(is.na(df[[nm]]), NA,
                                                sprintf("%.17g", df[[nm]]))
  }
  df
}
save_csv <- function(df, name) {
  rownames(df) <- NULL
  write.csv(num17(df), file.path(out_dir, name), row.names = FALSE, na = "NA")
  say(sprintf("wrote %s (%d rows)", name, nrow(df)))
}

# ---------------------------------------------------------------------------- data sets
pkg_data <- list(veteran = survival::veteran, pbc = survival::pbc, ovarian = survival::ovarian)
for (nm in names(pkg_data)) {
  path <- file.path(data_dir, paste0(nm, ".csv"))
  if (!file.exists(path)) {
    write_dataset(pkg_data[[nm]], path)
    say("exported ", path, " from survival ", packageVersion("survival"))
  }
  got <- read_dataset(nm)
  ref <- pkg_data[[nm]]
  for (v in names(ref)) if (is.factor(ref[[v]])) ref[[v]] <- as.character(ref[[v]])
  same <- identical(names(got), names(ref)) && nrow(got) == nrow(ref) &&
    all(vapply(names(ref), function(v) {
      a <- got[[v]]; b <- ref[[v]]
      identical(is.na(a), is.na(b)) &&
        (if (is.character(b)) identical(a, b) else all(as.double(a[!is.na(a)]) ==
                                                         as.double(b[!is.na(b)])))
    }, logical(1)))
  say(sprintf("dataset %s.csv: %d rows, md5 %s, identical to survival::%s: %s", nm,
              nrow(got), unname(tools::md5sum(path)), nm, same))
  if (!same) stop(nm, ".csv differs from the survival package object")
}
rossi_path <- file.path(data_dir, "rossi.csv")
if (!file.exists(rossi_path)) stop("rossi.csv missing: write it with lifelines' load_rossi()")
say(sprintf("dataset rossi.csv: %d rows, md5 %s (lifelines load_rossi)",
            nrow(read_dataset("rossi")), unname(tools::md5sum(rossi_path))))

studies <- list(
  rossi = list(time = "week", event = function(d) d$arrest, treat = function(d) d$fin == 1,
               covs = c("age", "race", "wexp", "mar", "paro", "prio"),
               landmarks = c(13, 26, 39, 52), keep = NULL, id = NULL),
  veteran = list(time = "time", event = function(d) d$status,
                 treat = function(d) d$trt == 2,
                 covs = c("celltype", "karno", "age", "prior"),
                 landmarks = c(90, 180, 365), keep = NULL, id = NULL),
  pbc = list(time = "time", event = function(d) as.integer(d$status == 2),
             treat = function(d) d$trt == 1,
             covs = c("age", "sex", "bili", "albumin", "edema"),
             landmarks = c(1000, 2000, 3000), keep = function(d) !is.na(d$trt), id = "id"),
  ovarian = list(time = "futime", event = function(d) d$fustat,
                 treat = function(d) d$rx == 2,
                 covs = c("age", "resid.ds", "ecog.ps"),
                 landmarks = c(365, 730), keep = NULL, id = NULL)
)

code_covariates <- function(d, covs) {
  # Returns the coded columns and, per covariate, its kind and levels.
  info <- list()
  for (v in covs) {
    x <- d[[v]]
    if (anyNA(x)) stop("covariate ", v, " has NA in the analysed rows")
    if (is.character(x)) {
      lv <- sort(unique(x), method = "radix")
      d[[v]] <- factor(x, levels = lv)
      info[[v]] <- list(kind = "category", levels = lv)
    } else {
      u <- sort(unique(x))
      if (length(u) == 2 && all(u == c(0, 1))) {
        d[[v]] <- as.numeric(x)
        info[[v]] <- list(kind = "binary01", levels = NULL)
      } else if (length(u) == 2) {
        d[[v]] <- factor(x, levels = u, labels = as.character(u))
        info[[v]] <- list(kind = "category", levels = levels(d[[v]]))
      } else {
        d[[v]] <- as.numeric(x)
        info[[v]] <- list(kind = "numeric", levels = NULL)
      }
    }
  }
  list(data = d, info = info)
}
py_name <- function(term, info) {
  out <- term
  for (i in seq_along(term)) {
    t <- term[i]
    if (t == "A") { out[i] <- "treatment"; next }
    if (t == "(Intercept)") next
    for (v in names(info)) {
      if (info[[v]]$kind == "category") {
        hit <- paste0(v, info[[v]]$levels)
        if (t %in% hit) out[i] <- sprintf("%s[%s]", v, info[[v]]$levels[match(t, hit)])
      }
    }
  }
  out
}

# ---------------------------------------------------------------------------- KM helpers
km_block <- function(fit, landmarks, extra) {
  # summary.survfit's std.err is the SE of S in both variance modes: with Greenwood
  # (fit$logse TRUE) it multiplies the stored SE of the cumulative hazard by S; with the
  # robust IJ variance (fit$logse FALSE) the stored SE is already that of S.
  s <- summary(fit, times = landmarks, extend = TRUE)
  q <- quantile(fit, probs = 0.5, conf.int = TRUE)
  last <- max(fit$time)
  cum_events <- vapply(landmarks, function(t) sum(fit$n.event[fit$time <= t]), numeric(1))
  data.frame(extra, landmark = landmarks, n_risk = s$n.risk, n_event_cum = cum_events,
             surv = s$surv, std_err = s$std.err, std_err_cumhaz = s$std.err / s$surv,
             lower = s$lower, upper = s$upper,
             median = unname(q$quantile), median_lower = unname(q$lower),
             median_upper = unname(q$upper), last_time = last,
             note = paste0(ifelse(landmarks > last, paste0("landmark after last follow-up ",
                                                           "time: value carried forward (extend = TRUE)"), ""),
                           ifelse(landmarks > last & is.na(unname(q$quantile)), "; ", ""),
                           ifelse(is.na(unname(q$quantile)), "median not reached", "")),
             stringsAsFactors = FALSE)
}

cox_terms <- function(model, fit, info, note = "") {
  s <- summary(fit)$coefficients
  data.frame(model = model, term = rownames(s), term_py = py_name(rownames(s), info),
             coef = s[, "coef"], hr = exp(s[, "coef"]), se = s[, "se(coef)"], z = s[, "z"],
             p = s[, "Pr(>|z|)"], hr_lower = exp(s[, "coef"] - Z * s[, "se(coef)"]),
             hr_upper = exp(s[, "coef"] + Z * s[, "se(coef)"]), n = fit$n,
             nevent = fit$nevent, loglik_null = fit$loglik[1], loglik = fit$loglik[2],
             iter = fit$iter, note = note, stringsAsFactors = FALSE)
}

effect_row <- function(method, estimand, fit_expr, sum_w) {
  msgs <- character()
  fit <- tryCatch(withCallingHandlers(force(fit_expr),
                                      warning = function(w) {
                                        msgs <<- c(msgs, conditionMessage(w))
                                        invokeRestart("muffleWarning")
                                      }),
                  error = function(e) e)
  if (inherits(fit, "error")) {
    return(data.frame(method = method, estimand = estimand, coef = NA_real_, hr = NA_real_,
                      se = NA_real_, se_model = NA_real_, z = NA_real_, p = NA_real_,
                      hr_lower = NA_real_, hr_upper = NA_real_, n = NA_integer_,
                      nevent = NA_real_, sum_w = sum_w,
                      note = paste("fit failed:", conditionMessage(fit)),
                      stringsAsFactors = FALSE))
  }
  s <- summary(fit)$coefficients
  robust <- "robust se" %in% colnames(s)
  se <- if (robust) s["A", "robust se"] else s["A", "se(coef)"]
  if (!is.finite(s["A", "coef"]) || !is.finite(se) || abs(s["A", "coef"]) > 20)
    msgs <- c(msgs, "non-finite or divergent estimate")
  data.frame(method = method, estimand = estimand, coef = s["A", "coef"],
             hr = exp(s["A", "coef"]), se = se, se_model = s["A", "se(coef)"],
             z = s["A", "coef"] / se, p = s["A", ncol(s)],
             hr_lower = exp(s["A", "coef"] - Z * se), hr_upper = exp(s["A", "coef"] + Z * se),
             n = fit$n, nevent = fit$nevent, sum_w = sum_w,
             note = paste(unique(msgs), collapse = "; "), stringsAsFactors = FALSE)
}

greedy_match <- function(lp, A, estimand, caliper) {
  # Plain-R port of MatchIt 4.5.1's nn_matchC_vec for 1:1 matching without replacement,
  # in exact double arithmetic (no integer truncation): the check that the 2^26 scaling
  # leaves MatchIt's result unchanged. All units are sorted by lp (sort.list, stable);
  # focal units (treated for ATT, controls for ATC) are processed in order(lp, decreasing =
  # estimand == "ATT") (stable); each takes the nearest still-available non-focal unit on
  # its left and on its right in the sorted order, keeps the left one when |diff| is <= the
  # right one's, and stays unmatched when the nearest available is outside the caliper.
  focal <- as.integer(A == (estimand == "ATT"))
  so <- sort.list(lp)
  pos <- integer(length(lp)); pos[so] <- seq_along(so)
  avail <- focal == 0
  fi <- which(focal == 1)
  fi <- fi[order(lp[fi], decreasing = estimand == "ATT")]
  partner <- rep(NA_integer_, length(lp))
  for (i in fi) {
    best <- NA_integer_
    cand <- c(NA_integer_, NA_integer_)
    k <- pos[i] - 1
    while (k >= 1 && !avail[so[k]]) k <- k - 1
    if (k >= 1 && abs(lp[i] - lp[so[k]]) <= caliper) cand[1] <- so[k]
    k <- pos[i] + 1
    while (k <= length(so) && !avail[so[k]]) k <- k + 1
    if (k <= length(so) && abs(lp[i] - lp[so[k]]) <= caliper) cand[2] <- so[k]
    if (!is.na(cand[1]) && !is.na(cand[2])) {
      best <- if (abs(lp[cand[1]] - lp[i]) <= abs(lp[cand[2]] - lp[i])) cand[1] else cand[2]
    } else if (!is.na(cand[1])) best <- cand[1] else if (!is.na(cand[2])) best <- cand[2]
    if (!is.na(best)) {
      partner[i] <- best
      avail[best] <- FALSE
    }
  }
  partner
}

# ---------------------------------------------------------------------------- per data set
key_rows <- list()
for (name in names(studies)) {
  st <- studies[[name]]
  raw <- read_dataset(name)
  raw$id_ <- if (is.null(st$id)) seq_len(nrow(raw)) else raw[[st$id]]
  if (!is.null(st$keep)) raw <- raw[st$keep(raw), , drop = FALSE]
  cc <- code_covariates(raw, st$covs)
  info <- cc$info
  d <- data.frame(row = seq_len(nrow(raw)), id = raw$id_, time = as.numeric(raw[[st$time]]),
                  event = as.numeric(st$event(raw)), A = as.numeric(st$treat(raw)))
  for (v in st$covs) d[[v]] <- cc$data[[v]]
  rownames(d) <- as.character(d$row)
  stopifnot(!anyNA(d$time), !anyNA(d$event), !anyNA(d$A), all(d$event %in% 0:1))
  say(sprintf("[%s] analysed n = %d, treated %d, control %d, events %d; coding: %s",
              name, nrow(d), sum(d$A == 1), sum(d$A == 0), sum(d$event),
              paste(sprintf("%s=%s%s", names(info), vapply(info, `[[`, "", "kind"),
                            vapply(info, function(i) if (is.null(i$levels)) "" else
                              paste0("(", paste(i$levels, collapse = "<"), ")"), "")),
                    collapse = ", ")))
  lm_ <- st$landmarks
  cov_terms <- paste(sapply(st$covs, function(v) if (make.names(v) == v) v else
    paste0("`", v, "`")), collapse = " + ")
  f_ps <- as.formula(paste("A ~", cov_terms))
  f_mv <- as.formula(paste("Surv(time, event) ~ A +", cov_terms))

  # a) KM
  km <- list()
  for (g in c("treated", "control", "overall")) {
    sub <- switch(g, treated = d[d$A == 1, ], control = d[d$A == 0, ], overall = d)
    fit <- survfit(Surv(time, event) ~ 1, data = sub, conf.type = "log-log")
    km[[g]] <- km_block(fit, lm_, data.frame(dataset = name, group = g,
                                            A = switch(g, treated = 1, control = 0, NA),
                                            n = nrow(sub), events = sum(sub$event)))
  }
  save_csv(do.call(rbind, km), sprintf("%s_km.csv", name))

  # b) log-rank
  sd_ <- survdiff(Surv(time, event) ~ A, data = d)
  arm_a <- as.numeric(sub("A=", "", names(sd_$n)))
  save_csv(data.frame(dataset = name, group = ifelse(arm_a == 1, "treated", "control"),
                      A = arm_a, n = as.numeric(sd_$n), observed = sd_$obs,
                      expected = sd_$exp, o_minus_e = sd_$obs - sd_$exp, chisq = sd_$chisq,
                      df = length(sd_$n) - 1,
                      p = pchisq(sd_$chisq, length(sd_$n) - 1, lower.tail = FALSE),
                      var_o_minus_e = sd_$var[1, 1]),
           sprintf("%s_logrank.csv", name))

  # c) Cox crude and multivariable
  fit_crude <- coxph(Surv(time, event) ~ A, data = d, ties = "efron")
  fit_mv <- coxph(f_mv, data = d, ties = "efron")
  save_csv(cbind(dataset = name, rbind(cox_terms("crude", fit_crude, info),
                                       cox_terms("multivariable", fit_mv, info))),
           sprintf("%s_cox.csv", name))

  # d) propensity score
  glm_warn <- character()
  ps_fit <- withCallingHandlers(
    glm(f_ps, data = d, family = binomial(),
        control = glm.control(epsilon = 1e-14, maxit = 100)),
    warning = function(w) {
      glm_warn <<- c(glm_warn, conditionMessage(w))
      invokeRestart("muffleWarning")
    })
  if (length(glm_warn)) say(sprintf("[%s] glm warnings: %s", name,
                                    paste(unique(glm_warn), collapse = "; ")))
  d$lp <- unname(predict(ps_fit, type = "link"))
  d$ps <- unname(fitted(ps_fit))
  say(sprintf("[%s] PS range treated [%.4f, %.4f], control [%.4f, %.4f]", name,
              min(d$ps[d$A == 1]), max(d$ps[d$A == 1]), min(d$ps[d$A == 0]),
              max(d$ps[d$A == 0])))
  save_csv(data.frame(dataset = name, row = d$row, id = d$id, A = d$A, ps = d$ps, lp = d$lp),
           sprintf("%s_ps.csv", name))
  s <- summary(ps_fit)$coefficients
  save_csv(data.frame(dataset = name, term = rownames(s), term_py = py_name(rownames(s), info),
                      estimate = s[, 1], se = s[, 2], z = s[, 3], p = s[, 4],
                      converged = ps_fit$converged, iterations = ps_fit$iter,
                      note = paste(unique(glm_warn), collapse = "; ")),
           sprintf("%s_ps_coef.csv", name))

  # e) matching
  caliper_lp <- 0.2 * sd(d$lp)
  match_rows <- list(); mds <- list()
  for (est in c("ATT", "ATC")) {
    mi_warn <- character()
    m <- withCallingHandlers(
      matchit(f_ps, data = d, method = "nearest", distance = d$lp * SCALE,
              caliper = 0.2, std.caliper = TRUE, estimand = est),
      warning = function(w) {
        mi_warn <<- c(mi_warn, conditionMessage(w))
        invokeRestart("muffleWarning")
      })
    if (length(mi_warn)) say(sprintf("[%s] matchit %s warning: %s", name, est,
                                     paste(unique(mi_warn), collapse = "; ")))
    stopifnot(abs(unname(m$caliper) / SCALE - caliper_lp) < 1e-12 * caliper_lp)
    mm <- m$match.matrix                  # rows: focal units; entries: matched partner
    focal <- rownames(mm)[!is.na(mm[, 1])]
    partner <- mm[!is.na(mm[, 1]), 1]
    prow <- rep(NA_integer_, nrow(d))
    prow[as.integer(focal)] <- as.integer(partner)
    prow[as.integer(partner)] <- as.integer(focal)
    sub_ <- as.integer(as.character(m$subclass))
    diff_ <- ifelse(is.na(prow), NA, abs(d$lp - d$lp[pmax(prow, 1L)]))
    n_pairs <- length(focal)
    # checks: 1:1 pairs, both arms, weights, subclass agree with match.matrix, caliper
    stopifnot(all(d$A[as.integer(focal)] == (est == "ATT")),
              all(d$A[as.integer(partner)] == (est == "ATC")),
              all((m$weights > 0) == !is.na(prow)), all(is.na(sub_) == is.na(prow)),
              all(sub_[as.integer(focal)] == sub_[as.integer(partner)]))
    g <- greedy_match(d$lp, d$A, est, caliper_lp)
    g_prow <- g
    g_prow[g[!is.na(g)]] <- which(!is.na(g))
    same_pairs <- identical(g_prow, prow)
    say(sprintf("[%s] matchit %s: plain-R greedy port (exact arithmetic) gives the same pairs: %s",
                name, est, same_pairs))
    worst <- if (n_pairs) max(diff_, na.rm = TRUE) else NA
    say(sprintf("[%s] matchit %s: %d pairs (of %d treated, %d control); caliper %.6g logit; max |lp diff| %.6g (ratio %.6f): %s",
                name, est, n_pairs, sum(d$A == 1), sum(d$A == 0), caliper_lp, worst,
                worst / caliper_lp,
                if (!n_pairs || worst <= caliper_lp) "within caliper" else "CALIPER VIOLATED"))
    match_rows[[est]] <- data.frame(
      dataset = name, estimand = est, row = d$row, id = d$id, A = d$A, lp = d$lp,
      weight = unname(m$weights), subclass = sub_, partner_row = prow,
      partner_id = d$id[prow], abs_lp_diff = diff_, caliper_lp = caliper_lp,
      n_pairs = n_pairs)
    md <- match.data(m)
    md$subclass <- as.integer(as.character(md$subclass))
    mds[[est]] <- md
  }
  save_csv(do.call(rbind, match_rows), sprintf("%s_match.csv", name))

  # e) IPTW weights and effects
  p <- mean(d$A)
  e <- d$ps
  a <- d$A
  d$w_ate <- ifelse(a == 1, p / e, (1 - p) / (1 - e))
  d$w_ate_unstabilised <- ifelse(a == 1, 1 / e, 1 / (1 - e))
  d$w_att <- ifelse(a == 1, 1, e / (1 - e))
  d$w_atc <- ifelse(a == 1, (1 - e) / e, 1)
  d$w_ato <- ifelse(a == 1, 1 - e, e)
  save_csv(data.frame(dataset = name, row = d$row, id = d$id, A = d$A, ps = d$ps,
                      w_ate = d$w_ate, w_ate_unstabilised = d$w_ate_unstabilised,
                      w_att = d$w_att, w_atc = d$w_atc, w_ato = d$w_ato),
           sprintf("%s_weights.csv", name))
  md_att <- mds$ATT
  md_atc <- mds$ATC
  eff <- rbind(
    effect_row("crude", NA, coxph(Surv(time, event) ~ A, data = d), nrow(d)),
    effect_row("multivariable", NA, coxph(f_mv, data = d), nrow(d)),
    effect_row("psm", "ATT", coxph(Surv(time, event) ~ A, data = md_att, weights = weights,
                                   cluster = subclass), sum(md_att$weights)),
    effect_row("psm", "ATC", coxph(Surv(time, event) ~ A, data = md_atc, weights = weights,
                                   cluster = subclass), sum(md_atc$weights)),
    effect_row("iptw", "ATE", coxph(Surv(time, event) ~ A, data = d, weights = w_ate,
                                    robust = TRUE), sum(d$w_ate)),
    effect_row("iptw", "ATT", coxph(Surv(time, event) ~ A, data = d, weights = w_att,
                                    robust = TRUE), sum(d$w_att)),
    effect_row("iptw", "ATC", coxph(Surv(time, event) ~ A, data = d, weights = w_atc,
                                    robust = TRUE), sum(d$w_atc)),
    effect_row("iptw", "ATO", coxph(Surv(time, event) ~ A, data = d, weights = w_ato,
                                    robust = TRUE), sum(d$w_ato)))
  save_csv(cbind(dataset = name, eff), sprintf("%s_effects.csv", name))
  for (i in seq_len(nrow(eff))) if (nzchar(eff$note[i]))
    say(sprintf("[%s] %s %s note: %s", name, eff$method[i], eff$estimand[i], eff$note[i]))
  key_rows[[name]] <- eff

  # f) weighted KM
  wkm <- list()
  for (wn in c("iptw_ate", "psm_att")) {
    dd <- if (wn == "iptw_ate") transform(d, w = w_ate) else
      transform(md_att, w = weights)
    for (variance in c("greenwood", "robust")) {
      r_default <- (variance == "robust") == any(dd$w != floor(dd$w))
      for (g in c("treated", "control")) {
        sub <- dd[dd$A == (g == "treated"), ]
        blk <- tryCatch({
          fit <- survfit(Surv(time, event) ~ 1, data = sub, weights = w,
                         conf.type = "log-log", robust = (variance == "robust"))
          km_block(fit, lm_, data.frame(dataset = name, weights = wn, variance = variance,
                                        r_default = r_default, group = g,
                                        A = as.numeric(g == "treated"), n = nrow(sub),
                                        sum_w = sum(sub$w)))
        }, error = function(err) data.frame(
          dataset = name, weights = wn, variance = variance, r_default = r_default,
          group = g, A = as.numeric(g == "treated"), n = nrow(sub), sum_w = sum(sub$w),
          landmark = lm_, n_risk = NA_real_, n_event_cum = NA_real_, surv = NA_real_,
          std_err = NA_real_, std_err_cumhaz = NA_real_, lower = NA_real_, upper = NA_real_,
          median = NA_real_, median_lower = NA_real_, median_upper = NA_real_,
          last_time = NA_real_, note = paste("fit failed:", conditionMessage(err))))
        wkm[[paste(wn, variance, g)]] <- blk
      }
    }
  }
  save_csv(do.call(rbind, wkm), sprintf("%s_wkm.csv", name))
}

for (name in names(key_rows)) {
  k <- key_rows[[name]]
  hr <- function(m, e) {
    r <- k[k$method == m & (if (is.na(e)) is.na(k$estimand) else k$estimand %in% e), ]
    sprintf("%.4f (%.4f-%.4f)", r$hr, r$hr_lower, r$hr_upper)
  }
  say(sprintf("[%s] HR crude %s | multivariable %s | PSM ATT %s | PSM ATC %s | IPTW ATE %s",
              name, hr("crude", NA), hr("multivariable", NA), hr("psm", "ATT"),
              hr("psm", "ATC"), hr("iptw", "ATE")))
}

writeLines(c(
  R.version.string,
  paste("survival", packageVersion("survival")),
  paste("MatchIt", packageVersion("MatchIt")),
  paste("lifelines (rossi.csv): written with lifelines.datasets.load_rossi()"),
  "MatchIt distance scaling: lp * 2^26; caliper 0.2 SD (std.caliper = TRUE); default m.order",
  "glm control: epsilon = 1e-14, maxit = 100",
  log_lines,
  paste("generated:", format(Sys.Date()))
), file.path(out_dir, "versions.txt"))
