"""The report stage: files, provenance, study-only sections, any dataset, a real browser.

Reports are built through the API (``causal_hcc.reporting.write_report``); the CLI's wiring
is tested in test_cli.py.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

from causal_hcc.data import Cohort
from causal_hcc.effects import adjust
from causal_hcc.reporting import (
    Block,
    Section,
    StudyExtras,
    parse_formats,
    write_crude,
    write_report,
)
from causal_hcc.survival import crude_analysis
from tests._fixtures import quiet

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VETERAN = Path(__file__).parent / "reference" / "datasets" / "veteran.csv"
#: Words of the bundled study's paper: none may appear in a report on other data.
PAPER_WORDS = ("Yang", "HCC", "hepatocellular", "local therapy", "extrahepatic", "Table 3",
               "overall survival", "metastas", "Figure 2", "paper")


def _text(path: Path) -> str:
    """A report's text without embedded image data (base64 could contain any word) and
    without the package's own name."""
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", path.read_text())
    return text.replace("causal_hcc", "")


def veteran_cohort(**labels):
    """R survival's veteran: a lung-cancer trial, arms 'test' (trt 2) vs 'standard'."""
    return Cohort.from_frame(pd.read_csv(VETERAN), time="time", event="status",
                             treatment="trt", treated_value=2,
                             covariates=["celltype", "karno", "age", "prior"],
                             time_unit="days", arm_labels=("test", "standard"), **labels)


@pytest.fixture(scope="module")
def veteran():
    cohort = veteran_cohort()
    with quiet():
        return cohort, crude_analysis(cohort), adjust(cohort, n_boot=50)


@pytest.fixture(scope="module")
def report_dir(veteran, tmp_path_factory):
    cohort, crude, effects = veteran
    out = tmp_path_factory.mktemp("veteran_report")
    write_report(cohort, crude, None, effects, out, formats="png",
                 run_info={"seeds": {"bootstrap": effects.settings["seed"]}})
    return out


def test_report_on_another_dataset_has_no_word_of_the_paper(report_dir):
    for name in ("report.html", "report.md"):
        text = _text(report_dir / name)
        found = [w for w in PAPER_WORDS if w.lower() in text.lower()]
        assert not found, (name, found)
        assert "test vs standard (reference)" in text and "68 test, 69 standard" in text
        assert "Observational survival study" in text          # the default title
        assert "RECONSTRUCTED" not in text and "Patient-level data from data frame" in text
    html = (report_dir / "report.html").read_text()
    checklist = html.split("<h2>Reporting checklist")[1]
    assert "<td class='text'>Time zero</td><td class='text'>not stated</td>" in checklist
    assert ("<td class='text'>Outcome</td><td class='text'>not stated (event column "
            "&#x27;status&#x27; = 1") in checklist
    assert "Published vs reproduced" not in html     # no claims check was passed


def test_report_files_and_provenance(report_dir):
    html = (report_dir / "report.html").read_text()
    for section in ("The answer", "Summary in words", "What cannot be estimated",
                    "Balance and effective sample size", "Propensity-score model",
                    "Adjusted survival curves", "Proportional hazards",
                    "Crude survival analyses", "Data and input checks",
                    "Reporting checklist"):
        assert f"<h2>{section}" in html, section
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    n_img = len(re.findall(r"<img ", html))
    assert n_img >= 9 and n_img == html.count("src='data:image/png;base64,")
    assert "![Love plot" in (report_dir / "report.md").read_text()
    for name in ("crude.json", "effects.json", "effects_context.json", "balance.csv",
                 "cox_table.csv", "km_by_arm.png", "km_overall.png", "forest_plot.png"):
        assert (report_dir / name).stat().st_size > 0, name
    assert not (report_dir / "paper_vs_reproduced.csv").exists()
    assert not list(report_dir.glob("*.svg"))                # formats="png"
    from PIL import Image
    for png in report_dir.glob("*.png"):                     # greyscale figures throughout
        with Image.open(png) as image:
            assert image.mode == "L", png.name
    for csv in report_dir.glob("*.csv"):
        assert pd.read_csv(csv)["data_provenance"].eq("Patient-level data from data "
                                                      "frame").all(), csv.name
    context = json.loads((report_dir / "effects_context.json").read_text())
    assert context["arm_labels"] == ["test", "standard"] and context["time_unit"] == "days"
    assert set(pd.read_csv(report_dir / "propensity.csv")["arm"]) == {"test", "standard"}
    assert json.loads((report_dir / "run.json").read_text())["seeds"]["bootstrap"] > 0


def test_labels_reach_the_report(veteran, tmp_path):
    _, crude, effects = veteran
    cohort = veteran_cohort(outcome="death", time_zero="randomisation",
                            title="Veteran lung cancer trial")
    write_report(cohort, crude, None, effects, tmp_path, formats="none")
    md = (tmp_path / "report.md").read_text()
    assert md.startswith("# Veteran lung cancer trial")
    assert "| Time zero | randomisation |" in md and "death from any cause" in md
    assert "128 deaths" in md


def test_formats_none_writes_no_figures(veteran, tmp_path):
    cohort, crude, effects = veteran
    written = write_report(cohort, crude, None, effects, tmp_path, formats="none")
    assert not [p for p in written if p.suffix in (".png", ".svg", ".pdf")]
    assert not list(tmp_path.glob("*.png")) and "<img " not in (tmp_path / "report.html"
                                                                 ).read_text()
    assert "![" not in (tmp_path / "report.md").read_text()
    assert parse_formats("none") == [] and parse_formats(("png", "SVG")) == ["png", "svg"]
    with pytest.raises(ValueError, match="jpg"):
        parse_formats("png,jpg")


