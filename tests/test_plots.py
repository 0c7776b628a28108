"""Figures are made (Agg backend) from result objects; nothing is computed in plots."""

import warnings

import pytest
from matplotlib.figure import Figure

from causal_hcc import plots
from causal_hcc.data import load_bundled
from causal_hcc.effects import adjust
from causal_hcc.errors import CausalHccWarning
from causal_hcc.survival import crude_analysis


@pytest.fixture(scope="module")
def results():
    cohort = load_bundled()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CausalHccWarning)
        return cohort, crude_analysis(cohort), adjust(cohort, n_boot=0)


def _check(fig):
    assert isinstance(fig, Figure) and fig.axes
    fig.canvas.draw()  # layout and text render without error


def test_km_figures(results):
    cohort, crude, _ = results
    _check(plots.plot_km(crude.arms.curves, log_rank=crude.arms.log_rank, ci=True,
                         provenance=cohort.label, title="2B"))
    _check(plots.plot_km([crude.arms.overall]))


def test_km_into_a_given_axes_has_no_risk_table(results):
    _, crude, _ = results
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_km(crude.arms.curves, ax=ax) is fig and len(fig.axes) == 1


def test_balance_and_effect_figures(results):
    cohort, _, adjusted = results
    _check(plots.plot_love(adjusted.balance, provenance=cohort.label))
    _check(plots.plot_overlap(adjusted.propensity, weights=adjusted.matched))
    _check(plots.plot_weights(adjusted.weights))
    _check(plots.plot_forest(adjusted.estimates, published=("paper, multivariable", 0.708,
                                                            0.290, 1.733)))


def test_scatter(results):
    _check(plots.plot_scatter([1, 2, 3, 4], [2, 3, 5, 4], r=0.8, p_value=0.2, xlabel="x",
                              ylabel="y", published="r = 0.851"))
