# Reference values for causal_hcc.propensity, .matching, .weighting and .balance.
#
# Run from the repository root:   Rscript tests/reference/matching.R
# Writes CSV fixtures into tests/reference/ (the Python suite reads them; it needs no R):
#   matching_lalonde.csv        MatchIt's lalonde data, row names as `id`
#   matching_veteran.csv        survival's veteran data, id "V001".., treated = (trt == 2)
#   matching_ties.csv           76 synthetic patients, three binary confounders with the
#                               paper's margins (PS with 8 values: MatchIt's tie rules)
#   matching_ps.csv             glm propensity score and linear predictor per model and row
#   matching_ps_coef.csv        glm coefficients, SE, z, p and Wald CI (confint.default)
#   matching_config.csv         one row per MatchIt run: options, caliper (logit units), n
#   matching_rows.csv           per run and row: subclass and MatchIt weight
#   matching_pairs.csv          per run: treated id, control id, slot (match.matrix)
#   matching_summary.csv        summary(m, un = TRUE): means, SMD, variance ratio, eCDF max
#   matching_weights.csv        IPTW/ATT/overlap weights by formula (lalonde), with trimming
#                               and truncation
#   matching_balance.csv        weighted means (hand formula and survey::svymean), SMD, variance
#                               ratio, KS and ESS by hand formula, per weighting scheme
#   versions_matching.txt       R and package versions, and the vignette check
#
# MatchIt 4.5.1 (Debian's r-cran-matchit) truncates distance differences to integers in its
# nearest-neighbour C++ code (fixed upstream in 4.5.4): differences below 1 become 0, calipers
# never bind and the nearest control is misidentified. Every matchit() call below therefore
# passes distance = score * 2^26 (a power of two, so the scaling is exact). With
# std.caliper = TRUE the caliper is in SDs of the distance; scaling the distance scales its SD
# by the same factor, so caliper = 0.2 still means 0.2 SD of the logit PS. Differences are
# then truncated at 2^-26 logit units only (near-ties closer than that could differ).
# A second 4.5.1 bug is NOT worked around (it cannot be from R): in rounds 2..k of k:1
# matching, the "already matched to this treated unit" check compares 0-based with 1-based
# row indices, so with replacement the same control is matched twice, and without
# replacement the control in the data row after an already-matched one is skipped. Affected
# here: lalonde_nn_ratio2_replace and ties_nn_cal02_ratio2 (tests/test_matching.py ports the
# C++ loop to show these bugs are the only differences from causal_hcc).
suppressPackageStartupMessages({
  library(MatchIt)
  library(survival)
  library(survey)
  library(splines)
})

out_dir <- "tests/reference"
if (!dir.exists(out_dir)) stop("run from the repository root")
SCALE <- 2^26

num17 <- function(df) {
  # Full double precision in the CSV (write.csv keeps only 15 significant digits).
  for (nm in names(df)) {
    if (is.double(df[[nm]])) df[[nm]] <- ifelse(is.na(df[[nm]]), NA,
                                                sprintf("%.17g", df[[nm]]))
  }
  df
}
save_csv <- function(df, name) {
  write.csv(num17(df), file.path(out_dir, name), row.names = FALSE, na = "NA")
}

# ---------------------------------------------------------------- data sets
data("lalonde", package = "MatchIt")
lal <- lalonde
lal$race <- as.character(lal$race)          # levels black < hispan < white (reference black)
lal <- data.frame(id = rownames(lalonde), lal, stringsAsFactors = FALSE)
rownames(lal) <- lal$id
save_csv(lal, "matching_lalonde.csv")

vet <- survival::veteran
vet <- data.frame(id = sprintf("V%03d", seq_len(nrow(vet))), vet)
vet$treated <- as.integer(vet$trt == 2)     # 2 = test chemotherapy
vet$celltype <- as.character(vet$celltype)  # factor order squamous, smallcell, adeno, large
save_csv(vet, "matching_veteran.csv")
vet$celltype <- factor(vet$celltype, levels = c("squamous", "smallcell", "adeno", "large"))
rownames(vet) <- vet$id

