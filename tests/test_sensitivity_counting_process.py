"""The (start, stop] Cox model (causal_hcc.sensitivity._cp_cox) against R's coxph.

Fixtures: tests/reference/counting_process.R (survival 3.5.3, R 4.2.2;
counting_process_versions.txt), coxph with ties = "efron" run to eps = 1e-14, on survival's
``heart`` and ``cgd`` (recurrent events, tied times), the synthetic cohort of
immortal_time.R and the bundled reconstructed pseudo-cohort split at the start of local
therapy.

Tolerances: coefficients and model-based SEs rtol 1e-10 (observed: <= 2e-13), the
log-likelihood rtol 1e-12, counts exact. lifelines' CoxTimeVaryingFitter, used before,
was off by up to 1.1e-7 on the SEs (it reports the SE of its last-but-one iterate).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from causal_hcc.sensitivity import counting_process_cox, counting_process_data
from causal_hcc.sensitivity._cox import fit_counting_process_cox
from causal_hcc.sensitivity._cp_cox import fit_cp_cox
from causal_hcc.studies.yang2025 import load_bundled

REF = Path(__file__).parent / "reference"
DATA = {"heart": ("immortal_heart.csv", "start", "stop", "event"),
        "synthetic": ("immortal_synthetic_cp.csv", "start", "stop", "death"),
        "cgd": ("counting_process_cgd.csv", "tstart", "tstop", "status")}


@pytest.fixture(scope="module")
def r_cox() -> pd.DataFrame:
    return pd.read_csv(REF / "counting_process_cox.csv")


def _frame(dataset):
    if dataset == "bundled":
        cohort = load_bundled()
        return (counting_process_data(cohort, cohort.roles.covariates).data, "start", "stop",
                "death")
    name, *cols = DATA[dataset]
    return (pd.read_csv(REF / name), *cols)


CASES = [("heart", "transplant + age + surgery"), ("heart", "transplant"),
         ("synthetic", "crude"), ("synthetic", "adjusted"),
         ("cgd", "treat + male + age + steroids + propylac"), ("cgd", "treat"),
         ("bundled", "crude"), ("bundled", "adjusted")]


@pytest.mark.parametrize("dataset,model", CASES)
def test_matches_r_coxph_to_full_precision(r_cox, dataset, model):
    expected = r_cox[(r_cox["dataset"] == dataset) & (r_cox["model"] == model)]
    frame, start, stop, event = _frame(dataset)
    terms = list(expected["term"])
    fit = counting_process_cox(frame, terms, start_col=start, stop_col=stop, event_col=event)
    assert fit.estimable, fit.reason
    np.testing.assert_allclose(fit.coef, expected["coef"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(fit.se, expected["se"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(fit.loglik, expected["loglik"].iloc[0], rtol=1e-12)
    assert fit.n_rows == expected["n"].iloc[0]
    assert fit.events == expected["nevent"].iloc[0]


def test_all_rows_from_zero_is_the_package_cox():
    """(0, stop] rows are right-censored data: the same fit as survival.cox (R-exact)."""
    frame = pd.read_csv(REF / "immortal_synthetic_cohort.csv")
    terms = ["local_therapy", "ecog", "intrahepatic_ccr", "vascular_invasion"]
    one_row = fit_counting_process_cox(frame, terms=terms, stop_col="os_months",
                                       event_col="death")
    counting = fit_counting_process_cox(frame.assign(start=0.0), terms=terms,
                                        start_col="start", stop_col="os_months",
                                        event_col="death")
    np.testing.assert_allclose(counting.coef, one_row.coef, rtol=1e-12)
    np.testing.assert_allclose(counting.se, one_row.se, rtol=1e-12)
    np.testing.assert_allclose(counting.loglik, one_row.loglik, rtol=1e-13)


def test_split_rows_give_the_same_fit():
    """Splitting rows at a time where nothing changes leaves the likelihood as it was."""
    frame, start, stop, event = _frame("heart")
    terms = ["transplant", "age", "surgery"]
    spans = (frame[start] < 50.5) & (frame[stop] > 50.5)
    split = pd.concat([frame[~spans],
                       frame[spans].assign(**{stop: 50.5, event: 0}),
                       frame[spans].assign(**{start: 50.5})], ignore_index=True)
    assert len(split) > len(frame)
    a = fit_cp_cox(frame[start], frame[stop], frame[event], frame[terms].to_numpy(float))
    b = fit_cp_cox(split[start], split[stop], split[event], split[terms].to_numpy(float))
    np.testing.assert_allclose(b[0], a[0], rtol=1e-10)
    np.testing.assert_allclose(b[1], a[1], rtol=1e-10)
    np.testing.assert_allclose(b[2], a[2], rtol=1e-12)


def test_monotone_likelihood_is_not_estimable():
    rng = np.random.default_rng(1)
    n = 30
    stop = rng.uniform(1, 10, n).round(1)
    start = np.where(rng.uniform(size=n) < 0.3, stop / 3, 0.0)
    event = (rng.uniform(size=n) < 0.6).astype(int)
    frame = pd.DataFrame({"start": start, "stop": stop, "event": event,
                          "tx": rng.integers(0, 2, n), "z": event})
    fit = counting_process_cox(frame, ["tx", "z"], event_col="event", exposure="tx")
    assert not fit.estimable
    assert fit.reason.startswith("monotone likelihood")
    assert np.isnan(fit.coef).all()
