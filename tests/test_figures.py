"""The figures of each stage: built lazily, only in the formats asked for (PNG by default),
with the same bytes on every run and with any number of workers; and what each of the
cobalt/survminer-grade figures shows (love plot order and panels, weighted risk tables,
plateaus, thinned censoring, specification-curve medians, the crude tipping target)."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from causal_hcc.balance import balance_summary
from causal_hcc.effects import adjust
from causal_hcc.reporting import figures, render, save_figure, write_adjust
from causal_hcc.reporting.balance_plots import (
    love_order,
    plot_love,
    summary_from_tables,
)
from causal_hcc.reporting.curves_plots import (
    MAX_CENSOR_MARKS,
    MAX_STEPS,
    patient_counts,
    plot_km,
    step_points,
    table_titles,
)
from causal_hcc.reporting.sensitivity_plots import (
    choice_medians,
    plot_specification_curve,
)
from causal_hcc.sensitivity import run_sensitivity
from causal_hcc.studies import yang2025
from causal_hcc.studies.yang2025.report_extras import report_extras
from causal_hcc.survival import crude_analysis, kaplan_meier
from tests._fixtures import quiet, veteran_results

VETERAN = Path(__file__).parent / "reference" / "datasets" / "veteran.csv"


@pytest.fixture(scope="module")
def veteran():
    return veteran_results()


@pytest.fixture(scope="module")
def bundled():
    cohort = yang2025.load_bundled()
    with quiet():
        effects = adjust(cohort, n_boot=0)
        sensitivity = run_sensitivity(cohort, effects,
                                      **yang2025.sensitivity_extras(cohort))
    return cohort, crude_analysis(cohort), effects, sensitivity


def _texts(fig) -> str:
    return " ".join(t.get_text() for t in fig.findobj(lambda a: hasattr(a, "get_text")))


def _built(figs: dict) -> dict:
    return {stem: render.build(builder) for stem, (builder, _) in figs.items()}


# ----------------------------------------------------------------------------- lazy, formats
def test_formats_none_builds_no_figure(tmp_path):
    calls = []

    def builder():
        calls.append(1)
        return Figure()

    figs = {"a": (builder, "A"), "b": (builder, "B")}
    assert render.render_figures(figs, tmp_path, "none") == ([], [])
    assert render.render_figures(figs, tmp_path, None) == ([], [])
    assert calls == [] and not list(tmp_path.iterdir())


def test_stage_figures_are_builders_not_figures(veteran, monkeypatch, tmp_path):
    """Making the dicts draws nothing; write_adjust with 'none' never reaches plots."""
    cohort, crude, effects = veteran
    for figs in (figures.crude_figures(crude, cohort), figures.adjust_figures(effects, cohort)):
        assert figs and all(callable(b) and not isinstance(b, Figure)
                            for b, _ in figs.values())

    def forbidden():
        raise AssertionError("a figure was built with formats='none'")

    monkeypatch.setattr(figures, "_plots", forbidden)
    written = write_adjust(effects, cohort, tmp_path, formats="none")
    assert not [p for p in written if p.suffix in (".png", ".svg", ".pdf")]


def test_png_only_by_default(veteran, tmp_path):
    cohort, _, effects = veteran
    (path,) = save_figure(Figure(), tmp_path / "one")
    assert path.suffix == ".png"
    written = write_adjust(effects, cohort, tmp_path / "adjust")
    suffixes = {p.suffix for p in written if p.suffix in (".png", ".svg", ".pdf")}
    assert suffixes == {".png"}
    stems = {p.stem for p in written if p.suffix == ".png"}
    assert {"love_plot", "forest_plot", "ps_overlap", "ps_overlap_matched",
            "ps_overlap_weighted", "weights", "adjusted_km_psm_att",
            "adjusted_km_iptw_ate"} <= stems
    # Greyscale figures (STYLES): every pixel grey, so each file is stored as 8-bit grey
    # (a matplotlib default colour, e.g. the orange box-plot median, would make it RGB).
    from PIL import Image
    for p in written:
        if p.suffix == ".png":
            with Image.open(p) as image:
                assert image.mode == "L", p.name
    assert render.render_figures({"x": (Figure, "X")}, tmp_path / "svg", "png,svg")[0] == [
        tmp_path / "svg" / "x.png", tmp_path / "svg" / "x.svg"]


def test_same_bytes_every_run_and_with_any_number_of_workers(veteran, tmp_path):
    cohort, crude, effects = veteran
    figs = {**figures.crude_figures(crude, cohort), **figures.adjust_figures(effects, cohort)}
    runs = {}
    for name, workers in (("serial", 1), ("again", 1), ("pool", 2)):
        paths, captions = render.render_figures(figs, tmp_path / name, "png,svg",
                                                workers=workers)
        assert [s for s, _ in captions] == list(figs)
        runs[name] = {p.name: p.read_bytes() for p in paths}
    assert len(runs["serial"]) == 2 * len(figs)
    assert runs["serial"] == runs["again"] == runs["pool"]


def test_png_is_matplotlibs_unhinted_pixels_in_the_smallest_exact_colour_type(tmp_path):
    """save_figure's PNG decodes to the pixels matplotlib's own writer gives with unhinted
    text, stored as grey, RGB or RGBA as the pixels need; the settings do not leak."""
    import matplotlib
    from PIL import Image

    from causal_hcc.reporting import style

    def fig(colour="black", alpha=1.0):
        f = Figure(figsize=(2, 1))
        f.patch.set_alpha(alpha)
        f.text(0.1, 0.5, "HR 0.355 (0.173-0.728)", fontsize=8)
        f.add_artist(Line2D([0.1, 0.9], [0.2, 0.2], color=colour))
        return f

    def pixels(path):
        with Image.open(path) as image:
            return np.asarray(image.convert("RGBA"))

    before = matplotlib.rcParams["text.hinting"]
    kw = dict(dpi=style.DPI, metadata={},
              pil_kwargs={"compress_level": style.PNG_COMPRESS_LEVEL})
    for name, args, mode in (("grey", ("0.3",), "L"), ("colour", ("tab:red",), "RGB"),
                             ("clear", ("black", 0.0), "RGBA")):
        ours = save_figure(fig(*args), tmp_path / name, "png")[0]
        assert matplotlib.rcParams["text.hinting"] == before        # not leaked
        with matplotlib.rc_context({"text.hinting": "no_hinting"}):
            fig(*args).savefig(tmp_path / f"{name}_mpl.png", **kw)
        with matplotlib.rc_context({"text.hinting": "force_autohint"}):
            fig(*args).savefig(tmp_path / f"{name}_hinted.png", **kw)
        with Image.open(ours) as image:
            assert image.mode == mode
            assert image.info["Software"].startswith("Matplotlib version")
            assert image.info["dpi"] == pytest.approx((style.DPI, style.DPI), abs=0.02)
        assert np.array_equal(pixels(ours), pixels(tmp_path / f"{name}_mpl.png"))
        assert not np.array_equal(pixels(ours), pixels(tmp_path / f"{name}_hinted.png"))
    # An SVG after a PNG of the same figure: the PNG canvas does not take over other
    # formats, and the figure keeps its own canvas (a pyplot figure, its window's).
    f = fig()
    own = f.canvas
    paths = save_figure(f, tmp_path / "both", "png,svg")
    assert paths[1].read_text().lstrip().startswith("<?xml")
    assert f.canvas is own and own.figure is f


def test_png_mode_hand_checked():
    from causal_hcc.reporting.style import png_mode
    img = np.full((2, 3, 4), 255, np.uint8)
    assert png_mode(img) == "L"
    img[0, 1, :3] = (10, 10, 11)
    assert png_mode(img) == "RGB"
    img[1, 2, 3] = 254
    assert png_mode(img) == "RGBA"


@pytest.mark.skipif(not render.can_fork(), reason="prerendering needs fork")
def test_prerendered_figures_are_the_same_files_and_are_collected_once(veteran, tmp_path):
    cohort, crude, effects = veteran
    figs = figures.adjust_figures(effects, cohort)
    ahead = {k: v for k, v in figs.items() if k != "forest_plot"}
    assert render.prerender(ahead, tmp_path / "ahead", "png", workers=2) == list(ahead)
    paths, captions = render.render_figures(figs, tmp_path / "ahead", "png")
    serial, serial_captions = render.render_figures(figs, tmp_path / "serial", "png",
                                                    workers=1)
    assert captions == serial_captions and [p.name for p in paths] == [p.name for p in serial]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, serial))
    assert not render._BATCHES and not render._DONE      # nothing left pending


@pytest.mark.skipif(not render.can_fork(), reason="prerendering needs fork")
def test_forgotten_prerendered_figures_are_drawn_again(veteran, tmp_path):
    cohort, crude, effects = veteran
    figs = figures.adjust_figures(effects, cohort)
    stems = ["weights", "love_plot"]
    render.prerender({k: figs[k] for k in stems}, tmp_path, "png", workers=2)
    render.forget_prerendered(tmp_path, "png", stems)
    (tmp_path / "weights.png").unlink()
    paths, _ = render.render_figures({k: figs[k] for k in stems}, tmp_path, "png", workers=1)
    assert (tmp_path / "weights.png").exists() and len(paths) == 2


def test_prerender_with_one_worker_or_no_format_starts_nothing(veteran, tmp_path):
    cohort, crude, effects = veteran
    figs = figures.adjust_figures(effects, cohort)
    assert render.prerender(figs, tmp_path, "png", workers=1) == []
    assert render.prerender(figs, tmp_path, "none") == []
    assert not render._BATCHES


def test_adjust_preview_feeds_the_same_figures_as_the_bootstrapped_result():
    """adjust's on_preview gets, once and before the bootstrap, the report without it:
    the same figure data as the result, the estimates without bootstrap CIs; and the
    result is the one adjust gives without the hook, bit for bit."""
    import pickle

    from causal_hcc.cli.ahead import same_figure_data
    cohort = yang2025.load_bundled()
    seen = []
    with quiet():
        full = adjust(cohort, n_boot=20, on_preview=seen.append)
        plain = adjust(cohort, n_boot=20)
        alone = adjust(cohort, n_boot=0, order_spread_k=0, aipw=False)
        other = adjust(cohort, n_boot=0, caliper_sd=0.1)
        adjust(cohort, n_boot=0, on_preview=seen.append)      # no bootstrap: not called
    (preview,) = seen
    assert same_figure_data(preview, full) and same_figure_data(alone, full)
    assert not same_figure_data(preview, other)
    assert all(e.boot_ci_lower is None for e in preview.estimates)
    assert any(e.boot_ci_lower is not None for e in full.estimates)
    assert preview.aipw is None and full.aipw is not None
    # The bootstrap is attached to the rows it covers (psm ATT, IPTW), never to the
    # matching rows added after them (psm ATC, exact / cem / subclass).
    boot = {(e.method, e.estimand.split(" ")[0]) for e in full.estimates
            if e.boot_ci_lower is not None}
    assert ("psm", "ATT") in boot and ("psm", "ATC") not in boot
    assert not {m for m, _ in boot} - {"psm", "iptw"}
    assert pickle.dumps(full.estimates) == pickle.dumps(plain.estimates)
    assert full.notes == plain.notes and pickle.dumps(full.curves) == pickle.dumps(
        plain.curves)


def test_default_workers():
    assert render.default_workers(1) == 1
    assert 1 <= render.default_workers(20) <= render.MAX_WORKERS


# ----------------------------------------------------------------------------- love plot
def _summary_frame():
    """A long balance summary as h3's ``balance_summary`` gives it (two denominators)."""
    rows = []
    variables = [("age", "Age (years)", "", "numeric", True),
                 ("stage", "Stage", "III", "binary", True),
                 ("sex", "Sex", "female", "binary", False),
                 ("karno", "Karnofsky", "", "numeric", False)]
    smd = {"Unadjusted": [0.05, -0.40, 0.25, 0.90], "PSM": [0.02, 0.08, -0.15, 0.30],
           "IPTW ATE": [0.01, -0.03, 0.12, 0.05]}
    denominator = {"Unadjusted": "treated", "PSM": "treated", "IPTW ATE": "pooled"}
    for method, values in smd.items():
        for (var, label, level, kind, in_model), value in zip(variables, values):
            rows.append({"variable": var, "label": label, "level": level, "kind": kind,
                         "in_model": in_model, "method": method,
                         "estimand": None if method == "Unadjusted" else "ATT",
                         "smd": value, "smd_denominator": denominator[method],
                         "variance_ratio": 1.3 if kind == "numeric" else np.nan,
                         "ks": abs(value) / 2, "n_missing": 0,
                         "imbalanced": abs(value) > 0.1})
    return pd.DataFrame(rows)


