# Reference fits of the (start, stop] Cox model (causal_hcc.sensitivity._cp_cox), to full
# precision, with R's survival.
#
# Run from the repository root:   Rscript tests/reference/counting_process.R
# Writes into tests/reference/ (the Python suite reads them and needs no R):
#   counting_process_cgd.csv       survival's `cgd` (recurrent infections, counting-process
#                                  rows; tied times), treatment coded 0/1
#   counting_process_cox.csv       coxph coef, se, loglik, n, events per data set/model/term
#   counting_process_versions.txt  R and package versions
# It also reads immortal_heart.csv and immortal_synthetic_cp.csv (written by
# immortal_time.R) and the bundled reconstructed pseudo-cohort, split into (start, stop]
# rows at the start of local therapy as counting_process_data() does.
#
# Conventions made explicit:
#   * ties = "efron" (R's default, written out).
#   * coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100): Newton-Raphson run until the relative
#     change of the log-likelihood is below 1e-14, so the coefficients are those of the
#     maximum to ~1e-15 and a Python fit can be compared at tolerances near 1e-10 (R's
#     default eps = 1e-9 stops earlier, at coefficients good to about 1e-9 relative).
#   * Model-based SEs (no robust variance); the information matrix at the final estimate.
suppressPackageStartupMessages(library(survival))

out_dir <- "tests/reference"
if (!dir.exists(out_dir)) stop("run from the repository root")
bundled_csv <- "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"

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

tight <- coxph.control(eps = 1e-14, toler.chol = 1e-15, iter.max = 100)
results <- list()
add_fit <- function(dataset, model, formula, data) {
  fit <- coxph(formula, data = data, ties = "efron", control = tight)
  stopifnot(fit$iter < 100)
  results[[length(results) + 1]] <<- data.frame(
    dataset = dataset, model = model, term = names(coef(fit)),
    coef = unname(coef(fit)), se = unname(sqrt(diag(fit$var))),
    loglik = fit$loglik[2], n = fit$n, nevent = fit$nevent, iter = fit$iter,
    stringsAsFactors = FALSE)
}

# ------------------------------------------------------------ heart (jasa1)
heart <- read.csv(file.path(out_dir, "immortal_heart.csv"))
add_fit("heart", "transplant + age + surgery",
        Surv(start, stop, event) ~ transplant + age + surgery, heart)
add_fit("heart", "transplant", Surv(start, stop, event) ~ transplant, heart)

# ------------------------------------------------------------ synthetic (immortal_time.R)
cp <- read.csv(file.path(out_dir, "immortal_synthetic_cp.csv"))
add_fit("synthetic", "crude", Surv(start, stop, death) ~ local_therapy, cp)
add_fit("synthetic", "adjusted",
        Surv(start, stop, death) ~ local_therapy + ecog + intrahepatic_ccr + vascular_invasion,
        cp)

# ------------------------------------------------------------ cgd: recurrent events, ties
cgd <- survival::cgd
cgd <- data.frame(id = cgd$id, tstart = as.numeric(cgd$tstart),
                  tstop = as.numeric(cgd$tstop), status = cgd$status,
                  treat = as.integer(cgd$treat == "rIFN-g"),
                  male = as.integer(cgd$sex == "male"), age = as.numeric(cgd$age),
                  steroids = cgd$steroids, propylac = cgd$propylac)
save_csv(cgd, "counting_process_cgd.csv")
add_fit("cgd", "treat + male + age + steroids + propylac",
        Surv(tstart, tstop, status) ~ treat + male + age + steroids + propylac, cgd)
add_fit("cgd", "treat", Surv(tstart, tstop, status) ~ treat, cgd)

# ------------------------------------------------------------ bundled pseudo-cohort
# Split at months_to_local_therapy: (0, ttl] untreated, (ttl, os] treated; ttl = 0: one
# treated row; ttl >= os: one untreated row (counting_process_data's conventions).
b <- read.csv(bundled_csv)
rows <- lapply(seq_len(nrow(b)), function(i) {
  r <- b[i, ]
  base <- r[, c("patient_id", "ecog", "intrahepatic_ccr", "vascular_invasion")]
  ttl <- r$months_to_local_therapy
  if (r$local_therapy == 1 && ttl > 0 && ttl < r$os_months) {
    rbind(cbind(base, start = 0, stop = ttl, death = 0L, local_therapy = 0L),
          cbind(base, start = ttl, stop = r$os_months, death = r$death, local_therapy = 1L))
  } else {
    cbind(base, start = 0, stop = r$os_months, death = r$death,
          local_therapy = as.integer(r$local_therapy == 1 && ttl < r$os_months))
  }
})
bcp <- do.call(rbind, rows)
add_fit("bundled", "crude", Surv(start, stop, death) ~ local_therapy, bcp)
add_fit("bundled", "adjusted",
        Surv(start, stop, death) ~ local_therapy + ecog + intrahepatic_ccr + vascular_invasion,
        bcp)

save_csv(do.call(rbind, results), "counting_process_cox.csv")
writeLines(c(R.version.string, paste("survival", packageVersion("survival")),
             paste("generated:", Sys.Date())),
           file.path(out_dir, "counting_process_versions.txt"))
