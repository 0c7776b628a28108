# Reference values for causal_hcc.sensitivity.grid and .subgroups, computed with R.
#
# Run from the repository root:   Rscript tests/reference/sensitivity.R
# Reads the bundled reconstructed cohort (RECONSTRUCTED PSEUDO-DATA) and writes:
#   sensitivity_grid.csv         selected rows of the specification grid: PS (glm), weights
#                                (trimming, stabilising, truncation by hand) or MatchIt
#                                matching, then coxph; coef, se, n used, events
#   sensitivity_subgroups.csv    per oligometastatic level: crude, IPTW ATE (PS within the
#                                subgroup) and PSM (MatchIt within the subgroup) coxph
#   sensitivity_interaction.csv  local_therapy * oligometastatic: crude, adjusted, weighted
#                                (every term: coef, se, p)
#   sensitivity_versions.txt     R and package versions
#
# Conventions matched to causal_hcc (DESIGN.md):
#   * PS: unpenalised glm(binomial); control epsilon = 1e-14, maxit = 100 (tighter than
#     R's default 1e-8, so both sides sit at the optimum to ~1e-10).
#   * Weights: trim first (keep trim[1] <= ps <= trim[2]; trimmed patients get weight 0 and
#     are left out of the Cox fit), stabilise with p = share treated among the retained,
#     ATE p/e and (1-p)/(1-e), ATT 1 and e/(1-e) (1-p)/p; truncate last, within each arm,
#     at quantile(type = 7) of the retained patients' weights.
#   * IPTW Cox: coxph(weights = w, robust = TRUE) (robust sandwich SE).
#   * Matching: MatchIt nearest, std.caliper = TRUE. MatchIt 4.5.1 (Debian) truncates
#     distance differences below 1 to 0, so distance = logit PS * 2^26 (exact; the
#     caliper in SD units is unchanged). Only 1:1 matching: MatchIt 4.5.1 has a second bug
#     in rounds 2..k of k:1 matching (see matching.R).
#   * PSM Cox: coxph(weights = weights, cluster = subclass) on match.data (cluster-robust
#     SE); with replacement, cluster = patient (= robust = TRUE with one row per patient).
#   * Ties: Efron (coxph default), written out. coxph control eps = 1e-12 (toler.chol
#     1e-14, which coxph.control asks to be below eps).
suppressPackageStartupMessages({library(survival); library(MatchIt)})

out_dir <- "tests/reference"
if (!dir.exists(out_dir)) stop("run from the repository root")
bundled <- "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"
d <- read.csv(bundled, stringsAsFactors = FALSE)
d$child_pugh <- factor(d$child_pugh, levels = c("A", "B"))
SCALE <- 2^26
GLM_CONTROL <- glm.control(epsilon = 1e-14, maxit = 100)
COX_CONTROL <- coxph.control(eps = 1e-12, toler.chol = 1e-14, iter.max = 50)

num17 <- function(df) {
  for (nm in names(df)) {
    if (is.double(df[[nm]])) df[[nm]] <- ifelse(is.na(df[[nm]]), NA,
                                                sprintf("%.17g", df[[nm]]))
  }
  df
}
save_csv <- function(df, name) {
  write.csv(num17(df), file.path(out_dir, name), row.names = FALSE, na = "")
}

SETS <- list(
  "default" = c("ecog", "intrahepatic_ccr", "vascular_invasion"),
  "default + child_pugh" = c("ecog", "intrahepatic_ccr", "vascular_invasion", "child_pugh"),
  "default + afp_positive" = c("ecog", "intrahepatic_ccr", "vascular_invasion",
                               "afp_positive"),
  "intrahepatic control: Milan" = c("ecog", "milan_within", "vascular_invasion"),
  "intrahepatic control: largest diameter" = c("ecog", "intrahepatic_max_diameter_cm",
                                               "vascular_invasion"))

