# Reference values for causal_hcc.sensitivity.restricted (time zero: the analysis restricted
# to the stratum where a post-baseline covariate's question does not arise).
#
# Run from the repository root:  Rscript tests/reference/restricted.R
# Writes tests/reference/restricted_bundled.csv from the bundled RECONSTRUCTED PSEUDO-DATA:
# Cox HR of local therapy among the intrahepatic cCR-negative patients (intrahepatic_ccr
# == 0), crude and adjusted for the remaining PS covariates (ecog, vascular_invasion).
# Conventions matched to causal_hcc: coxph default Efron ties, model-based SE, Wald CI.
suppressPackageStartupMessages(library(survival))
d <- read.csv("causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv")
s <- subset(d, intrahepatic_ccr == 0)
fits <- list(
  restricted_crude = coxph(Surv(os_months, death) ~ local_therapy, data = s,
                           control = coxph.control(eps = 1e-11, iter.max = 100)),
  restricted_adjusted = coxph(Surv(os_months, death) ~ local_therapy + ecog +
                                vascular_invasion, data = s,
                              control = coxph.control(eps = 1e-11, iter.max = 100)))
rows <- do.call(rbind, lapply(names(fits), function(m) {
  f <- fits[[m]]
  b <- unname(coef(f)["local_therapy"]); se <- sqrt(f$var[1, 1])
  data.frame(method = m, coef = b, se = se, hr = exp(b), ci_lower = exp(b - qnorm(0.975) * se),
             ci_upper = exp(b + qnorm(0.975) * se), n = f$n, events = f$nevent,
             n_treated = sum(s$local_therapy == 1), n_control = sum(s$local_therapy == 0))
}))
write.csv(rows, "tests/reference/restricted_bundled.csv", row.names = FALSE)
writeLines(c(R.version.string, paste("survival", packageVersion("survival")),
             paste("bundled cohort md5:", tools::md5sum(
               "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"))),
           "tests/reference/restricted_versions.txt")