# Heavy ties, as in the bundled cohort: three binary confounders with the paper's margins
# (treated 40: ECOG 0 18, cCR 29, vascular invasion 5; control 36: 8, 2, 17), so the PS takes
# at most 8 values and matching depends entirely on MatchIt's tie rules.
set.seed(20250601)
arm <- function(n, ecog0, ccr, vi) {
  data.frame(ecog = sample(rep(c(0L, 1L), c(ecog0, n - ecog0))),
             intrahepatic_ccr = sample(rep(c(1L, 0L), c(ccr, n - ccr))),
             vascular_invasion = sample(rep(c(1L, 0L), c(vi, n - vi))))
}
ties <- rbind(cbind(local_therapy = 1L, arm(40, 18, 29, 5)),
              cbind(local_therapy = 0L, arm(36, 8, 2, 17)))
ties <- ties[sample(nrow(ties)), ]                   # interleave the arms
ties <- data.frame(patient_id = sprintf("S%02d", seq_len(nrow(ties))), ties)
rownames(ties) <- ties$patient_id
save_csv(ties, "matching_ties.csv")

bundled_path <- "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"
has_bundled <- file.exists(bundled_path)
if (has_bundled) {
  bun <- read.csv(bundled_path, stringsAsFactors = FALSE)
  rownames(bun) <- bun$patient_id
}

# ---------------------------------------------------------------- propensity models (glm)
f_lal <- treat ~ age + educ + race + married + nodegree + re74 + re75
f_lal_ns <- treat ~ ns(age, df = 3) + educ + race + married + nodegree + re74 + re75 +
  married:nodegree
f_vet <- treated ~ celltype + karno + diagtime + age + prior
f_ties <- local_therapy ~ ecog + intrahepatic_ccr + vascular_invasion
models <- list(
  lalonde_main = list(formula = f_lal, data = lal),
  lalonde_spline = list(formula = f_lal_ns, data = lal),
  veteran_main = list(formula = f_vet, data = vet),
  ties_main = list(formula = f_ties, data = ties)
)
if (has_bundled) {
  models$bundled_main <- list(
    formula = local_therapy ~ ecog + intrahepatic_ccr + vascular_invasion, data = bun)
}

ps_rows <- list()
coef_rows <- list()
fits <- list()
default_gap <- list()
for (nm in names(models)) {
  # glm is unpenalised maximum likelihood, as our PS fit. R's default convergence
  # (epsilon = 1e-8) stops about 1e-7 (relative) short of the maximum on lalonde and reports
  # SEs from the previous iteration's weights; epsilon = 1e-14 converges to full precision,
  # which is what the Python fit (IRLS to 1e-10) is compared with at rtol 1e-6.
  fit <- glm(models[[nm]]$formula, data = models[[nm]]$data, family = binomial(),
             control = glm.control(epsilon = 1e-14, maxit = 100))
  fit_default <- glm(models[[nm]]$formula, data = models[[nm]]$data, family = binomial())
  default_gap[[nm]] <- max(abs(coef(fit_default) / coef(fit) - 1))
  fits[[nm]] <- fit
  d <- models[[nm]]$data
  ps_rows[[nm]] <- data.frame(model = nm, id = rownames(d), treat = fit$y,
                              ps = unname(fitted(fit)),
                              logit_ps = unname(predict(fit, type = "link")))
  s <- summary(fit)$coefficients
  ci <- confint.default(fit)
  coef_rows[[nm]] <- data.frame(model = nm, term = rownames(s), estimate = s[, 1],
                                std_error = s[, 2], z_value = s[, 3], p_value = s[, 4],
                                ci_lower = ci[, 1], ci_upper = ci[, 2],
                                converged = fit$converged, iterations = fit$iter)
}
save_csv(do.call(rbind, ps_rows), "matching_ps.csv")
save_csv(do.call(rbind, coef_rows), "matching_ps_coef.csv")

# ---------------------------------------------------------------- MatchIt nearest neighbour
config_rows <- list()
row_rows <- list()
pair_rows <- list()
summary_rows <- list()
runs <- list()

