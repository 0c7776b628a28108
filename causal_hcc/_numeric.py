"""Small numerical helpers shared by the estimators."""

import math
from functools import lru_cache

import numpy as np
import pandas as pd
from scipy import stats


@lru_cache(maxsize=16)
def z_value(conf_level: float) -> float:
    """Two-sided normal critical value, e.g. 1.959964 for 0.95 (cached: hot loops)."""
    return float(stats.norm.ppf(0.5 + conf_level / 2))


def to_jsonable(obj):
    """Plain Python containers and numbers for JSON: NaN and infinities become None.

    numpy scalars and arrays become Python numbers and lists, DataFrames lists of
    records, pandas' missing markers None; anything else unknown is written as text.
    """
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, pd.DataFrame):
        return to_jsonable(obj.to_dict(orient="records"))
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    if obj is None or isinstance(obj, str):
        return obj
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def row_sum(values: np.ndarray) -> np.ndarray:
    """Sum over the last axis of a 2-D array, the same way for every row.

    C order makes numpy sum each row identically whatever the number of rows, so a
    replicate's result does not depend on the batch it is computed in.
    """
    return np.ascontiguousarray(values).sum(axis=1)
