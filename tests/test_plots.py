"""Figures are made (Agg backend) from result objects; nothing is computed in plots."""

from pathlib import Path

import pytest
from matplotlib.figure import Figure

from causal_hcc.reporting import plots, save_figure
from tests._fixtures import veteran_results

VETERAN = Path(__file__).parent / "reference" / "datasets" / "veteran.csv"


@pytest.fixture(scope="module")
def results():
    return veteran_results()


def _check(fig):
    assert isinstance(fig, Figure) and fig.axes
    fig.canvas.draw()  # layout and text render without error


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def test_km_figures(results):
    cohort, crude, _ = results
    fig = plots.plot_km(crude.arms.curves, log_rank=crude.arms.log_rank, ci=True,
                        provenance=cohort.label, title="by arm",
                        xlabel=cohort.labels.time_axis)
    _check(fig)
    assert "Days of follow-up" in _texts(fig) and "test (n=68)" in _texts(fig)
    _check(plots.plot_km([crude.arms.overall]))
    for group in crude.subgroups:
        _check(plots.plot_km(group.curves, log_rank=group.log_rank))


def test_km_into_a_given_axes_has_no_risk_table(results):
    _, crude, _ = results
    fig = Figure()
    ax = fig.add_subplot()
    assert plots.plot_km(crude.arms.curves, ax=ax) is fig and len(fig.axes) == 1


def test_balance_and_effect_figures(results):
    cohort, _, adjusted = results
    _check(plots.plot_love(adjusted.balance, provenance=cohort.label))
    overlap = plots.plot_overlap(adjusted.propensity, weights=adjusted.matched,
                                 arm_labels=adjusted.arm_labels)
    _check(overlap)
    assert "probability of test" in _texts(overlap)
    _check(plots.plot_weights(adjusted.weights, arm_labels=adjusted.arm_labels))
    forest = plots.plot_forest(adjusted.estimates, comparison=adjusted.comparison,
                               published=("published", 0.9, 0.6, 1.3))
    _check(forest)
    assert "favours test" in _texts(forest)


def test_scatter():
    _check(plots.plot_scatter([1, 2, 3, 4], [2, 3, 5, 4], r=0.8, p_value=0.2, xlabel="x",
                              ylabel="y", line=(1.5, 0.8), published="r = 0.85"))


def test_nice_step():
    assert plots.nice_step(999) == 100 and plots.nice_step(70) == 10
    assert plots.nice_step(5) == 1


def test_svg_is_byte_identical_across_runs(results, tmp_path):
    """Same results, same figure, same bytes: no date, fixed SVG ids."""
    _, crude, adjusted = results
    for name, make in (("km", lambda: plots.plot_km(crude.arms.curves, ci=True)),
                       ("forest", lambda: plots.plot_forest(adjusted.estimates))):
        (a,) = save_figure(make(), tmp_path / "a" / name, "svg")
        (b,) = save_figure(make(), tmp_path / "b" / name, "svg")
        assert a.read_bytes() == b.read_bytes(), name
        assert b"<dc:date>" not in a.read_bytes()
    (pdf1,) = save_figure(make(), tmp_path / "a" / "forest", "pdf")
    (pdf2,) = save_figure(make(), tmp_path / "b" / "forest", "pdf")
    assert pdf1.read_bytes() == pdf2.read_bytes()