def test_love_plot_rows_sorted_by_unadjusted_imbalance_panels_per_denominator():
    summary = _summary_frame()
    assert love_order(summary) == ["karno", "stage = III", "sex = female", "age"]
    fig = plot_love(summary, provenance="RECONSTRUCTED PSEUDO-DATA")
    smd_treated, smd_pooled, vr = fig.axes
    ticks = sorted(zip(smd_treated.get_yticks(), smd_treated.get_yticklabels()),
                   key=lambda pair: -pair[0])
    labels = [t.get_text() for _, t in ticks]      # top of the plot first
    assert labels == ["Karnofsky \u2020", "Stage = III", "Sex = female \u2020",
                            "Age (years)"]
    assert "treated SD" in smd_treated.get_title() and "pooled SD" in smd_pooled.get_title()
    assert "Variance ratio" in vr.get_title()
    italic = {t.get_text(): t.get_fontstyle() for t in smd_treated.get_yticklabels()}
    assert italic["Karnofsky \u2020"] == "italic" and italic["Age (years)"] == "normal"
    assert any(isinstance(a, Line2D) and list(a.get_xdata()) == [0.1, 0.1]
               for a in smd_treated.get_lines())          # threshold line
    assert "RECONSTRUCTED PSEUDO-DATA" in _texts(fig)
    # the PSM |SMD| points sit on the rows of their covariates
    psm = next(ln for ln in smd_treated.get_lines() if ln.get_label().startswith("PSM"))
    assert np.allclose(psm.get_xdata(), [0.30, 0.08, 0.15, 0.02])


