# Reference values for causal_hcc.survival and causal_hcc.cox, computed with R's survival.
#
# Run from the repository root:   Rscript tests/reference/survival.R
# Writes CSV fixtures into tests/reference/ (the Python test suite reads them; it needs no R):
#   veteran.csv               R's veteran data, as is (trt 1 = standard, 2 = test)
#   ties_data.csv             synthetic heavy-ties data (set.seed below), non-integer weights
#   km_edge_data.csv          tiny data sets for the median rules of print.survfit
#   survival_km.csv           survfit KM per group, every time: n.risk, n.event, surv, std.err
#                             (also with non-integer case weights, robust = FALSE)
#                             (SE of the cumulative hazard, Greenwood), lower, upper;
#                             conf.type "log-log" (our default; R's default is "log"), "log", "plain"
#   survival_km_times.csv     summary(survfit, times = ...) at landmark times
#   survival_medians.csv      print(survfit) table: median and its CI per group and conf.type
#   survival_logrank.csv      survdiff chi-square, df, p (plain, stratified, subgroup)
#   survival_cox.csv          coxph coef, se, robust se, loglik per model and term; on the
#                             bundled cohort (when present) every Table 3 univariable model in
#                             causal_hcc.cox.TABLE3_VARIABLES coding and the multivariable
#                             model of those with univariable Wald P < 0.05
#   survival_zph.csv          cox.zph (survival 3.x, transform = "km") chisq, df, p
#   versions_survival.txt     R and package versions
#
# Conventions made explicit (R's defaults differ in places):
#   * survfit(..., conf.type = "log-log") is the package default; R's default "log" and
#     SPSS-like "plain" are written too.
#   * coxph(..., robust = ) is always given explicitly: with non-integer weights R would
#     switch robust = TRUE on silently.
#   * coxph control is R's default (eps = 1e-9); on these data the coefficients are then
#     converged to full double precision (checked against eps = 1e-14).
suppressPackageStartupMessages(library(survival))

out_dir <- "tests/reference"
if (!dir.exists(out_dir)) stop("run from the repository root")

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
vet <- survival::veteran
vet$id <- seq_len(nrow(vet))
# Deterministic non-integer weights and clusters of 3 consecutive patients.
vet$w <- 0.5 + ((vet$id * 7) %% 11) / 4
vet$cl <- (vet$id - 1) %/% 3
save_csv(vet, "veteran.csv")

set.seed(20250117)
n_ties <- 240
ties <- data.frame(
  id = seq_len(n_ties),
  time = sample(1:9, n_ties, replace = TRUE),          # 9 distinct times: heavy ties
  status = rbinom(n_ties, 1, 0.7),
  x1 = rbinom(n_ties, 1, 0.4),
  x2 = round(rnorm(n_ties), 3),
  grp = sample(c("a", "b", "c"), n_ties, replace = TRUE),
  w = round(runif(n_ties, 0.2, 3), 4),
  cl = sample(1:60, n_ties, replace = TRUE)
)
ties$arm <- rbinom(n_ties, 1, 0.5)
ties$x3 <- as.integer(ties$grp == "b")
save_csv(ties, "ties_data.csv")

# Tiny data sets exercising print.survfit's median rule (minmin):
#   flat05_drop: S = 0.5 exactly on [2, 4), then drops -> median (2 + 4) / 2 = 3
#   flat05_drop2: S = 0.5 exactly after tied deaths, flat across censorings -> (3 + 7) / 2 = 5
#                 (0.7 * 5 / 7 is not exactly 0.5 in floating point: R's tolerance)
#   flat05_end : S = 0.5 exactly and follow-up ends there -> median = 2 (first time)
#   not_reached: S never <= 0.5 -> NA
#   hand6      : six rows computed by hand in tests/test_survival.py
edge <- rbind(
  data.frame(set = "flat05_drop", time = c(1, 2, 3, 4), status = c(1, 1, 0, 1)),
  data.frame(set = "flat05_drop2", time = c(1, 1, 1, 3, 3, 4, 5, 5, 7, 9),
             status = c(1, 1, 1, 1, 1, 0, 0, 0, 1, 1)),
  data.frame(set = "flat05_end", time = c(1, 2, 3, 3), status = c(1, 1, 0, 0)),
  data.frame(set = "not_reached", time = c(1, 2, 3, 4, 5), status = c(1, 1, 0, 0, 0)),
  data.frame(set = "hand6", time = c(2, 3, 3, 5, 7, 8), status = c(1, 1, 0, 1, 0, 1))
)
save_csv(edge, "km_edge_data.csv")

