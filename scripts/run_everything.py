"""Everything in one run: the same as `causal-hcc report`, from Python.

    python scripts/run_everything.py [DATA_FILE] [--out DIR] [--bootstrap N] [--jobs N]

Writes report.html (self-contained), report.md, every table and figure, and run.json.
"""

import sys

from causal_hcc.cli import main

args = sys.argv[1:]
if args and not args[0].startswith("-"):
    args = ["--data", args[0], *args[1:]]
sys.exit(main(["report", *args]))