def test_love_plot_from_effects_tables(veteran):
    _, _, effects = veteran
    summary = summary_from_tables(effects.balance)
    unadjusted = summary[summary["method"] == "Unadjusted"]
    first = unadjusted[unadjusted["smd_denominator"] == unadjusted["smd_denominator"].iloc[0]]
    expected = first.assign(a=first["smd"].abs()).sort_values("a", ascending=False,
                                                              kind="stable")
    keys = (expected["variable"] + np.where(expected["level"] != "",
                                            " = " + expected["level"], "")).tolist()
    assert love_order(summary) == keys
    fig = plot_love(effects.balance)
    denominators = {t.smd_denominator for t in effects.balance.values()}
    assert len(fig.axes) == len(denominators) + 1


def test_love_plot_from_balance_summary(veteran):
    """balance.balance_summary (cobalt bal.tab, long): rows by unadjusted |SMD|, each
    panel's 'before' points on its own denominator (smd_unadjusted)."""
    cohort, _, effects = veteran
    summary = balance_summary(effects, labels=cohort.labels)
    fig = plot_love(summary)
    unadjusted = summary[summary["method"] == "Unadjusted"]
    order = unadjusted.iloc[np.argsort(-unadjusted["smd"].abs().to_numpy(), kind="stable")]
    ticks = sorted(zip(fig.axes[0].get_yticks(), fig.axes[0].get_yticklabels()),
                   key=lambda pair: -pair[0])
    assert [t.get_text().removesuffix(" \u2020") for _, t in ticks] == order["label"].tolist()
    methods = summary[summary["method"] != "Unadjusted"]
    panels = list(dict.fromkeys(methods["smd_denominator"]))
    assert len(fig.axes) == len(panels) + 1
    for ax, denominator in zip(fig.axes, panels):
        assert denominator in ax.get_title()
        rows = methods[methods["smd_denominator"] == denominator]
        rows = rows[rows["method"] == rows["method"].iloc[0]].set_index("label")
        before = next(ln for ln in ax.get_lines() if ln.get_label() == "unadjusted")
        assert np.allclose(before.get_xdata(),
                           rows.loc[order["label"], "smd_unadjusted"].abs(), equal_nan=True)