run_match <- function(config, model, score = c("logit", "ps"), ratio = 1, replace = FALSE,
                      caliper = NULL, m.order = NULL, exact = NULL) {
  score <- match.arg(score)
  fit <- fits[[model]]
  d <- models[[model]]$data
  s <- if (score == "logit") predict(fit, type = "link") else fitted(fit)
  args <- list(formula = models[[model]]$formula, data = d, method = "nearest",
               distance = unname(s) * SCALE, ratio = ratio, replace = replace)
  if (!is.null(caliper)) {
    args$caliper <- caliper
    args$std.caliper <- TRUE
  }
  if (!is.null(m.order)) args$m.order <- m.order
  if (!is.null(exact)) args$exact <- exact
  m <- do.call(matchit, args)
  runs[[config]] <<- m
  treat <- fit$y
  cal_abs <- if (is.null(caliper)) NA_real_ else unname(m$caliper) / SCALE
  mm <- m$match.matrix
  config_rows[[config]] <<- data.frame(
    config = config, model = model, score = score, ratio = ratio, replace = replace,
    m_order = if (is.null(m.order)) "default (largest)" else m.order,
    exact = if (is.null(exact)) "" else paste(all.vars(exact), collapse = "+"),
    caliper_sd = if (is.null(caliper)) NA_real_ else caliper,
    caliper_abs = cal_abs, score_sd = sd(s),
    n_matched_treated = sum(!is.na(mm[, 1])),
    n_matched_control = sum(m$weights > 0 & treat == 0))
  sub <- if (is.null(m$subclass)) NA_integer_ else as.integer(m$subclass)
  row_rows[[config]] <<- data.frame(config = config, id = rownames(d), treat = treat,
                                    subclass = sub, weight = unname(m$weights))
  pr <- list()
  for (j in seq_len(ncol(mm))) {
    pr[[j]] <- data.frame(config = config, treated_id = rownames(mm), slot = j,
                          control_id = unname(mm[, j]))
  }
  pair_rows[[config]] <<- do.call(rbind, pr)
  sm <- summary(m, un = TRUE)
  for (sample in c("all", "matched")) {
    tab <- if (sample == "all") sm$sum.all else sm$sum.matched
    tab <- tab[rownames(tab) != "distance", , drop = FALSE]
    summary_rows[[paste(config, sample)]] <<- data.frame(
      config = config, sample = sample, variable = rownames(tab),
      means_treated = tab[, "Means Treated"], means_control = tab[, "Means Control"],
      smd = tab[, "Std. Mean Diff."], var_ratio = tab[, "Var. Ratio"],
      ecdf_max = tab[, "eCDF Max"])
  }
  invisible(m)
}

run_match("lalonde_nn_cal02", "lalonde_main", caliper = 0.2)
run_match("lalonde_nn_cal005", "lalonde_main", caliper = 0.05)
run_match("lalonde_nn_nocal", "lalonde_main")
run_match("lalonde_nn_cal02_ratio2", "lalonde_main", ratio = 2, caliper = 0.2)
run_match("lalonde_nn_cal02_ratio3", "lalonde_main", ratio = 3, caliper = 0.2)
run_match("lalonde_nn_cal02_replace", "lalonde_main", replace = TRUE, caliper = 0.2)
run_match("lalonde_nn_ratio2_replace", "lalonde_main", ratio = 2, replace = TRUE)
run_match("lalonde_nn_cal02_smallest", "lalonde_main", caliper = 0.2, m.order = "smallest")
run_match("lalonde_nn_cal02_data", "lalonde_main", caliper = 0.2, m.order = "data")
run_match("lalonde_nn_cal02_exact_married", "lalonde_main", caliper = 0.2, exact = ~married)
run_match("lalonde_spline_nn_cal02", "lalonde_spline", caliper = 0.2)
# The vignette's configuration: distance = the PS itself (not its logit), no caliper.
run_match("lalonde_vignette_ps", "lalonde_main", score = "ps")
run_match("veteran_nn_cal02", "veteran_main", caliper = 0.2)
run_match("veteran_nn_cal01_ratio2", "veteran_main", ratio = 2, caliper = 0.1)
run_match("veteran_nn_cal02_replace", "veteran_main", replace = TRUE, caliper = 0.2)
run_match("veteran_nn_nocal", "veteran_main")
run_match("ties_nn_cal02", "ties_main", caliper = 0.2)
run_match("ties_nn_nocal", "ties_main")
run_match("ties_nn_cal02_ratio2", "ties_main", ratio = 2, caliper = 0.2)
run_match("ties_nn_cal02_replace", "ties_main", replace = TRUE, caliper = 0.2)
run_match("ties_nn_cal02_smallest", "ties_main", caliper = 0.2, m.order = "smallest")
run_match("ties_nn_cal02_data", "ties_main", caliper = 0.2, m.order = "data")
if (has_bundled) {
  run_match("bundled_nn_cal02", "bundled_main", caliper = 0.2)
  run_match("bundled_nn_cal02_ratio2", "bundled_main", ratio = 2, caliper = 0.2)
  run_match("bundled_nn_cal02_replace", "bundled_main", replace = TRUE, caliper = 0.2)
}