ps_formula <- function(covs) reformulate(covs, response = "local_therapy")

fit_ps <- function(data, covs) {
  fit <- glm(ps_formula(covs), family = binomial, data = data, control = GLM_CONTROL)
  list(lp = predict(fit, type = "link"), ps = fitted(fit))
}

make_weights <- function(ps, t, estimand, stabilized, trunc, trim) {
  keep <- rep(TRUE, length(ps))
  if (!is.null(trim)) keep <- ps >= trim[1] & ps <= trim[2]
  p <- mean(t[keep])
  w <- switch(estimand,
              ATE = ifelse(t == 1, 1 / ps, 1 / (1 - ps)),
              ATT = ifelse(t == 1, 1, ps / (1 - ps)),
              ATO = ifelse(t == 1, 1 - ps, ps))
  if (stabilized) {
    w <- w * if (estimand == "ATE") ifelse(t == 1, p, 1 - p) else
      ifelse(t == 1, 1, (1 - p) / p)
  }
  w[!keep] <- 0
  if (!is.null(trunc)) {
    for (arm in c(0, 1)) {
      sel <- keep & t == arm
      q <- quantile(w[sel], trunc / 100, type = 7)
      w[sel] <- pmin(pmax(w[sel], q[1]), q[2])
    }
  }
  w
}

cox_out <- function(fit, term = "local_therapy") {
  s <- summary(fit)$coefficients
  robust <- "robust se" %in% colnames(s)
  c(coef = s[term, "coef"], se = if (robust) s[term, "robust se"] else s[term, "se(coef)"],
    n = fit$n, events = fit$nevent)
}

# ---------------------------------------------------------------- grid rows
weighting_rows <- list(
  list("default", "ATT", FALSE, c(5, 95), c(0.1, 0.9)),
  list("default", "ATT", TRUE, c(1, 99), c(0.05, 0.95)),
  list("default", "ATE", TRUE, NULL, NULL),
  list("intrahepatic control: Milan", "ATE", TRUE, NULL, c(0.05, 0.95)),
  list("intrahepatic control: largest diameter", "ATE", FALSE, c(1, 99), NULL),
  list("default + child_pugh", "ATO", FALSE, NULL, NULL))
grid <- list()
for (r in weighting_rows) {
  covs <- SETS[[r[[1]]]]
  ps <- fit_ps(d, covs)$ps
  w <- make_weights(ps, d$local_therapy, r[[2]], r[[3]], r[[4]], r[[5]])
  dd <- d[w > 0, ]
  dd$w <- w[w > 0]
  fit <- coxph(Surv(os_months, death) ~ local_therapy, data = dd, weights = w,
               robust = TRUE, ties = "efron", control = COX_CONTROL)
  grid[[length(grid) + 1]] <- data.frame(
    family = "weighting", covariate_set = r[[1]], caliper_sd = NA, replace = NA,
    order = "", estimand = r[[2]], stabilized = r[[3]],
    truncate = if (is.null(r[[4]])) "none" else paste(r[[4]], collapse = "-"),
    trim = if (is.null(r[[5]])) "none" else paste(r[[5]], collapse = "-"),
    t(cox_out(fit)))
}
matching_rows <- list(
  list("intrahepatic control: largest diameter", 0.1, FALSE, "smallest"),
  list("intrahepatic control: Milan", 0.5, TRUE, "largest"),
  list("default + afp_positive", NULL, FALSE, "largest"),
  list("default", 0.2, FALSE, "largest"),
  list("default", 0.05, FALSE, "smallest"))
