"""The report a reviewer pastes from (issue 13): the first screen, number formats, table of
contents, PH, ESS, "cannot be estimated", print CSS and a real browser, on the bundled
study (through the CLI, with the sensitivity stage) and on a public dataset (veteran)."""

import re
import shutil
from pathlib import Path

import pytest

from causal_hcc.cli import main
from causal_hcc.reporting import format as fmt
from causal_hcc.reporting import write_report
from tests._fixtures import quiet
from tests.test_report import render_in_browser, veteran_cohort

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def bundled(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundled") / "report"
    with quiet():
        assert main(["report", "--out", str(out), "--bootstrap", "20", "--formats", "png",
                     "--quiet"]) == 0
    return out


@pytest.fixture(scope="module")
def veteran(tmp_path_factory) -> Path:
    from causal_hcc.effects import adjust
    from causal_hcc.survival import crude_analysis
    cohort = veteran_cohort()
    out = tmp_path_factory.mktemp("veteran")
    with quiet():
        write_report(cohort, crude_analysis(cohort), None, adjust(cohort, n_boot=20), out,
                     formats="png")
    return out


@pytest.fixture(params=["bundled", "veteran"])
def report(request) -> Path:
    return request.getfixturevalue(request.param)


def _html(out: Path) -> str:
    return (out / "report.html").read_text(encoding="utf-8")


def _visible(html: str) -> str:
    """The text a reader sees: no embedded images, style sheet, tags or SHA-256 digests,
    nor the published numbers quoted verbatim (class 'quote')."""
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    text = re.sub(r"<td class='quote'>.*?</td>", "", text)
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return re.sub(r"\b[0-9a-f]{64}\b", "", text)


def _section(html: str, anchor: str) -> str:
    start = html.index(f"<section id='{anchor}'>")
    return html[start:html.index("</section>", start)]


# ----------------------------------------------------------------------------- first screen
def test_first_screen_order(report):
    html = _html(report)
    body = html[html.index("</nav>"):]
    assert body.index("<section") == body.index("<section id='answer'>")   # answer first
    answer = _section(html, "answer")
    verdict = answer.index("<p class='verdict'>")
    table = answer.index("<table>")
    forest = answer.index("<figure id='fig-forest_plot'>")
    assert verdict < table < forest
    # nothing but the table's note and its folded rows between the table and the forest plot
    between = answer[table:forest]
    assert "<h2" not in between and "<figure" not in between
    verdict_text = re.search(r"<p class='verdict'>(.*?)</p>", answer).group(1)
    assert verdict_text.startswith("Crude HR ") and "cannot be estimated" in verdict_text \
        or "every planned estimate could be computed" in verdict_text
    assert verdict_text.count(". ") == 0          # one sentence
    assert "\u2605 primary" in answer and "<tr class='primary'>" in answer
    for column in ("HR (95% CI)", "Bootstrap 95% CI", "Patients T / C", "ESS T / C",
                   "Worst |SMD|", "Identification", "Crude log HR kept"):
        assert f"<th>{column}</th>" in answer, column


def test_first_screen_numbers_bundled(bundled):
    answer = _section(_html(bundled), "answer")
    # the primary (IPTW ATC): HR 0.50 (0.21-1.22), ESS 9.0 treated / 36.0 control, and
    # 66.4% of the crude log HR (log 0.5029 / log 0.3552) kept
    row = re.search(r"<tr class='primary'>(.*?)</tr>", answer).group(1)
    assert "IPTW (ATC) \u2605 primary" in row and "0.50 (0.21\u20131.22)" in row
    assert "9.0 / 36.0" in row and "66.4%" in row and ">identified<" in row
    assert "Crude HR 0.36 (95% CI 0.17\u20130.73, excludes 1)" in answer
    assert ("IPTW (ATC), identified, keeps 66.4% of the crude log HR: HR 0.50 (95% CI "
            "0.21\u20131.22, includes 1)") in answer
    assert "250 of 1000 specifications" in answer           # what cannot be estimated
    assert "E-value 2.59 for the point estimate" in answer  # fragility


# ----------------------------------------------------------------------------- numbers
def test_number_formats(report):
    text = _visible(_html(report))
    assert not re.findall(r"\b\d+(?:\.\d+)?[eE][+-]?\d+\b", text), "scientific notation"
    # intervals of decimals use an en dash, never a hyphen
    assert not re.findall(r"\b\d+\.\d+-\d+\.\d+\b", text)
    assert re.findall(r"\d\.\d{2}\u2013\d+\.\d{2}", text)
    # P values: 'P = 0.005' or 'P < 0.001' (3 decimals), never 'P = 0.000' or 'p = 1e-05'
    for p in re.findall(r"\bP ([=<>]) (\d+\.\d+)", text):
        assert re.fullmatch(r"\d\.\d{3}", p[1]), p
        assert p != ("=", "0.000") and (p[0] != "<" or p[1] == "0.001"), p
    assert not re.findall(r"\bP=|\bp = \d", text)
    # HRs in the estimand table to 2 decimals, shares as percentages with 1 decimal
    answer = _visible(_section(_html(report), "answer"))
    assert re.findall(r"\b\d+\.\d{2} \(\d+\.\d{2}\u2013\d+\.\d{2}\)", answer)
    assert re.findall(r"-?\d+\.\d%", answer)
    assert not re.findall(r"\b\d+\.\d{3,} \(", answer)


def test_format_module():
    assert fmt.p_value(0.00473) == "P = 0.005" and fmt.p_value(3e-7) == "P < 0.001"
    assert fmt.p_value(0.9999) == "P > 0.999" and fmt.p_value(0.05, prefix=False) == "0.050"
    assert fmt.interval(0.1732, 0.7284) == "0.17\u20130.73"
    assert fmt.interval(-0.12, 0.3) == "-0.12 to 0.30"
    assert fmt.hr_ci(0.3552, 0.1733, 0.7284) == "0.36 (0.17\u20130.73)"
    assert fmt.percent(0.6641) == "66.4%" and fmt.smd(-0.00001) == "0.00"
    assert fmt.cell(1.5e-7) == "0" and fmt.cell(123456.0) == "123456.0"
    assert fmt.time_point(12.0) == "12" and fmt.time_point(1.5) == "1.5"
    assert fmt.tidy_text("HR 0.36 (95% CI 0.17-0.73, P 0.00473); k = 3-8; 2026-12-03; "
                         "P 1.2e-05") == ("HR 0.36 (95% CI 0.17\u20130.73, P = 0.005); "
                                          "k = 3\u20138; 2026-12-03; P < 0.001")
    assert fmt.tidy_text("P=0.0027; without P012 0.25; P001, P002") == \
        "P = 0.003; without P012 0.25; P001, P002"


# ----------------------------------------------------------------------------- form
def test_table_of_contents_links_resolve(report):
    html = _html(report)
    nav = re.search(r"<nav class='toc'.*?</nav>", html, re.S).group(0)
    targets = re.findall(r"href='#([^']+)'", nav)
    ids = re.findall(r"\bid='([^']+)'", html)
    assert len(targets) >= 10 and len(ids) == len(set(ids))
    assert all(t in ids for t in targets)
    assert targets[0] == "answer" and "checklist" in targets
    md = (report / "report.md").read_text()
    assert "1. [The answer](#the-answer)" in md and "## The answer" in md
    assert "| Worst \\|SMD\\| |" in md                # a pipe in a header is escaped


def test_print_css_and_self_contained(report):
    html = _html(report)
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    assert "@media print" in style and "@page" in style
    assert "break-inside:avoid" in style.split("@media print")[1]
    assert "white-space:nowrap" in style                         # numbers never wrap
    assert "http://" not in html and "https://" not in html and "<script" not in html
    assert "<link" not in html and "@import" not in html


def test_ph_section(report):
    ph = _section(_html(report), "ph")
    assert "<h2>Proportional hazards</h2>" in ph and "cox.zph" in ph
    for model in ("Crude Cox", "Multivariable Cox", "IPTW (ATE)", "IPTW (ATO)"):
        assert f">{model}<" in ph, model
    assert "<figure id='fig-ph_schoenfeld'>" in ph
    assert (report / "ph_tests.csv").exists()
    assert "RMST" in ph or "not rejected for any model" in ph


def test_ph_advice_points_to_rmst_when_rejected(bundled):
    ph = _section(_html(bundled), "ph")
    # IPTW ATE: P = 0.015 (tests/reference/ph.R)
    assert "rejected (P &lt; 0.05)" in ph and "RMST" in ph and "landmark" in ph


def test_ess_wherever_weights_are_used(report):
    html = _html(report)
    balance = _section(html, "balance")
    assert "<th>ESS T / C</th>" in balance and "<th>Sum of weights T / C</th>" in balance
    assert "The sum of weights is not a head count" in balance
    assert re.search(r"<th>Weights [^<]+, min\u2013max</th>", balance)
    assert "Balanced (|SMD| \u2264 0.1)" in balance                     # the tally
    assert "<td class='num imb'>" in balance                            # highlighted


def test_ess_numbers_bundled(bundled):
    balance = _section(_html(bundled), "balance")
    row = re.search(r"<td class='text'>IPTW \(ATE\)</td>(.*?)</tr>", balance).group(1)
    # ATE: control ESS 7.3 of 36; weights of the controls 0.53 to 12.80
    assert "22.8 / 7.3" in row and "0.53\u201312.80" in row
    row = re.search(r"<td class='text'>IPTW \(ATT\)</td>(.*?)</tr>", balance).group(1)
    assert "40.0 / 2.4" in row


def test_cannot_be_estimated(report):
    gaps = _section(_html(report), "gaps")
    assert "<h2>What cannot be estimated</h2>" in gaps


def test_cannot_be_estimated_bundled(bundled):
    html = _html(bundled)
    gaps = _section(html, "gaps")
    for text in ("Specification grid: specifications not estimable", ">250<",
                 "quasi-complete separation", "too small, HR not shown",
                 "in one arm only", "left unmatched", "IPTW (ATE): estimand not identified",
                 "P009, P015"):                          # unmatched patients named
        assert text in gaps, text
    # the subgroup the JSON calls uninformative: its PSM HR (1.15, 0.64-2.07) is withheld
    assert "too small to inform (HR withheld)" in _section(html, "sensitivity")
    assert "1.15 (0.64\u20132.07)" not in html


def test_tables_a_person_reads_bundled(bundled):
    html = _html(bundled)
    crude = _section(html, "crude")
    assert "<th>Univariable HR (95% CI)</th>" in crude and "<th>Multivariable P</th>" in crude
    assert "<th>Reproduced HR in the paper&#x27;s direction</th>" in crude
    assert "<th>hr_paper</th>" not in html and "<pre>" not in _section(html, "sensitivity")
    claims = _section(html, "claims")
    statuses = re.findall(r"<tr class='status-([a-z-]+)'>", claims)
    order = {"differs": 0, "inconsistent": 1, "not-estimable": 2, "agrees": 3}
    assert statuses == sorted(statuses, key=order.get) and "agrees" in statuses
    assert "<details><summary>" in claims and "agree within tolerance" in claims
    checklist = _section(html, "checklist")
    for item in ("Why these covariates", "Missing data", "Matching", "Variance estimation",
                 "Software and versions", "STROBE 16a", "RECORD 22.1",
                 "matching algorithm, caliper, ratio, replacement"):
        assert item in checklist, item
    assert re.search(r"numpy \d+\.\d+", checklist) and "Python 3." in checklist


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser here: install Debian's "
                    "chromium to run this check")
def test_bundled_report_renders_in_a_real_browser(bundled, tmp_path):
    render_in_browser(_html(bundled), tmp_path, min_images=10)