# What 4.5.1 gives with its defaults (distance = "glm", unscaled): the bug, for the record.
m_buggy <- matchit(f_lal, data = lal, method = "nearest", distance = "glm")
buggy_age <- summary(m_buggy)$sum.matched["age", "Std. Mean Diff."]
vignette_age <- summary(runs$lalonde_vignette_ps)$sum.matched["age", "Std. Mean Diff."]

save_csv(do.call(rbind, config_rows), "matching_config.csv")
save_csv(do.call(rbind, row_rows), "matching_rows.csv")
save_csv(do.call(rbind, pair_rows), "matching_pairs.csv")
save_csv(do.call(rbind, summary_rows), "matching_summary.csv")

# ---------------------------------------------------------------- weights by formula
ps <- unname(fitted(fits$lalonde_main))
tr <- lal$treat
p_treat <- mean(tr)
q7 <- function(x, p) unname(quantile(x, p, type = 7))   # numpy's default 'linear'
truncate_by_arm <- function(w, lo = 0.01, hi = 0.99) {
  for (a in 0:1) {
    i <- tr == a
    w[i] <- pmin(pmax(w[i], q7(w[i], lo)), q7(w[i], hi))
  }
  w
}
keep <- ps >= 0.1 & ps <= 0.9                          # Crump-style trimming at 0.1-0.9
w <- data.frame(
  id = lal$id, treat = tr, ps = ps,
  ate = ifelse(tr == 1, 1 / ps, 1 / (1 - ps)),
  ate_stabilized = ifelse(tr == 1, p_treat / ps, (1 - p_treat) / (1 - ps)),
  att = ifelse(tr == 1, 1, ps / (1 - ps)),
  att_stabilized = ifelse(tr == 1, 1, ps / (1 - ps) * (1 - p_treat) / p_treat),
  ato = ifelse(tr == 1, 1 - ps, ps))
w$ate_truncated_1_99 <- truncate_by_arm(w$ate)
w$ate_trimmed_01_09 <- ifelse(keep, w$ate, 0)
p_keep <- mean(tr[keep])
w$ate_stabilized_trimmed_01_09 <- ifelse(keep, ifelse(tr == 1, p_keep / ps,
                                                      (1 - p_keep) / (1 - ps)), 0)
save_csv(w, "matching_weights.csv")

# ---------------------------------------------------------------- balance by hand formula
X <- model.matrix(~ age + educ + race + married + nodegree + re74 + re75 - 1, data = lal)
X <- X[, c("age", "educ", "raceblack", "racehispan", "racewhite", "married", "nodegree",
           "re74", "re75")]
is_bin <- apply(X, 2, function(x) all(x %in% c(0, 1)))
wmean <- function(x, w) sum(w * x) / sum(w)
wvar_unbiased <- function(x, w) {
  m <- wmean(x, w)
  sum(w * (x - m)^2) / (sum(w) - sum(w^2) / sum(w))
}
wks <- function(x, t, w) {
  # Largest gap between the arms' weighted empirical CDFs, over the distinct values.
  u <- sort(unique(x))
  f1 <- sapply(u, function(v) sum(w[t == 1 & x <= v]) / sum(w[t == 1]))
  f0 <- sapply(u, function(v) sum(w[t == 0 & x <= v]) / sum(w[t == 0]))
  max(abs(f1 - f0))
}
ess <- function(w) sum(w)^2 / sum(w^2)
unadj_var <- function(x, a, bin) {
  xa <- x[tr == a]
  if (bin) mean(xa) * (1 - mean(xa)) else var(xa)
}

