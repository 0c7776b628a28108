"""Figures to files: only the figures asked for are built, in worker processes where it
pays, with the same bytes whatever the number of workers.

A stage's figures arrive as ``{stem: (builder, caption)}`` (:mod:`.figures`). With no
format nothing is built. With several figures and a platform that forks, the builders are
run by a pool of forked workers: the children inherit the results in memory (nothing is
pickled but the stem and the file names), each builds and writes its figures, and the
parent collects the paths in the stems' order. A figure is drawn by the same code on the
same data in either case, so its file is byte-identical with 1 or N workers.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from causal_hcc.reporting.style import parse_formats, save_figure

#: Worker processes at most; rendering is CPU-bound and a report has about 15 figures.
MAX_WORKERS = 4
#: Fewer figures than this are drawn in-process (forking costs more than it saves).
MIN_FIGURES_FOR_POOL = 4
#: Environment variable that sets the number of workers (1: no pool), e.g. for a
#: benchmark or a machine whose cores are busy.
WORKERS_ENV = "CAUSAL_HCC_FIGURE_WORKERS"

# The builders of the stage being rendered, inherited by the forked workers.
_PENDING: dict = {}


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # macOS, Windows
        return os.cpu_count() or 1


def default_workers(n_figures: int) -> int:
    """Workers for ``n_figures``: :data:`WORKERS_ENV` if set; 1 without fork or below
    :data:`MIN_FIGURES_FOR_POOL`; else the CPUs available, at most :data:`MAX_WORKERS`
    and half the figures."""
    if os.environ.get(WORKERS_ENV, "").strip().isdigit():
        return max(1, int(os.environ[WORKERS_ENV]))
    if n_figures < MIN_FIGURES_FOR_POOL or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return max(1, min(available_cpus(), MAX_WORKERS, n_figures // 2))


def build(builder):
    """The Figure of a builder (a Figure, or None, passes through)."""
    return builder() if callable(builder) else builder


def _render(task) -> list[str]:
    stem, path_stem, formats = task
    fig = build(_PENDING[stem])
    if fig is None:   # a builder may find nothing to draw (e.g. too few patients)
        return []
    return [str(p) for p in save_figure(fig, path_stem, formats)]


def render_figures(figs: dict, out_dir, formats, *, workers: int | None = None
                   ) -> tuple[list[Path], list]:
    """Build and save ``{stem: (builder, caption)}`` as ``out_dir/stem.<fmt>``.

    Parameters
    ----------
    figs : dict
        Stem -> (builder or Figure, caption), in reading order.
    formats : str or sequence
        As :func:`~causal_hcc.reporting.style.parse_formats`; ``"none"`` builds nothing.
    workers : int, optional
        Worker processes (1: in this process); default :func:`default_workers`.

    Returns
    -------
    (paths, captions)
        Files written in the stems' order, and [(stem, caption)] of the figures written
        (empty with no format; a builder that returns None writes no file and no caption).
    """
    fmts = parse_formats(formats)
    if not fmts or not figs:
        return [], []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(stem, out_dir / stem, fmts) for stem in figs]
    workers = default_workers(len(tasks)) if workers is None else max(1, int(workers))
    global _PENDING
    _PENDING = {stem: builder for stem, (builder, _) in figs.items()}
    try:
        if workers == 1 or len(tasks) < 2:
            results = [_render(t) for t in tasks]
        else:
            with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
                results = pool.map(_render, tasks, chunksize=1)
    finally:
        _PENDING = {}
    return ([Path(p) for paths in results for p in paths],
            [(stem, caption) for (stem, (_, caption)), paths in zip(figs.items(), results)
             if paths])
