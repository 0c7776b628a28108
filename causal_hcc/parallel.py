"""Embarrassingly parallel work: the same function over many tasks, locally or on Dask.

:func:`run_parallel` is the one place the package decides where work runs: a plain loop
(``jobs=1``), joblib's process pool (loky) on this machine, or joblib's Dask backend on a
Dask cluster when a scheduler address is given (``pip install "causal_hcc[dask]"``).
Results come back in task order whatever the backend, and no randomness is drawn here:
callers draw every seed before dispatching, so the output does not depend on ``jobs``,
the backend or the order in which tasks finish.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

DASK_EXTRA = 'pip install "causal_hcc[dask]"  (dask[distributed])'


def run_parallel(function: Callable, tasks: Iterable, *, jobs: int = 1,
                 dask_address: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> list:
    """``[function(task) for task in tasks]``, run serially, on local processes or on Dask.

    Parameters
    ----------
    function : callable
        Called with one task; must be picklable (a module-level function, or a
        ``functools.partial`` of one) when ``jobs != 1`` or on Dask.
    tasks : iterable
        Arguments, one per call. Keep tasks coarse (e.g. a block of bootstrap replicates
        each): every task costs a round trip to a worker.
    jobs : int
        Local worker processes (joblib ``n_jobs``: -1 = all cores). 1 runs in this
        process. Ignored when ``dask_address`` is given: Dask then spreads the tasks
        over all of the cluster's workers.
    dask_address : str, optional
        Address of a running Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"``. Needs the
        optional ``dask`` extra; the workers need causal_hcc installed.
    progress : callable, optional
        Called as ``progress(done, total)`` in this process after each finished task, in
        task order.

    Returns
    -------
    list
        One result per task, in task order.

    Raises
    ------
    ImportError
        ``dask_address`` given but dask.distributed is not installed.
    """
    tasks = list(tasks)
    total = len(tasks)
    if dask_address is None and (jobs == 1 or total <= 1):
        results = []
        for task in tasks:
            results.append(function(task))
            if progress is not None:
                progress(len(results), total)
        return results
    if dask_address is not None:
        return _run_dask(function, tasks, dask_address, progress)
    return _run_joblib(function, tasks, progress, n_jobs=jobs, backend="loky")


def _run_joblib(function, tasks, progress, **parallel_kwargs) -> list:
    from joblib import Parallel, delayed
    # return_as="generator" yields results in task order as they become available, so
    # progress can be reported while the pool works.
    stream = Parallel(return_as="generator", **parallel_kwargs)(
        delayed(function)(task) for task in tasks)
    results = []
    for result in stream:
        results.append(result)
        if progress is not None:
            progress(len(results), len(tasks))
    return results


def _run_dask(function, tasks, address: str, progress) -> list:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ImportError(f"A Dask scheduler address was given ({address}) but "
                          f"dask.distributed is not installed: {DASK_EXTRA}.") from exc
    from joblib import parallel_config
    # Our own client, closed afterwards; it does not shut the cluster down.
    with Client(address, set_as_default=False) as client:
        with parallel_config(backend="dask", client=client):
            return _run_joblib(function, tasks, progress, n_jobs=-1)