class _Check:
    """A stand-in ClaimCheck: what the report reads of one."""

    label = "Patient-level data from data frame"
    manuscript = "A published trial (2000)"
    table = pd.DataFrame([{"id": "n", "description": "patients", "source": "Table 1",
                           "printed": "137", "reproduced": 137.0, "reproduced_text": "137",
                           "tolerance": "exact", "status": "agrees", "note": ""}])

    @property
    def counts(self):
        return {"agrees": 1, "differs": 0, "paper inconsistent": 0, "not estimable": 0}

    def to_frame(self):
        return self.table.copy()


def test_study_extras_and_claims_appear_only_when_given(veteran, tmp_path):
    cohort, crude, effects = veteran
    extra = Figure()
    extra.add_subplot().plot([0, 1], [0, 1])
    study = StudyExtras(name="A trial", figure_names={"km_by_arm": ("figure1", "Figure 1: arms")},
                        figures={"figure9_extra": (extra, "Figure 9: extra")},
                        cox_table_stem="cox_table2", cox_caption="Cox models (Table 2)",
                        provenance_notes=("Reconstructed from the trial's tables.",),
                        sections=(Section("Audit of the trial", (Block("text", "Audited."),)),))
    write_report(cohort, crude, _Check(), effects, tmp_path, formats="png", study=study)
    html = (tmp_path / "report.html").read_text()
    for text in ("Figure 1: arms", "Figure 9: extra", "Cox models (Table 2)",
                 "Reconstructed from the trial", "<h2>Audit of the trial",
                 "<h2>Published vs reproduced", "Claims of A published trial (2000): 1 published"):
        assert text in html, text
    for name in ("figure1.png", "figure9_extra.png", "cox_table2.csv",
                 "paper_vs_reproduced.csv", "paper_vs_reproduced.md"):
        assert (tmp_path / name).exists(), name
    assert not (tmp_path / "km_by_arm.png").exists()
    assert json.loads((tmp_path / "crude.json").read_text())["paper_vs_reproduced"]


def test_write_crude_without_a_claims_check(veteran, tmp_path):
    cohort, crude, _ = veteran
    written = write_crude(crude, None, cohort, tmp_path, formats="svg")
    assert {p.name for p in written} >= {"crude.json", "km_summary.csv", "km_by_arm.svg"}
    assert "paper_vs_reproduced" not in json.loads((tmp_path / "crude.json").read_text())


def test_svg_figures_are_reproducible(veteran, tmp_path):
    cohort, crude, _ = veteran
    first = write_crude(crude, None, cohort, tmp_path / "a", formats="svg")
    second = write_crude(crude, None, cohort, tmp_path / "b", formats="svg")
    svgs = [(a, b) for a, b in zip(first, second) if a.suffix == ".svg"]
    assert svgs and all(a.read_bytes() == b.read_bytes() for a, b in svgs)


# A small script is injected into a COPY of the report (the report itself has none): it
# checks that every image decoded and writes the result into the title for --dump-dom.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.title = 'IMAGES ' + (imgs.length - bad) + '/' + imgs.length;
});
</script></body>"""


BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--enable-logging=stderr",
                 "--v=0", "--virtual-time-budget=5000"]


def render_in_browser(html: str, work_dir: Path, *, min_images: int) -> list[str]:
    """Load ``html`` (with the probe injected) in headless chromium; assert that every
    image decoded (at least ``min_images``) and no console message was logged. Returns
    the flags used (with a profile directory in ``work_dir``)."""
    probe = work_dir / "probe.html"
    probe.write_text(html.replace("</body>", PROBE), encoding="utf-8")
    flags = [*BROWSER_FLAGS, f"--user-data-dir={work_dir / 'chrome-profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=180)
    title = re.search(r"<title>IMAGES (\d+)/(\d+)</title>", dom.stdout)
    assert title, dom.stderr[-2000:]
    assert title.group(1) == title.group(2) and int(title.group(2)) >= min_images
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    return flags


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser here: install Debian's "
                    "chromium to run this check (.ci/run does)")
def test_report_renders_in_a_real_browser(report_dir):
    flags = render_in_browser((report_dir / "report.html").read_text(), report_dir,
                              min_images=9)
    shot = report_dir / "report_screenshot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,2000", f"--screenshot={shot}",
                    (report_dir / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000


class _Sensitivity:
    """A stand-in SensitivityReport: only what the report reads (the real one is tested
    in test_sensitivity_analysis.py; its figures in test_plots via plots.*)."""

    label = "Patient-level data from data frame"
    grid = tipping_contour = benchmarks = subgroups = None

    def to_dict(self):
        return {"label": self.label, "evalues": [
            {"method": "crude", "estimand": None, "evalue_point": 1.1, "evalue_ci": 1.0}]}

    def summary(self):
        return "Sensitivity summary."

    def plain_sentences(self):
        return ["The crude HR is fragile."]


def test_sensitivity_section(veteran, tmp_path):
    cohort, crude, effects = veteran
    write_report(cohort, crude, None, effects, tmp_path, formats="none",
                 sensitivity=_Sensitivity())
    md = (tmp_path / "report.md").read_text()
    # the section is tables and sentences (no text block): the stand-in's E-values
    assert "## Sensitivity analyses" in md and "The crude HR is fragile." in md
    assert "| Crude Cox | " in md and "| 1.10 | 1.00 |" in md
    assert "Sensitivity summary." not in md
    assert (tmp_path / "sensitivity_evalues.csv").exists()
