"""The paper's Table 3 in package convention: the Cox terms and their cut-offs.

Hepatitis keeps the paper's direction (no vs yes); cirrhosis, oligometastasis and local
therapy are reversed relative to the paper's HRs, whose direction each row keeps in
``hr_paper`` for comparison (audit.md C1). The cut-offs (age > 50 years, extrahepatic
diameter > 2 cm) are the paper's; they apply to this study only.
"""

from __future__ import annotations

from causal_hcc.survival.cox_table import CoxVariable

TABLE3_VARIABLES: tuple[CoxVariable, ...] = (
    CoxVariable("sex", "sex", "sex", "female", "male", True, "==", "female"),
    CoxVariable("age", "age", "age", ">50 years", "<=50 years", True, ">", 50),
    CoxVariable("hepatitis", "hepatitis", "hepatitis", "no", "yes", True, "==", 0),
    CoxVariable("cirrhosis", "cirrhosis", "cirrhosis", "yes", "no", False, "==", 1),
    CoxVariable("ecog_ps", "ecog", "ECOG PS", "1", "0", True, "==", 1),
    CoxVariable("child_pugh_class", "child_pugh", "Child-Pugh class", "B", "A", True, "==", "B"),
    CoxVariable("afp", "afp_positive", "AFP", "positive", "negative", True, "==", 1),
    CoxVariable("intrahepatic_milan", "milan_within", "intrahepatic lesions",
                "within Milan criteria", "beyond Milan criteria", True, "==", 1),
    CoxVariable("intrahepatic_ccr", "intrahepatic_ccr", "intrahepatic cCR", "yes", "no", True,
                "==", 1),
    CoxVariable("extrahepatic_max_diameter", "extrahepatic_max_diameter_cm",
                "maximum extrahepatic lesion diameter", ">2 cm", "<=2 cm", True, ">", 2),
    CoxVariable("oligometastasis", "oligometastatic", "oligometastasis", "yes", "no", False,
                "==", 1),
    CoxVariable("local_therapy", "local_therapy", "local therapy", "yes", "no", False, "==", 1),
)
"""Table 3 in package convention (see the module docstring)."""


