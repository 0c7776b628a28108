# The work of `causal-hcc adjust --bootstrap 1000` for PSM + IPTW, done the usual way in R:
# boot() resampling patients; per replicate a logistic PS model (glm), IPTW weights for
# ATE, ATT and ATO with a weighted Cox model and robust SE (coxph(weights, robust = TRUE)),
# and 1:1 nearest-neighbour matching on the logit PS with a caliper of 0.2 SD (MatchIt)
# followed by a Cox model on the matched set with cluster-robust SE.
#
# Usage: Rscript scripts/benchmark_r.R DATA.csv [REPLICATES] [SEED]
# Prints one line: "R boot+glm+MatchIt+coxph: N replicates, S s" (elapsed seconds of the
# bootstrap alone; package loading and reading the CSV are timed apart).
# Run by scripts/benchmark.py on the bundled RECONSTRUCTED PSEUDO-DATA cohort.

t_start <- proc.time()[["elapsed"]]
suppressPackageStartupMessages({
  library(survival)
  library(MatchIt)
  library(boot)
})
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]
n_rep <- if (length(args) >= 2) as.integer(args[2]) else 1000L
seed <- if (length(args) >= 3) as.integer(args[3]) else 20250710L
d <- read.csv(path)
covariates <- c("ecog", "intrahepatic_ccr", "vascular_invasion")
ps_formula <- as.formula(paste("local_therapy ~", paste(covariates, collapse = " + ")))
t_loaded <- proc.time()[["elapsed"]]

log_hr <- function(data, w, cluster = NULL) {
  data$w <- w
  fit <- if (is.null(cluster)) {
    coxph(Surv(os_months, death) ~ local_therapy, data = data, weights = w, robust = TRUE)
  } else {
    data$cl <- cluster
    coxph(Surv(os_months, death) ~ local_therapy, data = data, weights = w, cluster = cl)
  }
  unname(coef(fit))
}

replicate_stat <- function(data, idx) {
  b <- data[idx, ]
  rownames(b) <- NULL
  a <- b$local_therapy
  ps <- fitted(suppressWarnings(glm(ps_formula, family = binomial, data = b)))
  iptw <- c(ate = log_hr(b, ifelse(a == 1, 1 / ps, 1 / (1 - ps))),
            att = log_hr(b, ifelse(a == 1, 1, ps / (1 - ps))),
            ato = log_hr(b, ifelse(a == 1, 1 - ps, ps)))
  psm <- tryCatch({
    m <- suppressWarnings(matchit(ps_formula, data = b, method = "nearest", distance = "glm",
                                  link = "linear.logit", caliper = 0.2, ratio = 1))
    md <- match.data(m)
    log_hr(md, md$weights, md$subclass)
  }, error = function(e) NA_real_)
  c(iptw, psm = psm)
}

set.seed(seed)
t0 <- proc.time()[["elapsed"]]
result <- suppressWarnings(boot(d, replicate_stat, R = n_rep))
elapsed <- proc.time()[["elapsed"]] - t0
cat(sprintf("R boot+glm+MatchIt+coxph: %d replicates, %.2f s (loading packages and data %.2f s)\n",
            n_rep, elapsed, t_loaded - t_start))
cat(sprintf("R estimates (log HR, full data): %s\n",
            paste(names(result$t0), sprintf("%.3f", result$t0), collapse = ", ")))
