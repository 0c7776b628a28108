"""The one-command report: files, provenance, the run record, and a real browser."""

import json
import re
import shutil
import subprocess

import pandas as pd
import pytest

from causal_hcc.cli import main
from causal_hcc.data import bundled_cohort_path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    code = main(["report", "--bootstrap", "40", "--out", str(out), "--formats", "png",
                 "--quiet", "--jobs", "1"])
    assert code == 0
    return out


def test_report_files_and_run_record(report_dir):
    html = (report_dir / "report.html").read_text()
    for section in ("Data provenance", "Plain-language summary", "What was checked",
                    "Paper vs reproduced", "Crude survival analyses", "Propensity-score model",
                    "Balance", "Adjusted hazard ratios", "Adjusted survival curves",
                    "Sensitivity analyses", "Reporting checklist"):
        assert f"<h2>{section}" in html, section
    assert "class='banner'>RECONSTRUCTED PSEUDO-DATA" in html
    assert "http://" not in html and "https://" not in html  # nothing to fetch
    n_img = len(re.findall(r"<img ", html))
    assert n_img >= 10 and n_img == html.count("src='data:image/png;base64,")
    run = json.loads((report_dir / "run.json").read_text())
    assert run["data_sha256"] and run["reconstructed"] is True and run["seconds"] > 0
    assert run["options"]["adjust"]["bootstrap"] == 40 and run["seeds"]["bootstrap"] == 20250710
    md = (report_dir / "report.md").read_text()
    assert "RECONSTRUCTED PSEUDO-DATA" in md and "![Love plot" in md
    for name in ("crude.json", "effects.json", "sensitivity.json", "balance.csv",
                 "paper_vs_reproduced.csv"):
        assert (report_dir / name).exists(), name


def test_report_on_a_second_dataset_through_a_mapping(tmp_path, capsys):
    frame = pd.read_csv(bundled_cohort_path()).rename(columns={
        "os_months": "OS_time", "death": "vital", "local_therapy": "LocalTx", "ecog": "PS"})
    frame["vital"] = frame["vital"].map({0: "alive", 1: "dead"})
    frame.to_csv(tmp_path / "site.csv", index=False)
    (tmp_path / "map.toml").write_text(
        '[columns]\nos_months = "OS_time"\ndeath = "vital"\nlocal_therapy = "LocalTx"\n'
        'ecog = "PS"\n[values.death]\nalive = 0\ndead = 1\n')
    (tmp_path / "options.toml").write_text("[adjust]\nbootstrap = 0\n[sensitivity]\n"
                                           "run = false\n")
    code = main(["report", "--data", str(tmp_path / "site.csv"), "--mapping",
                 str(tmp_path / "map.toml"), "--config", str(tmp_path / "options.toml"),
                 "--out", str(tmp_path / "out"), "--formats", "png", "--quiet"])
    assert code == 0, capsys.readouterr().err
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Patient-level data supplied by the user" in html and "banner" not in html.split(
        "<body>")[1].split("Plain-language")[0]


# A small script is injected into a COPY of the report (the report itself has none): it
# checks that every image decoded and writes the result into the title for --dump-dom.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.title = 'IMAGES ' + (imgs.length - bad) + '/' + imgs.length;
});
</script></body>"""


@pytest.mark.skipif(CHROMIUM is None, reason="no headless browser here: install Debian's "
                    "chromium to run this check (.ci/run does)")
def test_report_renders_in_a_real_browser(report_dir):
    probe = report_dir / "probe.html"
    probe.write_text((report_dir / "report.html").read_text().replace("</body>", PROBE))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={report_dir / 'chrome-profile'}",
             "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    title = re.search(r"<title>IMAGES (\d+)/(\d+)</title>", dom.stdout)
    assert title, dom.stderr[-2000:]
    assert title.group(1) == title.group(2) and int(title.group(2)) >= 10
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    shot = report_dir / "report_screenshot.png"
    subprocess.run([CHROMIUM, *flags, "--window-size=1200,2000", f"--screenshot={shot}",
                    (report_dir / "report.html").as_uri()], capture_output=True, timeout=120)
    assert shot.stat().st_size > 10_000
