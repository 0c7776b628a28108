"""The paper's crude survival analyses, side by side with the published numbers.

    python scripts/reproduce_crude.py [DATA_FILE]

Without a file it uses the bundled RECONSTRUCTED pseudo-cohort (not the study's
patients): Kaplan-Meier per arm and subgroup, log-rank tests, landmark OS, medians,
the univariable and multivariable Cox models of Table 3, and the paper-vs-reproduced table.
"""

import argparse

from causal_hcc.claims import load_claims, verify_claims
from causal_hcc.studies import yang2025
from causal_hcc.studies.yang2025 import load
from causal_hcc.survival import crude_analysis

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("data", nargs="?", help="patient-level file (default: bundled cohort)")
args = parser.parse_args()

cohort = load(args.data)
crude = crude_analysis(cohort, yang2025.LANDMARKS, cox_variables=yang2025.table3.TABLE3_VARIABLES)
#         # KM (log-log CIs), log-rank, landmarks, Cox (Efron)
print(crude.summary())
print()
check = verify_claims(cohort, load_claims(yang2025.claims_path()))
#          # the paper's claims, shipped with the package
print(check.summary())
