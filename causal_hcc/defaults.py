"""Package defaults in one place: seeds, landmarks, horizons, thresholds.

Every stage, the CLI and the configuration file read their defaults from here, so that
``report``, ``sensitivity`` and ``adjust`` give the same numbers for the same data.
"""

from __future__ import annotations

from causal_hcc.data.units import DAYS_PER_UNIT

#: The one default seed (bootstrap, random matching orders, the specification grid).
SEED = 20250710
N_BOOT = 1000
CALIPER_SD = 0.2
SMD_THRESHOLD = 0.1
CONF_LEVEL = 0.95
#: Landmark candidates in years; those within the follow-up are used by default.
LANDMARK_YEARS = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0)
#: At most this many default landmarks (the latest ones within follow-up are kept).
MAX_LANDMARKS = 4


def _in_unit(years: float, unit: str) -> float:
    value = years * 365.25 / DAYS_PER_UNIT[unit]
    # Round to the unit's natural grid: 12 months, 52 weeks, 365 days, 1 year.
    return float({"months": round(value), "weeks": round(value), "days": round(value),
                  "years": value}[unit])


def default_landmarks(time, unit: str = "months") -> tuple[float, ...]:
    """Landmark times for survival tables: round years within the observed follow-up.

    The candidates are 0.5, 1, 2, 3, 5 and 10 years in the data's unit (6, 12, 24, 36, 60,
    120 months; 365, 730 ... days); those not beyond the longest observed time are kept,
    at most four, preferring whole years. With shorter follow-up, the quartiles of the
    observed times.
    """
    import numpy as np  # here, not at the top: the CLI reads SEED before numpy is needed
    time = np.asarray(time, float)
    longest = float(np.nanmax(time)) if time.size else 0.0
    fits = [_in_unit(y, unit) for y in LANDMARK_YEARS if _in_unit(y, unit) <= longest]
    if len(fits) > MAX_LANDMARKS:
        fits = [t for t in fits if t != _in_unit(0.5, unit)][:MAX_LANDMARKS]
    if fits:
        return tuple(fits)
    q = np.quantile(time, [0.25, 0.5, 0.75]) if time.size else []
    return tuple(float(f"{v:.3g}") for v in q if v > 0)


def default_horizons(time, treated, unit: str = "months") -> tuple[float, ...]:
    """RMST horizons: the two latest default landmarks that both arms' follow-up reaches."""
    import numpy as np
    time, treated = np.asarray(time, float), np.asarray(treated).astype(bool)
    if not treated.any() or treated.all():
        return ()
    reach = min(time[treated].max(), time[~treated].max())
    marks = [t for t in default_landmarks(time, unit) if t <= reach]
    return tuple(marks[-2:])