# ----------------------------------------------------------------------------- curves
def test_patient_counts_hand_checked():
    """Ten patients, weights 3 and 4/3: counts are patients, plateaus one-patient."""
    time = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 30], float)
    event = np.array([1, 0, 1, 0, 1, 0, 1, 0, 1, 0], float)
    w = np.array([3, 3, 3, 3, 3, 4 / 3, 4 / 3, 4 / 3, 4 / 3, 40.0])
    c = patient_counts(time, event, w, [0, 5, 10])
    assert c.at_risk.tolist() == [10, 6, 1] and c.events.tolist() == [0, 3, 5]
    # after the last death (t = 9) the one patient left carries all the weight, 9 -> 30
    # months: a plateau; after t = 7, 40 of 40 + 4/3 + 4/3 (> 0.5) but only 7 -> 9 long.
    assert c.plateaus == ((9.0, 30.0, 1.0),)
    assert patient_counts(time, event, np.where(time == 30, 1.0, w), [0]).plateaus == (
        (9.0, 30.0, 1.0),)
    assert patient_counts(time, np.zeros(10), w, [0, 5]).plateaus == ()


def test_weighted_risk_table_says_weighted_and_shows_patients(veteran):
    cohort, crude, effects = veteran
    figs = figures.adjust_figures(effects, cohort)
    fig = render.build(figs["adjusted_km_iptw_ate"][0])
    text = _texts(fig)
    assert table_titles(True, True)[0] in text and table_titles(True, True)[1] in text
    assert "weighted (sum of weights)" in text and "patients (unweighted)" in text
    # each weighted cell carries the patients at risk in brackets
    curve = effects.curves[1]
    w = effects.weights["ATE"].weights
    tx = cohort.treated == 1
    times = figures.risk_times_for([curve.treated, curve.control], cohort.labels.time_unit)
    c = patient_counts(cohort.time[tx], cohort.event[tx], w[tx], times)
    first = f"{curve.treated.n_at_risk(times)[0]:.1f} ({c.at_risk[0]})"
    assert first in text and c.at_risk[0] == int(tx.sum())
    crude_fig = plot_km(crude.arms.curves, risk_times=times)
    assert "Number at risk (patients, unweighted)" in _texts(crude_fig)
    assert "Cumulative events (patients, unweighted)" in _texts(crude_fig)
    assert "weighted (sum of weights)" not in _texts(crude_fig)
    assert "(%)" in text and "100%" in text


