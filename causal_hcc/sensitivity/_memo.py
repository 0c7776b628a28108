"""Work shared within one run_sensitivity: grid rows computed once; one BLAS thread.

Within one :func:`causal_hcc.sensitivity.run_sensitivity` the same specification meets the
same data more than once: the specification grid's default PSM and IPTW rows are the
vascular-invasion what-if's rows at the reconstructed count, and that what-if draws the
same flipped patients more than once. :func:`shared_rows` opens a scope in which
:func:`causal_hcc.sensitivity.grid.evaluate_set` looks its rows up by the content of the
data its specifications read (:func:`data_key`) and the specification; a set computed
once is returned again (as copies) instead of refitting its PS model, matching and Cox
models. The rows are those the computation gives on the same inputs: it is deterministic,
and a specification's row does not depend on the other specifications fitted with it (the
PS model is the covariate set's; each Cox model of a batched fit stops on its own
criterion), so a row looked up equals the row recomputed. Rows only are kept (a few hundred bytes each), never
the PS fits' arrays, so the scope costs no memory at registry scale. Outside a scope
(or in a worker process of a parallel grid) nothing is cached.

:func:`small_blas` runs a small cohort's stages on one BLAS thread: their linear algebra is
on matrices of a few rows and columns (PS models, Cox information matrices), where OpenBLAS
handing a 4 x 4 triangular solve to its threads costs more than the solve (0.4-3.6 ms
instead of 0.1 ms on a busy two-core machine). The results do not depend on the number of
threads (tests/test_speed_identity.py).
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar

import numpy as np

from causal_hcc.data.cohort import Cohort

_ROWS: ContextVar[dict | None] = ContextVar("causal_hcc_sensitivity_rows", default=None)
#: Cohorts up to this many patients run their sensitivity stages on one BLAS thread.
SMALL_BLAS_N = 5_000


@contextmanager
def shared_rows():
    """A scope in which grid rows are computed once (nested scopes share the outer one)."""
    if _ROWS.get() is not None:
        yield
        return
    token = _ROWS.set({})
    try:
        yield
    finally:
        _ROWS.reset(token)


def _digest(h, values) -> None:
    """Feed an array's values to the hash: numbers as bytes, anything else by repr (so 1
    and "1" differ) with a separator."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        h.update(np.ascontiguousarray(values).tobytes())
    else:
        h.update("\x1f".join(map(repr, values.tolist())).encode())
    h.update(b"\x1e")


def data_key(cohort: Cohort, covariates) -> bytes:
    """Digest of everything a PS specification on ``covariates`` reads from the cohort.

    Ids (they name patients in the PS model's messages), time, event, arm, the covariate
    columns present (values and dtype), their levels and kinds, the treatment column's
    name and the arm labels.
    """
    h = hashlib.sha256()
    present = [c for c in dict.fromkeys(covariates) if c in cohort.data]
    lab = cohort.labels
    h.update(repr((cohort.roles.treatment, lab.comparison, lab.treated, lab.control,
                   tuple(covariates), [(c, str(cohort.data[c].dtype), cohort.levels.get(c),
                                        cohort.kinds.get(c)) for c in present])).encode())
    for values in (cohort.ids, cohort.time, cohort.event, cohort.treated):
        _digest(h, values)
    for c in present:
        _digest(h, cohort.data[c].to_numpy())
    return h.digest()


def memo() -> dict | None:
    """The current scope's rows, (data key, specification) -> row; None outside a scope."""
    return _ROWS.get()


def small_blas(n: int):
    """One BLAS thread for a cohort of ``n`` <= :data:`SMALL_BLAS_N` patients (a no-op
    context beyond, where threads pay for themselves)."""
    if n > SMALL_BLAS_N:
        return nullcontext()
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency
    return threadpool_limits(limits=1, user_api="blas")
