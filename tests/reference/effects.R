# Reference values for causal_hcc.effects (adjusted hazard ratios and weighted curves).
#
# Run from the repository root:  Rscript tests/reference/effects.R
# Writes tests/reference/effects_<dataset>_*.csv for two datasets in canonical columns:
#   veteran  - R survival's veteran data mapped onto the data contract (mapping below),
#   bundled  - the bundled reconstructed pseudo-cohort (RECONSTRUCTED PSEUDO-DATA).
# Conventions matched to causal_hcc (DESIGN.md):
#   PS: unpenalised glm(binomial) on ecog + intrahepatic_ccr + vascular_invasion.
#   Matching: MatchIt nearest, caliper 0.2 SD of the logit PS, std.caliper = TRUE,
#     default m.order ("largest"). MatchIt 4.5.1 (Debian) truncates distance differences
#     below 1 to 0, so the distance passed is logit_ps * 2^26 (exact power of two; the
#     caliper in SD units is unchanged by the scaling).
#   PSM Cox: coxph(weights = weights, cluster = subclass) on match.data (cluster-robust
#     SE); stratified alternative coxph(... + strata(subclass)) with model SE.
#   IPTW: ATE stabilised (p / e, (1 - p) / (1 - e)), ATT (1, e / (1 - e)), ATO (1 - e, e);
#     coxph(weights = w, robust = TRUE). weighted_cox_adjusted: ATE weights + covariates
#     (a conditional HR; estimand NA).
#   Ties: Efron (coxph default). Weighted KM: survfit(weights = w), conf.type log-log.
suppressPackageStartupMessages({library(survival); library(MatchIt)})
out_dir <- "tests/reference"

veteran_cohort <- function() {
  v <- survival::veteran
  data.frame(
    patient_id = sprintf("V%03d", seq_len(nrow(v))),
    local_therapy = as.integer(v$trt == 2),
    os_months = v$time / 30.4375,
    death = v$status,
    ecog = as.integer(v$karno < 60),
    intrahepatic_ccr = as.integer(v$prior == 10),
    vascular_invasion = as.integer(v$celltype %in% c("smallcell", "adeno")))
}

cox_row <- function(method, estimand, fit) {
  s <- summary(fit)$coefficients
  robust <- "robust se" %in% colnames(s)
  data.frame(method = method, estimand = estimand, coef = s[1, "coef"],
             se = if (robust) s[1, "robust se"] else s[1, "se(coef)"],
             se_model = s[1, "se(coef)"], p = s[1, ncol(s)], n = fit$n, events = fit$nevent)
}

reference <- function(d, name) {
  f_ps <- local_therapy ~ ecog + intrahepatic_ccr + vascular_invasion
  ps_fit <- glm(f_ps, family = binomial, data = d)
  d$lp <- predict(ps_fit, type = "link")
  d$ps <- fitted(ps_fit)
  m <- matchit(f_ps, data = d, method = "nearest", distance = d$lp * 2^26,
               caliper = 0.2, std.caliper = TRUE)
  d$match_weight <- m$weights
  d$match_set <- as.integer(as.character(m$subclass))
  md <- match.data(m)
  p <- mean(d$local_therapy)
  t <- d$local_therapy
  d$w_ate <- ifelse(t == 1, p / d$ps, (1 - p) / (1 - d$ps))
  d$w_att <- ifelse(t == 1, 1, d$ps / (1 - d$ps))
  d$w_ato <- ifelse(t == 1, 1 - d$ps, d$ps)
  rows <- rbind(
    cox_row("crude", NA, coxph(Surv(os_months, death) ~ local_therapy, data = d)),
    cox_row("multivariable", NA, coxph(Surv(os_months, death) ~ local_therapy + ecog +
                                         intrahepatic_ccr + vascular_invasion, data = d)),
    cox_row("psm", "ATT", coxph(Surv(os_months, death) ~ local_therapy, data = md,
                                weights = weights, cluster = subclass)),
    cox_row("psm_stratified", "ATT", coxph(Surv(os_months, death) ~ local_therapy +
                                             strata(subclass), data = md, weights = weights)),
    cox_row("iptw", "ATE", coxph(Surv(os_months, death) ~ local_therapy, data = d,
                                 weights = w_ate, robust = TRUE)),
    cox_row("iptw", "ATT", coxph(Surv(os_months, death) ~ local_therapy, data = d,
                                 weights = w_att, robust = TRUE)),
    cox_row("iptw", "ATO", coxph(Surv(os_months, death) ~ local_therapy, data = d,
                                 weights = w_ato, robust = TRUE)),
    cox_row("weighted_cox_adjusted", NA, coxph(Surv(os_months, death) ~ local_therapy + ecog +
                                            intrahepatic_ccr + vascular_invasion, data = d,
                                          weights = w_ate, robust = TRUE)))
  write.csv(rows, file.path(out_dir, sprintf("effects_%s_cox.csv", name)), row.names = FALSE)
  write.csv(d[, c("patient_id", "local_therapy", "lp", "ps", "match_weight", "match_set",
                  "w_ate", "w_att", "w_ato")],
            file.path(out_dir, sprintf("effects_%s_units.csv", name)), row.names = FALSE)
  km_rows <- list(); rm_rows <- list()
  for (wname in c("w_ate", "match_weight")) {
    dd <- d[d[[wname]] > 0, ]
    for (arm in c(1, 0)) {
      sub <- dd[dd$local_therapy == arm, ]
      fit <- survfit(Surv(os_months, death) ~ 1, data = sub, weights = sub[[wname]],
                     conf.type = "log-log")
      km_rows[[length(km_rows) + 1]] <- data.frame(
        weights = wname, arm = arm, time = fit$time, n_risk = fit$n.risk,
        n_event = fit$n.event, surv = fit$surv, std_err = fit$std.err,
        lower = fit$lower, upper = fit$upper)
      for (tau in c(36, 60)) {
        tab <- summary(fit, rmean = tau)$table
        rm_rows[[length(rm_rows) + 1]] <- data.frame(weights = wname, arm = arm,
                                                     horizon = tau, rmean = tab[["rmean"]])
      }
    }
  }
  write.csv(do.call(rbind, km_rows), file.path(out_dir, sprintf("effects_%s_km.csv", name)),
            row.names = FALSE)
  write.csv(do.call(rbind, rm_rows), file.path(out_dir, sprintf("effects_%s_rmst.csv", name)),
            row.names = FALSE)
}

vet <- veteran_cohort()
write.csv(vet, file.path(out_dir, "effects_veteran_cohort.csv"), row.names = FALSE)
reference(vet, "veteran")
bundled <- "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"
if (file.exists(bundled)) reference(read.csv(bundled), "bundled")
writeLines(c(R.version.string, paste("survival", packageVersion("survival")),
             paste("MatchIt", packageVersion("MatchIt"))),
           file.path(out_dir, "effects_versions.txt"))
