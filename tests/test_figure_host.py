"""The figure host (causal_hcc.reporting.figure_host): the files it draws are the bytes the
command's own process draws; it stops with the command, collected or not, and a figure
that fails there fails the command with the figure's own error. Cohorts (read-only
mappings included) travel to it pickled; the CLI draws the same files with and without
it."""

import pickle
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

from causal_hcc.cli import main
from causal_hcc.cli.ahead import adjust_figure_set
from causal_hcc.reporting import figure_host, figures, render
from causal_hcc.studies import yang2025
from tests._fixtures import veteran_results

pytestmark = pytest.mark.skipif(not render.can_fork(), reason="the figure host forks")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def veteran():
    return veteran_results()


def _failing_figures():
    def fail():
        raise ValueError("this figure cannot be drawn")
    return {"broken": (fail, "a broken figure")}


def test_cohort_and_labels_survive_pickling():
    cohort = yang2025.load_bundled()
    again = pickle.loads(pickle.dumps(cohort))
    assert again.data.equals(cohort.data) and again.labels == cohort.labels
    assert dict(again.levels) == dict(cohort.levels) and dict(again.kinds) == dict(cohort.kinds)
    assert again.label == cohort.label and again.reconstructed
    with pytest.raises(TypeError):            # still read-only after the round trip
        again.kinds["ecog"] = "numeric"


def test_host_draws_the_bytes_the_command_draws_and_stops(veteran, tmp_path):
    cohort, _, effects = veteran
    figs = figures.adjust_figures(effects, cohort)
    factory = partial(adjust_figure_set, effects, cohort)
    with figure_host.hosting(2) as started:
        assert started and figure_host.running()
        process = figure_host._HOST["process"]
        assert render.prerender(factory, tmp_path / "host", "png",
                                stems=["weights", "love_plot"]) == ["weights", "love_plot"]
        assert render.prerender(factory, tmp_path / "host", "png",
                                stems=["forest_plot"]) == ["forest_plot"]
        hosted, captions = render.render_figures(figs, tmp_path / "host", "png")
        assert not render._BATCHES and not render._DONE
    assert not figure_host.running() and not process.is_alive()
    serial, serial_captions = render.render_figures(figs, tmp_path / "serial", "png",
                                                    workers=1)
    assert captions == serial_captions and len(hosted) == len(figs)
    assert [p.name for p in hosted] == [p.name for p in serial]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(hosted, serial))


def test_host_stops_with_batches_not_collected(veteran, tmp_path):
    cohort, _, effects = veteran
    with figure_host.hosting(2):
        process = figure_host._HOST["process"]
        render.prerender(partial(adjust_figure_set, effects, cohort), tmp_path, "png")
    assert not process.is_alive()
    render._BATCHES.clear()       # what the failed command's exit would drop


def test_a_nested_block_leaves_the_outer_host_running():
    with figure_host.hosting(2):
        outer = figure_host._HOST["process"]
        with figure_host.hosting(2):
            assert figure_host._HOST["process"] is outer
        assert figure_host.running() and outer.is_alive()
    assert not figure_host.running() and not outer.is_alive()


def test_a_figure_failing_in_the_host_raises_its_error(tmp_path):
    with figure_host.hosting(2):
        assert render.prerender(_failing_figures, tmp_path, "png") == ["broken"]
        with pytest.raises(ValueError, match="cannot be drawn"):
            render.render_figures(_failing_figures(), tmp_path, "png")
    assert not render._BATCHES


def test_without_host_a_factory_is_drawn_here(veteran, tmp_path):
    cohort, _, effects = veteran
    assert not figure_host.running()
    factory = partial(adjust_figure_set, effects, cohort)
    assert render.prerender(factory, tmp_path, "png", workers=1) == []
    assert render.prerender(factory, tmp_path, "none") == []
    assert not render._BATCHES


def test_cli_adjust_figures_are_the_same_with_and_without_the_host(tmp_path, monkeypatch):
    common = ["adjust", "--bootstrap", "20", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "host")]) == 0
    assert not figure_host.running()
    monkeypatch.setenv(render.WORKERS_ENV, "1")            # no host, no pool
    assert main(common + ["--out", str(tmp_path / "one")]) == 0
    pngs = sorted(p.name for p in (tmp_path / "one").glob("*.png"))
    assert len(pngs) == 8
    assert sorted(p.name for p in (tmp_path / "host").glob("*.png")) == pngs
    for name in pngs:
        assert (tmp_path / "host" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()


def test_cli_adjust_keeps_the_figures_drawn_ahead(tmp_path, monkeypatch):
    """The bootstrap-free preview's figures are the final ones: none is drawn twice (the
    CLI's own flow on the bundled cohort: preview, bootstrap, then the forest plot)."""
    import causal_hcc.reporting.render as render_module
    forgotten, drawn = [], []
    monkeypatch.setattr(render_module, "forget_prerendered",
                        lambda *a, **k: forgotten.append(a))
    inner = figure_host.submit
    monkeypatch.setattr(figure_host, "submit",
                        lambda factory, stems, *a: drawn.extend(stems) or inner(factory,
                                                                              stems, *a))
    assert main(["adjust", "--bootstrap", "20", "--quiet", "--out", str(tmp_path)]) == 0
    assert not forgotten
    assert sorted(drawn) == sorted(p.stem for p in tmp_path.glob("*.png"))
    assert len(drawn) == 8 and drawn[-1] == "forest_plot"


def test_program_exit_codes_and_flushed_output(monkeypatch):
    """``python -m causal_hcc.cli`` skips the interpreter's teardown (cli.main.run): the
    exit code and every line written still come through."""
    import os

    from causal_hcc.cli import build_parser
    monkeypatch.setenv("COLUMNS", "80")

    def program(*args):
        return subprocess.run([sys.executable, "-m", "causal_hcc.cli", *args], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, check=False,
                              env={**os.environ, "COLUMNS": "80"})
    version = program("--version")
    assert version.returncode == 0 and version.stdout.startswith("causal-hcc ")
    usage = program("adjust", "--no-such-flag")
    assert usage.returncode == 2 and "unrecognized arguments" in usage.stderr
    helped = program("--help")
    assert helped.returncode == 0 and helped.stdout == build_parser().format_help()