bundled_path <- "causal_hcc/studies/yang2025/bundled/reconstructed_pseudo_cohort.csv"
have_bundled <- file.exists(bundled_path)
if (have_bundled) {
  bund <- read.csv(bundled_path, stringsAsFactors = FALSE)
  bund$time <- bund$os_months
  bund$status <- bund$death
}

# ---------------------------------------------------------------- Kaplan-Meier
km_rows <- function(fit, dataset, conf) {
  grp <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(names(fit$strata), fit$strata)
  data.frame(dataset = dataset, conf_type = conf, group = grp, time = fit$time,
             n_risk = fit$n.risk, n_event = fit$n.event, n_censor = fit$n.censor,
             surv = fit$surv, std_err = fit$std.err, lower = fit$lower, upper = fit$upper)
}
median_rows <- function(fit, dataset, conf) {
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- matrix(tab, nrow = 1, dimnames = list("all", names(tab)))
  data.frame(dataset = dataset, conf_type = conf, group = rownames(tab),
             records = tab[, "records"], events = tab[, "events"], median = tab[, "median"],
             lcl = tab[, "0.95LCL"], ucl = tab[, "0.95UCL"])
}
time_rows <- function(fit, dataset, conf, times) {
  s <- summary(fit, times = times, extend = FALSE)
  grp <- if (is.null(s$strata)) rep("all", length(s$time)) else as.character(s$strata)
  data.frame(dataset = dataset, conf_type = conf, group = grp, time = s$time,
             n_risk = s$n.risk, surv = s$surv, std_err = s$std.err,
             lower = s$lower, upper = s$upper)
}

km_sets <- list(
  list(name = "veteran_trt", f = Surv(time, status) ~ trt, data = vet,
       times = c(30, 90, 180, 365, 500)),
  list(name = "veteran_all", f = Surv(time, status) ~ 1, data = vet,
       times = c(30, 90, 180, 365, 500, 1000)),
  list(name = "ties_arm", f = Surv(time, status) ~ arm, data = ties, times = c(2, 5, 9)),
  list(name = "ties_reverse", f = Surv(time, 1 - status) ~ 1, data = ties, times = c(2, 5))
)
for (s in unique(edge$set)) {
  km_sets[[length(km_sets) + 1]] <- list(name = paste0("edge_", s),
                                         f = Surv(time, status) ~ 1,
                                         data = edge[edge$set == s, ], times = c(1, 3))
}
vet_reverse <- list(name = "veteran_reverse", f = Surv(time, 1 - status) ~ 1, data = vet,
                    times = c(100))
km_sets[[length(km_sets) + 1]] <- vet_reverse
if (have_bundled) {
  km_sets[[length(km_sets) + 1]] <- list(name = "bundled_arm",
                                         f = Surv(time, status) ~ local_therapy,
                                         data = bund, times = c(12, 24, 36, 60))
  km_sets[[length(km_sets) + 1]] <- list(name = "bundled_all", f = Surv(time, status) ~ 1,
                                         data = bund, times = c(12, 24, 36, 60))
  km_sets[[length(km_sets) + 1]] <- list(name = "bundled_reverse",
                                         f = Surv(time, 1 - status) ~ 1,
                                         data = bund, times = c(12))
}

# Weighted KM (non-integer case weights): robust = FALSE gives the weighted Greenwood SE
# that causal_hcc computes; R's default for non-integer weights is an infinitesimal-
# jackknife SE, which causal_hcc does not compute.
km_sets[[length(km_sets) + 1]] <- list(name = "veteran_trt_weighted",
                                       f = Surv(time, status) ~ trt, data = vet,
                                       times = c(30, 90, 180, 365), weights = TRUE)
km_all <- list(); med_all <- list(); times_all <- list()
for (s in km_sets) {
  for (conf in c("log-log", "log", "plain")) {
    fit <- if (isTRUE(s$weights)) {
      survfit(s$f, data = s$data, weights = w, robust = FALSE, conf.type = conf)
    } else {
      survfit(s$f, data = s$data, conf.type = conf)
    }
    km_all[[length(km_all) + 1]] <- km_rows(fit, s$name, conf)
    med_all[[length(med_all) + 1]] <- median_rows(fit, s$name, conf)
    times_all[[length(times_all) + 1]] <- time_rows(fit, s$name, conf, s$times)
  }
}
save_csv(do.call(rbind, km_all), "survival_km.csv")
save_csv(do.call(rbind, med_all), "survival_medians.csv")
save_csv(do.call(rbind, times_all), "survival_km_times.csv")

