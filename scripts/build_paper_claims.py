"""Rebuild causal_hcc/studies/yang2025/paper_claims.json from the paper's targets (targets.json copy).

Run after changing causal_hcc/paper_claims.py or causal_hcc/data/paper_targets.json:
    python scripts/build_paper_claims.py
"""

import json
from pathlib import Path

from causal_hcc.studies.yang2025.paper_claims import build_claims

out = Path(__file__).resolve().parents[1] / "causal_hcc" / "studies" / "yang2025" / "paper_claims.json"
out.write_text(json.dumps(build_claims(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
print(f"wrote {out}")
