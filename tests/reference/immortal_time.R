# Reference values for causal_hcc.sensitivity.immortal_time, computed with R's survival.
#
# Run from the repository root:   Rscript tests/reference/immortal_time.R
# Writes CSV fixtures into tests/reference/ (the Python suite reads them and needs no R):
#   immortal_heart.csv            survival's `heart` (jasa1, Stanford heart transplant),
#                                 counting-process rows; transplant coded 0/1
#   immortal_synthetic_cohort.csv synthetic cohort in canonical columns (set.seed below),
#                                 one row per patient, with months_to_local_therapy
#   immortal_synthetic_cp.csv     its (start, stop] rows, local therapy time-varying
#   immortal_landmark8.csv        the 8-patient hand-checkable landmark case
#   immortal_cox.csv              coxph coef, se, p, loglik, n, events per data set/model/term
#                                 (also each confounder's HR adjusted for treatment, for
#                                 the unmeasured-confounder benchmarks)
#   immortal_versions.txt         R and package versions
#
# Conventions made explicit:
#   * ties = "efron" is written although it is R's default.
#   * Counting-process rows: local therapy 0 on (0, ttl], 1 on (ttl, os]; ttl = 0 means
#     treated from time zero (one row). Built by hand and checked against tmerge().
#   * Landmark L: patients with os > L; tx = local therapy started at or before L; time
#     os - L.
#   * coxph control is R's default (eps = 1e-9, iter.max = 20).
suppressPackageStartupMessages(library(survival))

out_dir <- "tests/reference"
if (!dir.exists(out_dir)) stop("run from the repository root")

num17 <- function(df) {
  # Full double precision (write.csv keeps only 15 significant digits).
  for (nm in names(df)) {
    if (is.double(df[[nm]])) df[[nm]] <- ifelse(is.na(df[[nm]]), NA,
                                                sprintf("%.17g", df[[nm]]))
  }
  df
}
save_csv <- function(df, name) {
  write.csv(num17(df), file.path(out_dir, name), row.names = FALSE, na = "")
}

results <- list()
add_fit <- function(dataset, model, fit, n_treated = NA) {
  s <- summary(fit)$coefficients
  results[[length(results) + 1]] <<- data.frame(
    dataset = dataset, model = model, term = rownames(s),
    coef = unname(s[, "coef"]), se = unname(s[, "se(coef)"]),
    p = unname(s[, "Pr(>|z|)"]), loglik = fit$loglik[2],
    n = fit$n, nevent = fit$nevent, n_treated = n_treated,
    stringsAsFactors = FALSE)
}

# ------------------------------------------------------------ heart (jasa1)
heart <- survival::heart
heart$transplant <- as.integer(as.character(heart$transplant))
save_csv(heart, "immortal_heart.csv")
add_fit("heart", "transplant + age + surgery",
        coxph(Surv(start, stop, event) ~ transplant + age + surgery, data = heart,
              ties = "efron"))
add_fit("heart", "transplant",
        coxph(Surv(start, stop, event) ~ transplant, data = heart, ties = "efron"))

# ------------------------------------------------------------ synthetic cohort
set.seed(20250301)
n <- 120
ecog <- rbinom(n, 1, 0.5)
ccr <- rbinom(n, 1, 0.3)
vi <- rbinom(n, 1, 0.35)
lt <- rbinom(n, 1, plogis(-0.2 - 0.8 * ecog + 1.5 * ccr - 1.0 * vi))
rate <- 0.04 * exp(0.5 * ecog - 0.7 * ccr + 0.6 * vi)
os_true <- rexp(n, rate)
cens <- pmin(runif(n, 12, 70), 60)
# Half-month grid: ties in event times, so Efron's correction matters.
os <- pmax(0.5, round(pmin(os_true, cens) * 2) / 2)
death <- as.integer(os_true <= cens)
# Time to local therapy: 0 for some (treated from time zero), otherwise before os.
ttl <- ifelse(lt == 1, round(runif(n, 0, 1) * pmin(os - 0.5, 10) * 2) / 2, NA)
ttl[lt == 1 & runif(n) < 0.15] <- 0
cohort <- data.frame(patient_id = sprintf("S%03d", seq_len(n)), local_therapy = lt,
                     os_months = os, death = death, ecog = ecog, intrahepatic_ccr = ccr,
                     vascular_invasion = vi, months_to_local_therapy = ttl,
                     stringsAsFactors = FALSE)
stopifnot(all(is.na(ttl[lt == 0])), all(ttl[lt == 1] < os[lt == 1]))
save_csv(cohort, "immortal_synthetic_cohort.csv")