# ---------------------------------------------------------------- log-rank
lr_row <- function(sd, dataset, test) {
  # As print.survdiff: groups with a non-zero expected count, minus one.
  e <- if (is.matrix(sd$exp)) rowSums(sd$exp) else sd$exp
  df <- sum(e > 0) - 1
  data.frame(dataset = dataset, test = test, chisq = sd$chisq, df = df,
             p = pchisq(sd$chisq, df, lower.tail = FALSE))
}
lr <- list(
  lr_row(survdiff(Surv(time, status) ~ trt, data = vet), "veteran", "trt"),
  lr_row(survdiff(Surv(time, status) ~ trt + strata(celltype), data = vet), "veteran",
         "trt_strata_celltype"),
  lr_row(survdiff(Surv(time, status) ~ trt, data = vet[vet$prior == 10, ]), "veteran",
         "trt_subgroup_prior10"),
  lr_row(survdiff(Surv(time, status) ~ celltype, data = vet), "veteran", "celltype_4groups"),
  lr_row(survdiff(Surv(time, status) ~ arm, data = ties), "ties", "arm"),
  lr_row(survdiff(Surv(time, status) ~ arm + strata(grp), data = ties), "ties",
         "arm_strata_grp")
)
if (have_bundled) {
  lr[[length(lr) + 1]] <- lr_row(survdiff(Surv(time, status) ~ local_therapy, data = bund),
                                 "bundled", "local_therapy")
  lr[[length(lr) + 1]] <- lr_row(survdiff(Surv(time, status) ~ local_therapy,
                                          data = bund[bund$oligometastatic == 1, ]),
                                 "bundled", "local_therapy_oligo")
  lr[[length(lr) + 1]] <- lr_row(survdiff(Surv(time, status) ~ local_therapy,
                                          data = bund[bund$oligometastatic == 0, ]),
                                 "bundled", "local_therapy_non_oligo")
}
save_csv(do.call(rbind, lr), "survival_logrank.csv")

