"""Render a report's first screen (and optionally its PDF print) with headless chromium.

    python scripts/screenshot_report.py [REPORT_HTML] [--out report_first_screen.png]
                                        [--pdf report.pdf]

Without REPORT_HTML, runs ``causal-hcc report`` on the bundled reconstructed pseudo-cohort
(RECONSTRUCTED PSEUDO-DATA; 200 bootstrap replicates, seed fixed) into a temporary
directory first. The screenshot is the top 1280 x 1500 CSS pixels of the page (the
verdict, the estimand table and the forest plot). With ``--pdf``, also prints the page to
PDF as a browser does and reports the page count and the report's size in bytes. Needs
``chromium`` (Debian: apt-get install chromium).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--virtual-time-budget=5000"]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("chromium not found: apt-get install -y chromium")
    return found


def make_report(out_dir: Path) -> Path:
    cli = "import sys; from causal_hcc.cli import main; sys.exit(main(sys.argv[1:]))"
    subprocess.run([sys.executable, "-c", cli, "report", "--out", str(out_dir),
                    "--bootstrap", "200", "--formats", "png", "--quiet"], check=True,
                   cwd=ROOT)
    return out_dir / "report.html"


def screenshot(html: Path, png: Path, profile: Path, size=(1280, 1500)) -> None:
    subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}",
                    f"--window-size={size[0]},{size[1]}", f"--screenshot={png}",
                    html.resolve().as_uri()], check=True, capture_output=True, timeout=180)


def print_pdf(html: Path, pdf: Path, profile: Path) -> int:
    """Print to PDF as the browser does (A4 from the report's print CSS); the page count."""
    subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}",
                    "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                    html.resolve().as_uri()], check=True, capture_output=True, timeout=180)
    return page_count(pdf)


def page_count(pdf: Path) -> int:
    """Pages of a PDF: pypdf when installed, else the /Type /Page objects."""
    try:
        from pypdf import PdfReader
        return len(PdfReader(str(pdf)).pages)
    except ImportError:
        return len(re.findall(rb"/Type\s*/Page(?!s)", pdf.read_bytes()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "report_first_screen.png")
    parser.add_argument("--pdf", type=Path)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        html = args.html or make_report(tmp / "report")
        screenshot(html, args.out, tmp / "profile")
        print(f"first screen: {args.out}")
        if args.pdf:
            pages = print_pdf(html, args.pdf, tmp / "profile")
            print(f"printed: {args.pdf}, {pages} pages; report.html {html.stat().st_size} "
                  "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