for (r in matching_rows) {
  covs <- SETS[[r[[1]]]]
  lp <- fit_ps(d, covs)$lp
  m <- matchit(ps_formula(covs), data = d, method = "nearest", distance = lp * SCALE,
               caliper = r[[2]], std.caliper = TRUE, replace = r[[3]], m.order = r[[4]])
  if (r[[3]]) {
    dd <- d[m$weights > 0, ]
    dd$weights <- m$weights[m$weights > 0]
    fit <- coxph(Surv(os_months, death) ~ local_therapy, data = dd, weights = weights,
                 cluster = patient_id, ties = "efron", control = COX_CONTROL)
  } else {
    md <- match.data(m)
    fit <- coxph(Surv(os_months, death) ~ local_therapy, data = md, weights = weights,
                 cluster = subclass, ties = "efron", control = COX_CONTROL)
  }
  grid[[length(grid) + 1]] <- data.frame(
    family = "matching", covariate_set = r[[1]],
    caliper_sd = if (is.null(r[[2]])) NA else r[[2]], replace = r[[3]], order = r[[4]],
    estimand = "", stabilized = NA, truncate = "", trim = "", t(cox_out(fit)))
}
save_csv(do.call(rbind, grid), "sensitivity_grid.csv")

# ---------------------------------------------------------------- subgroups
covs <- SETS[["default"]]
sub_rows <- list()
w_all <- rep(NA_real_, nrow(d))
for (level in c(1, 0)) {
  idx <- which(d$oligometastatic == level)
  s <- d[idx, ]
  ps <- fit_ps(s, covs)
  crude <- coxph(Surv(os_months, death) ~ local_therapy, data = s, ties = "efron",
                 control = COX_CONTROL)
  s$w <- make_weights(ps$ps, s$local_therapy, "ATE", TRUE, NULL, NULL)
  w_all[idx] <- s$w
  iptw <- coxph(Surv(os_months, death) ~ local_therapy, data = s, weights = w,
                robust = TRUE, ties = "efron", control = COX_CONTROL)
  m <- matchit(ps_formula(covs), data = s, method = "nearest", distance = ps$lp * SCALE,
               caliper = 0.2, std.caliper = TRUE)
  md <- match.data(m)
  psm <- coxph(Surv(os_months, death) ~ local_therapy, data = md, weights = weights,
               cluster = subclass, ties = "efron", control = COX_CONTROL)
  for (x in list(list("crude", crude), list("iptw", iptw), list("psm", psm))) {
    sub_rows[[length(sub_rows) + 1]] <- data.frame(level = level, method = x[[1]],
                                                   t(cox_out(x[[2]])))
  }
}
save_csv(do.call(rbind, sub_rows), "sensitivity_subgroups.csv")

# ---------------------------------------------------------------- interaction
d$w_sub <- w_all
fits <- list(
  crude = coxph(Surv(os_months, death) ~ local_therapy * oligometastatic, data = d,
                ties = "efron", control = COX_CONTROL),
  adjusted = coxph(Surv(os_months, death) ~ local_therapy * oligometastatic + ecog +
                     intrahepatic_ccr + vascular_invasion, data = d, ties = "efron",
                   control = COX_CONTROL),
  iptw_ate = coxph(Surv(os_months, death) ~ local_therapy * oligometastatic, data = d,
                   weights = w_sub, robust = TRUE, ties = "efron", control = COX_CONTROL))
inter <- list()
for (nm in names(fits)) {
  s <- summary(fits[[nm]])$coefficients
  robust <- "robust se" %in% colnames(s)
  inter[[nm]] <- data.frame(model = nm, term = rownames(s), coef = s[, "coef"],
                            se = if (robust) s[, "robust se"] else s[, "se(coef)"],
                            p = s[, ncol(s)], n = fits[[nm]]$n,
                            events = fits[[nm]]$nevent)
}
save_csv(do.call(rbind, inter), "sensitivity_interaction.csv")

writeLines(c(R.version.string, paste("survival", packageVersion("survival")),
             paste("MatchIt", packageVersion("MatchIt")),
             paste("bundled cohort md5:", unname(tools::md5sum(bundled))),
             paste("generated:", Sys.Date())),
           file.path(out_dir, "sensitivity_versions.txt"))
