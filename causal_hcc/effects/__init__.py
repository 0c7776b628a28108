"""Effects stage: matched and weighted Cox models, adjusted curves, bootstrap, the driver."""

from causal_hcc.effects.adjust import EffectsReport, adjust
from causal_hcc.effects.curves import AdjustedCurves, rmst
from causal_hcc.effects.estimate import (IPTW_ESTIMANDS, EffectEstimate, cox_effect,
                                         estimate_effects)

__all__ = ["AdjustedCurves", "EffectEstimate", "EffectsReport", "IPTW_ESTIMANDS", "adjust",
           "cox_effect", "estimate_effects", "rmst"]
