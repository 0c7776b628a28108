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

Start-up: the public names are resolved lazily (PEP 562), so ``import causal_hcc`` and the
CLI's ``--help`` load neither numpy, pandas, scipy nor matplotlib; the first use of a
name imports the module that defines it.
"""

import sys
import types

from causal_hcc.version import __version__

#: Public name -> module defining it (imported on first access).
_LAZY = {
    "adjust": "causal_hcc.api", "cohort": "causal_hcc.api", "crude": "causal_hcc.api",
    "report": "causal_hcc.api", "sensitivity": "causal_hcc.api",
    "Cohort": "causal_hcc.data.cohort", "Labels": "causal_hcc.data.cohort",
    "Roles": "causal_hcc.data.cohort",
    "EffectsReport": "causal_hcc.effects.adjust",
    "EffectEstimate": "causal_hcc.effects.estimate",
    "CrudeResults": "causal_hcc.survival.crude",
}
#: The verbs: ``ch.sensitivity`` is the function even though ``causal_hcc.sensitivity`` is
#: also a subpackage (and ``ch.report`` whatever a future ``causal_hcc.report`` may be).
_VERBS = frozenset({"adjust", "cohort", "crude", "report", "sensitivity"})

__all__ = ["Cohort", "CrudeResults", "EffectEstimate", "EffectsReport", "Labels", "Roles",
           "__version__", "adjust", "cohort", "crude", "report", "sensitivity"]


class _Package(types.ModuleType):
    """The package module, whose verbs no submodule import can shadow.

    Importing a submodule ``causal_hcc.X`` makes the import system ``setattr`` it on this
    package; for a verb's name that would replace the function by the subpackage. Such a
    binding is dropped here (the subpackage stays reachable through ``sys.modules`` and
    ``from causal_hcc.sensitivity import ...``), so the verb resolves lazily as before.
    """

    def __setattr__(self, name, value):
        if name in _VERBS and isinstance(value, types.ModuleType):
            return
        super().__setattr__(name, value)


def __getattr__(name):
    target = _LAZY.get(name)
    if target is None:
        raise AttributeError(f"module 'causal_hcc' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(target), name)
    globals()[name] = value          # cached: later lookups do not come back here
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


sys.modules[__name__].__class__ = _Package
