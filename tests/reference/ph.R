# Reference values for causal_hcc.effects.ph (proportional-hazards checks of the report).
#
# Run from the repository root:  Rscript tests/reference/ph.R
# Writes tests/reference/ph_tests.csv (cox.zph table, treatment term and GLOBAL) and
# tests/reference/ph_residuals.csv (cox.zph(fit)$y: scaled Schoenfeld residuals of the
# treatment term, with their event times) for two models of the bundled reconstructed
# pseudo-cohort (RECONSTRUCTED PSEUDO-DATA):
#   crude - coxph(Surv(os_months, death) ~ local_therapy)
#   iptw_ATE - coxph(..., weights = w, robust = TRUE), w the stabilised ATE weights of an
#              unpenalised glm on ecog + intrahepatic_ccr + vascular_invasion.
# cox.zph: survival 3.x score test, transform = "km" (the default), terms = FALSE.
suppressPackageStartupMessages(library(survival))
out_dir <- "tests/reference"
d <- read.csv("causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv")
ps <- fitted(glm(local_therapy ~ ecog + intrahepatic_ccr + vascular_invasion,
                 family = binomial, data = d))
p1 <- mean(d$local_therapy)
d$w <- ifelse(d$local_therapy == 1, p1 / ps, (1 - p1) / (1 - ps))
fits <- list(
  crude = coxph(Surv(os_months, death) ~ local_therapy, data = d),
  iptw_ATE = coxph(Surv(os_months, death) ~ local_therapy, data = d, weights = w,
                   robust = TRUE))
tests <- list(); resid <- list()
for (name in names(fits)) {
  z <- cox.zph(fits[[name]], transform = "km", terms = FALSE)
  tests[[name]] <- data.frame(model = name, term = rownames(z$table), chisq = z$table[, 1],
                              df = z$table[, 2], p = z$table[, 3])
  resid[[name]] <- data.frame(model = name, time = z$time, residual = z$y[, 1])
}
write.csv(do.call(rbind, tests), file.path(out_dir, "ph_tests.csv"), row.names = FALSE)
write.csv(do.call(rbind, resid), file.path(out_dir, "ph_residuals.csv"), row.names = FALSE)
writeLines(c(R.version.string, paste("survival", packageVersion("survival"))),
           file.path(out_dir, "ph_versions.txt"))