split_cp <- function(d) {
  rows <- lapply(seq_len(nrow(d)), function(i) {
    r <- d[i, ]
    base <- r[, c("patient_id", "ecog", "intrahepatic_ccr", "vascular_invasion")]
    if (r$local_therapy == 1 && r$months_to_local_therapy > 0) {
      rbind(cbind(base, start = 0, stop = r$months_to_local_therapy, death = 0L,
                  local_therapy = 0L),
            cbind(base, start = r$months_to_local_therapy, stop = r$os_months,
                  death = r$death, local_therapy = 1L))
    } else {
      cbind(base, start = 0, stop = r$os_months, death = r$death,
            local_therapy = as.integer(r$local_therapy))
    }
  })
  do.call(rbind, rows)
}
cp <- split_cp(cohort)
# Cross-check the hand split against survival's tmerge().
tm <- tmerge(cohort[, c("patient_id", "ecog", "intrahepatic_ccr", "vascular_invasion")],
             cohort, id = patient_id, death = event(os_months, death),
             local_therapy = tdc(months_to_local_therapy))
tm$local_therapy[is.na(tm$local_therapy)] <- 0L
tm <- tm[order(tm$patient_id, tm$tstart), ]
stopifnot(nrow(tm) == nrow(cp), all(tm$tstart == cp$start), all(tm$tstop == cp$stop),
          all(tm$death == cp$death), all(tm$local_therapy == cp$local_therapy))
save_csv(cp[, c("patient_id", "start", "stop", "death", "local_therapy", "ecog",
                "intrahepatic_ccr", "vascular_invasion")], "immortal_synthetic_cp.csv")

adj <- "local_therapy + ecog + intrahepatic_ccr + vascular_invasion"
add_fit("synthetic naive", "crude",
        coxph(Surv(os_months, death) ~ local_therapy, data = cohort, ties = "efron"),
        sum(cohort$local_therapy))
add_fit("synthetic naive", "adjusted",
        coxph(as.formula(paste("Surv(os_months, death) ~", adj)), data = cohort,
              ties = "efron"), sum(cohort$local_therapy))
add_fit("synthetic time-varying", "crude",
        coxph(Surv(start, stop, death) ~ local_therapy, data = cp, ties = "efron"),
        sum(cohort$local_therapy))
add_fit("synthetic time-varying", "adjusted",
        coxph(as.formula(paste("Surv(start, stop, death) ~", adj)), data = cp,
              ties = "efron"), sum(cohort$local_therapy))

# Benchmarks for the unmeasured-confounder module: each confounder's HR with death
# adjusted for treatment (one at a time, then all together).
for (cf in c("ecog", "intrahepatic_ccr", "vascular_invasion")) {
  add_fit("synthetic benchmark", paste("local_therapy +", cf),
          coxph(as.formula(paste("Surv(os_months, death) ~ local_therapy +", cf)),
                data = cohort, ties = "efron"), sum(cohort$local_therapy))
}

landmark <- function(d, L) {
  lm <- d[d$os_months > L, ]
  lm$local_therapy <- as.integer(!is.na(lm$months_to_local_therapy) &
                                   lm$months_to_local_therapy <= L)
  lm$os_months <- lm$os_months - L
  lm
}
for (L in c(1, 3, 6)) {
  lm <- landmark(cohort, L)
  add_fit(sprintf("synthetic landmark %g", L), "crude",
          coxph(Surv(os_months, death) ~ local_therapy, data = lm, ties = "efron"),
          sum(lm$local_therapy))
  add_fit(sprintf("synthetic landmark %g", L), "adjusted",
          coxph(as.formula(paste("Surv(os_months, death) ~", adj)), data = lm,
                ties = "efron"), sum(lm$local_therapy))
}

# ------------------------------------------------------------ 8-patient landmark case
# Landmark 3 months. Kept: L1 (treated at 1, dies at 10), L2 (treated at 5 > 3, so
# untreated at the landmark, dies at 12), L5, L6, L7 (treated at 2, censored at 20).
# Excluded: L3 (died at 2), L8 (died at 3 = L), L4 (censored at 2.5).
eight <- data.frame(
  patient_id = sprintf("L%d", 1:8),
  local_therapy = c(1, 1, 1, 0, 0, 0, 1, 0),
  os_months = c(10, 12, 2, 2.5, 8, 4, 20, 3),
  death = c(1, 1, 1, 0, 1, 1, 0, 1),
  ecog = c(0, 1, 1, 0, 1, 0, 0, 1),
  intrahepatic_ccr = c(1, 0, 1, 0, 0, 0, 1, 0),
  vascular_invasion = c(0, 0, 1, 1, 0, 1, 0, 0),
  months_to_local_therapy = c(1, 5, 0, NA, NA, NA, 2, NA))
save_csv(eight, "immortal_landmark8.csv")
lm8 <- landmark(eight, 3)
add_fit("landmark8 landmark 3", "crude",
        coxph(Surv(os_months, death) ~ local_therapy, data = lm8, ties = "efron"),
        sum(lm8$local_therapy))

save_csv(do.call(rbind, results), "immortal_cox.csv")
writeLines(c(R.version.string, paste("survival", packageVersion("survival")),
             paste("generated:", Sys.Date())),
           file.path(out_dir, "immortal_versions.txt"))
