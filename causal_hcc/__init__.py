"""causal_hcc: how much of a published survival benefit survives adjustment for confounding.

For any observational survival study: name the roles of your columns, then

    import causal_hcc as ch
    fit = ch.adjust(df, time="months", event="died", treatment="surgery",
                    covariates=["age", "stage"], n_boot=1000)
    fit.to_frame(); fit.summary()

``ch.crude``, ``ch.adjust``, ``ch.sensitivity`` and ``ch.report`` are the verbs;
``ch.Cohort.from_frame`` validates a frame once for several of them. Without data they run
on the bundled study profile, Yang et al. 2025 (``causal_hcc.studies.yang2025``), whose
cohort is RECONSTRUCTED PSEUDO-DATA (76 pseudo-patients generated from the published
aggregates, not the study's patients).

Pipeline (data flows one way): ``data`` (load, map, validate -> Cohort) -> ``survival``
(KM, log-rank, Cox) -> ``propensity`` -> ``matching`` / ``weighting`` -> ``balance`` ->
``effects`` -> ``sensitivity`` -> ``report``; ``studies`` sit on top.
"""

from causal_hcc.version import __version__  # noqa: E402

# The stage packages ``causal_hcc.sensitivity`` is loaded first so that the verb of the
# same name, bound below, is what ``ch.sensitivity`` stays (a later submodule import does
# not rebind an attribute once the module is loaded).
import causal_hcc.sensitivity  # noqa: E402,F401
from causal_hcc.api import adjust, cohort, crude, report, sensitivity  # noqa: E402
from causal_hcc.data.cohort import Cohort, Labels, Roles  # noqa: E402
from causal_hcc.effects.adjust import EffectsReport  # noqa: E402
from causal_hcc.effects.estimate import EffectEstimate  # noqa: E402
from causal_hcc.survival.crude import CrudeResults  # noqa: E402

__all__ = ["Cohort", "CrudeResults", "EffectEstimate", "EffectsReport", "Labels", "Roles",
           "__version__", "adjust", "cohort", "crude", "report", "sensitivity"]
