"""``python -m causal_hcc.cli``: the same as ``causal-hcc``."""

from causal_hcc.cli.main import run

run()