def test_registry_scale_curve_draws_event_steps_and_few_censor_marks():
    rng = np.random.default_rng(20250710)
    n = 100_000
    time = np.round(rng.exponential(30.0, n), 3)
    event = (rng.random(n) < 0.3).astype(float)
    km = kaplan_meier(time, event, label="all")
    fig = plot_km([km], ci=True)
    lines = fig.axes[0].get_lines()
    censor = [ln for ln in lines if ln.get_marker() == "+" and len(ln.get_xdata())]
    assert len(censor) == 1 and 0 < len(censor[0].get_xdata()) <= MAX_CENSOR_MARKS
    assert "at most 200 per curve" in _texts(fig)
    pick, x, y = step_points(km)
    assert x.size <= MAX_STEPS + 2 < km.time.size
    step = next(ln for ln in lines if ln.get_drawstyle() == "steps-post")
    assert len(step.get_xdata()) == x.size
    assert np.array_equal(y[1:], km.surv[pick]) and np.array_equal(x[1:], km.time[pick])
    # merged steps lie within one slice of follow-up: S drawn at t is S(t - slice)..S(t)
    slice_width = km.time[-1] / MAX_STEPS
    drawn = y[np.searchsorted(x, km.time, side="right") - 1]
    lagged = km.surv[np.maximum(np.searchsorted(km.time, km.time - slice_width) - 1, 0)]
    assert np.all(drawn <= lagged + 1e-12) and np.all(drawn >= km.surv - 1e-12)