schemes <- list(
  unadjusted_pooled = list(w = rep(1, nrow(lal)), denom = "pooled"),
  unadjusted_treated = list(w = rep(1, nrow(lal)), denom = "treated"),
  ate = list(w = w$ate, denom = "pooled"),
  ate_stabilized = list(w = w$ate_stabilized, denom = "pooled"),
  att = list(w = w$att, denom = "treated"),
  att_stabilized = list(w = w$att_stabilized, denom = "treated"),
  ato = list(w = w$ato, denom = "pooled"),
  ate_trimmed_01_09 = list(w = w$ate_trimmed_01_09, denom = "pooled"),
  matched_lalonde_nn_cal02 = list(w = unname(runs$lalonde_nn_cal02$weights), denom = "treated"),
  matched_lalonde_nn_cal02_ratio2 = list(w = unname(runs$lalonde_nn_cal02_ratio2$weights),
                                         denom = "treated"),
  matched_lalonde_nn_cal02_replace = list(w = unname(runs$lalonde_nn_cal02_replace$weights),
                                          denom = "treated")
)
bal_rows <- list()
for (sc in names(schemes)) {
  ww <- schemes[[sc]]$w
  # survey's weighted means as an independent check of the hand formula (zero weights:
  # those rows are dropped first, as survey needs positive weights).
  pos <- ww > 0
  des <- svydesign(ids = ~1, weights = ~ww, data = data.frame(X, treat = tr, ww = ww)[pos, ])
  svy <- svyby(as.formula(paste("~", paste(colnames(X), collapse = "+"))), ~treat, des,
               svymean)
  for (v in colnames(X)) {
    x <- X[, v]
    v1 <- unadj_var(x, 1, is_bin[v])
    v0 <- unadj_var(x, 0, is_bin[v])
    sd_denom <- if (schemes[[sc]]$denom == "pooled") sqrt((v1 + v0) / 2) else sqrt(v1)
    m1 <- wmean(x[tr == 1 & pos], ww[tr == 1 & pos])
    m0 <- wmean(x[tr == 0 & pos], ww[tr == 0 & pos])
    vr <- if (is_bin[v]) NA_real_ else
      wvar_unbiased(x[tr == 1 & pos], ww[tr == 1 & pos]) /
      wvar_unbiased(x[tr == 0 & pos], ww[tr == 0 & pos])
    bal_rows[[paste(sc, v)]] <- data.frame(
      scheme = sc, variable = v, binary = is_bin[v], denominator = schemes[[sc]]$denom,
      mean_treated = m1, mean_control = m0,
      svymean_treated = svy[svy$treat == 1, v], svymean_control = svy[svy$treat == 0, v],
      sd_denominator = sd_denom, smd = (m1 - m0) / sd_denom, var_ratio = vr,
      ks = wks(x[pos], tr[pos], ww[pos]),
      ess_treated = ess(ww[tr == 1]), ess_control = ess(ww[tr == 0]))
  }
}
save_csv(do.call(rbind, bal_rows), "matching_balance.csv")

# ---------------------------------------------------------------- versions
writeLines(c(
  R.version.string,
  paste("MatchIt", packageVersion("MatchIt")),
  paste("survival", packageVersion("survival")),
  paste("survey", packageVersion("survey")),
  paste("splines", packageVersion("splines")),
  paste("glm control: epsilon = 1e-14, maxit = 100; max relative coefficient gap to R's",
        "default control (epsilon = 1e-8):",
        paste(sprintf("%s %.2g", names(default_gap), unlist(default_gap)), collapse = ", ")),
  paste("distance scaling for MatchIt 4.5.1:", "2^26"),
  sprintf("vignette check (distance = ps * 2^26, no caliper): age SMD after matching %.4f",
          vignette_age),
  sprintf("MatchIt 4.5.1 default distance = \"glm\" (buggy, unscaled): age SMD %.4f",
          buggy_age),
  paste("bundled cohort present:", has_bundled),
  # The bundled fixtures belong to this exact file; the tests check the checksum.
  paste("bundled cohort md5:", if (has_bundled) unname(tools::md5sum(bundled_path)) else "NA"),
  paste("generated:", format(Sys.Date()))
), file.path(out_dir, "versions_matching.txt"))
