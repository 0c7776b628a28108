"""Small numerical helpers shared by the estimators."""

from functools import lru_cache

from scipy import stats


@lru_cache(maxsize=16)
def z_value(conf_level: float) -> float:
    """Two-sided normal critical value, e.g. 1.959964 for 0.95 (cached: hot loops)."""
    return float(stats.norm.ppf(0.5 + conf_level / 2))