def test_small_curve_steps_at_every_event_time():
    rng = np.random.default_rng(7)
    time = np.round(rng.exponential(30.0, 500), 1)
    event = (rng.random(500) < 0.5).astype(float)
    km = kaplan_meier(time, event)
    _, x, y = step_points(km)
    assert x.size == int((km.n_event > 0).sum()) + 2
    # the event-time steps are the curve: S at every distinct time is read off them
    idx = np.searchsorted(x, km.time, side="right") - 1
    assert np.array_equal(y[idx], km.surv)


# ----------------------------------------------------------------------------- sensitivity
def test_specification_curve_shading_markers_and_medians(bundled):
    _, _, _, sensitivity = bundled
    grid = sensitivity.grid
    fig = plot_specification_curve(grid, provenance=sensitivity.label)
    curve, _, medians = fig.axes
    labels = curve.get_legend_handles_labels()[1]
    assert any(lab.startswith("balanced (max |SMD| <= 0.1)") for lab in labels)
    families = set(grid.estimable_rows["family"])
    assert sum(any(lab.startswith(f) for f in families) for lab in labels) >= 2
    rows = grid.estimable_rows.sort_values("hr", kind="stable").reset_index(drop=True)
    table = choice_medians(rows, [("family", f) for f in dict.fromkeys(rows["family"])])
    for r in table.itertuples():
        assert r.median == pytest.approx(rows.loc[rows["family"] == r.level, "hr"].median())
    assert "RECONSTRUCTED PSEUDO-DATA" in _texts(fig)
    assert "median HR (IQR) per level" in medians.get_title()


def test_tipping_point_targets_the_crude_hr_too(bundled):
    _, _, effects, sensitivity = bundled
    crude = next(e for e in effects.estimates if e.method == "crude")
    contour = figures.crude_contour(sensitivity, sensitivity.tipping_contour)
    assert contour.hr == crude.hr and contour.ci_upper == crude.ci_upper
    assert sorted(set(contour.table["hr_u"])) == sorted(
        set(sensitivity.tipping_contour.table["hr_u"]))
    fig = render.build(figures.sensitivity_figures(sensitivity)["tipping_point"][0])
    assert len(fig.axes) == 2
    assert f"crude HR {crude.hr:.2f}" in fig.axes[1].get_title()


def test_bundled_and_public_figures_all_build_with_provenance(bundled, veteran, tmp_path):
    cohort, crude, effects, sensitivity = bundled
    study = report_extras(cohort)
    figs = {**figures.crude_figures(crude, cohort, study=study),
            **figures.adjust_figures(effects, cohort, study=study),
            **figures.sensitivity_figures(sensitivity)}
    for stem in ("love_plot", "ps_overlap", "forest_plot", "adjusted_km_psm_att",
                 "specification_curve", "tipping_point", "subgroups"):
        assert stem in figs
    for stem, fig in _built(figs).items():
        assert isinstance(fig, Figure) and fig.axes, stem
        assert "RECONSTRUCTED PSEUDO-DATA" in _texts(fig), stem
    v_cohort, v_crude, v_effects = veteran
    for stem, fig in _built({**figures.crude_figures(v_crude, v_cohort),
                             **figures.adjust_figures(v_effects, v_cohort)}).items():
        assert isinstance(fig, Figure) and fig.axes, stem
        assert "PSEUDO" not in _texts(fig), stem


def test_builder_with_nothing_to_draw_writes_nothing(tmp_path, monkeypatch):
    figs = {"empty": (lambda: None, "nothing"), "one": (Figure, "one figure")}
    paths, captions = render.render_figures(figs, tmp_path, "png", workers=1)
    assert paths == [tmp_path / "one.png"] and captions == [("one", "one figure")]
    monkeypatch.setenv(render.WORKERS_ENV, "1")
    assert render.default_workers(50) == 1
