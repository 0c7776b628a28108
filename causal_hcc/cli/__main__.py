"""``python -m causal_hcc.cli``: the same as ``causal-hcc``."""

import sys

from causal_hcc.cli.main import main

sys.exit(main())