# ---------------------------------------------------------------- Cox models
cox_rows <- function(fit, dataset, model) {
  se_model <- sqrt(diag(if (is.null(fit$naive.var)) fit$var else fit$naive.var))
  se_robust <- if (is.null(fit$naive.var)) NA else sqrt(diag(fit$var))
  data.frame(dataset = dataset, model = model, ties = fit$method,
             term = names(coef(fit)), coef = unname(coef(fit)), se = se_model,
             robust_se = se_robust, loglik_null = fit$loglik[1], loglik = fit$loglik[2],
             n = fit$n, events = fit$nevent, iter = fit$iter)
}
vet_f <- Surv(time, status) ~ trt + karno + age + prior
ties_f <- Surv(time, status) ~ x1 + x2 + x3 + arm
models <- list(
  list("veteran", "efron", coxph(vet_f, data = vet, ties = "efron")),
  list("veteran", "breslow", coxph(vet_f, data = vet, ties = "breslow")),
  list("veteran", "efron_robust", coxph(vet_f, data = vet, robust = TRUE)),
  list("veteran", "breslow_robust", coxph(vet_f, data = vet, ties = "breslow", robust = TRUE)),
  list("veteran", "efron_weighted", coxph(vet_f, data = vet, weights = w, robust = FALSE)),
  list("veteran", "efron_weighted_robust", coxph(vet_f, data = vet, weights = w,
                                                 robust = TRUE)),
  list("veteran", "efron_cluster", coxph(vet_f, data = vet, cluster = cl, robust = TRUE)),
  list("veteran", "efron_weighted_cluster", coxph(vet_f, data = vet, weights = w,
                                                  cluster = cl, robust = TRUE)),
  list("veteran", "efron_strata", coxph(Surv(time, status) ~ trt + karno + age + prior +
                                          strata(celltype), data = vet)),
  list("veteran", "efron_strata_robust", coxph(Surv(time, status) ~ trt + karno + age +
                                                 prior + strata(celltype), data = vet,
                                               robust = TRUE)),
  list("veteran", "efron_trt_only", coxph(Surv(time, status) ~ trt, data = vet)),
  list("ties", "efron", coxph(ties_f, data = ties)),
  list("ties", "breslow", coxph(ties_f, data = ties, ties = "breslow")),
  list("ties", "efron_robust", coxph(ties_f, data = ties, robust = TRUE)),
  list("ties", "breslow_robust", coxph(ties_f, data = ties, ties = "breslow", robust = TRUE)),
  list("ties", "efron_weighted", coxph(ties_f, data = ties, weights = w, robust = FALSE)),
  list("ties", "efron_weighted_robust", coxph(ties_f, data = ties, weights = w,
                                              robust = TRUE)),
  list("ties", "breslow_weighted_robust", coxph(ties_f, data = ties, weights = w,
                                                ties = "breslow", robust = TRUE)),
  list("ties", "efron_weighted_cluster", coxph(ties_f, data = ties, weights = w,
                                               cluster = cl, robust = TRUE)),
  list("ties", "efron_strata_weighted_cluster",
       coxph(Surv(time, status) ~ x1 + x2 + arm + strata(grp), data = ties, weights = w,
             cluster = cl, robust = TRUE))
)
if (have_bundled) {
  # Table 3 codings of causal_hcc.cox.TABLE3_VARIABLES: indicator of `level` vs reference.
  yes <- function(v) {
    if (is.numeric(v)) return(ifelse(is.na(v), NA, as.numeric(v == 1)))
    t <- tolower(trimws(as.character(v)))
    ifelse(is.na(v) | t == "", NA, as.numeric(t %in% c("1", "1.0", "yes", "y", "true", "t")))
  }
  table3 <- list(
    sex = function(d) ifelse(is.na(d$sex), NA, as.numeric(tolower(d$sex) == "female")),
    age = function(d) as.numeric(d$age > 50),
    hepatitis = function(d) 1 - yes(d$hepatitis),
    cirrhosis = function(d) yes(d$cirrhosis),
    ecog_ps = function(d) yes(d$ecog),
    child_pugh_class = function(d) ifelse(is.na(d$child_pugh), NA,
                                          as.numeric(toupper(d$child_pugh) == "B")),
    afp = function(d) yes(d$afp_positive),
    intrahepatic_milan = function(d) yes(d$milan_within),
    intrahepatic_ccr = function(d) yes(d$intrahepatic_ccr),
    extrahepatic_max_diameter = function(d) as.numeric(d$extrahepatic_max_diameter_cm > 2),
    oligometastasis = function(d) yes(d$oligometastatic),
    local_therapy = function(d) yes(d$local_therapy)
  )
  source_col <- c(sex = "sex", age = "age", hepatitis = "hepatitis", cirrhosis = "cirrhosis",
                  ecog_ps = "ecog", child_pugh_class = "child_pugh", afp = "afp_positive",
                  intrahepatic_milan = "milan_within", intrahepatic_ccr = "intrahepatic_ccr",
                  extrahepatic_max_diameter = "extrahepatic_max_diameter_cm",
                  oligometastasis = "oligometastatic", local_therapy = "local_therapy")
  uni_p <- c()
  for (key in names(table3)) {
    if (!(source_col[[key]] %in% names(bund))) next
    bund[[key]] <- table3[[key]](bund)
    fit <- coxph(as.formula(paste("Surv(time, status) ~", key)), data = bund)
    models[[length(models) + 1]] <- list("bundled", paste0("uni_", key), fit)
    uni_p[key] <- summary(fit)$coefficients[1, "Pr(>|z|)"]
  }
  selected <- names(uni_p)[uni_p < 0.05]
  if (length(selected)) {
    models[[length(models) + 1]] <- list(
      "bundled", "multi_selected",
      coxph(as.formula(paste("Surv(time, status) ~", paste(selected, collapse = " + "))),
            data = bund))
  }
  models[[length(models) + 1]] <- list("bundled", "efron_local_therapy",
                                       coxph(Surv(time, status) ~ local_therapy, data = bund))
  models[[length(models) + 1]] <- list("bundled", "breslow_local_therapy",
                                       coxph(Surv(time, status) ~ local_therapy, data = bund,
                                             ties = "breslow"))
}
save_csv(do.call(rbind, lapply(models, function(m) cox_rows(m[[3]], m[[1]], m[[2]]))),
         "survival_cox.csv")

# ---------------------------------------------------------------- cox.zph (survival 3.x)
zph_rows <- function(fit, dataset, model) {
  z <- cox.zph(fit, transform = "km", terms = FALSE, global = TRUE)
  data.frame(dataset = dataset, model = model, term = rownames(z$table),
             chisq = z$table[, "chisq"], df = z$table[, "df"], p = z$table[, "p"])
}
zph_models <- c("efron", "breslow", "efron_weighted", "efron_strata", "efron_trt_only",
                "multi_selected")
zph <- list()
for (m in models) {
  if (m[[2]] %in% c(zph_models, "efron_weighted_robust", "efron_strata_weighted_cluster",
                    "efron_local_therapy")) {
    zph[[length(zph) + 1]] <- zph_rows(m[[3]], m[[1]], m[[2]])
  }
}
save_csv(do.call(rbind, zph), "survival_zph.csv")

# ---------------------------------------------------------------- versions
writeLines(c(R.version.string,
             paste("survival", as.character(packageVersion("survival"))),
             paste("bundled cohort present:", have_bundled),
             paste("generated:", format(Sys.time(), "%Y-%m-%d"))),
           file.path(out_dir, "versions_survival.txt"))
