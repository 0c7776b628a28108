"""Figures to files: only the figures asked for are built, in worker processes where it
pays, with the same bytes whatever the number of workers.

A stage's figures arrive as ``{stem: (builder, caption)}`` (:mod:`.figures`). With no
format nothing is built. With several figures and a platform that forks, the builders are
run by a pool of forked workers: the children inherit the results in memory (nothing is
pickled but the stem and the file names), each builds and writes its figures, and the
parent collects the paths in the stems' order. A figure is drawn by the same code on the
same data in either case, so its file is byte-identical with 1 or N workers.

Figures can also start before the command has finished computing (:func:`prerender`): a
batch of figures whose data are final is handed to forked workers, which draw while the
parent goes on (e.g. with the bootstrap); :func:`render_figures` later takes those stems
from the batch instead of drawing them again. A command that fails discards its staged
folder; the workers of an unfinished batch are terminated at exit. A batch given as a
picklable factory goes to the command's figure host when one runs
(:mod:`.figure_host`), whose workers have matplotlib loaded already.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
from dataclasses import dataclass
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


@dataclass
class _Batch:
    """Figures being drawn ahead by forked workers (:func:`prerender`)."""

    out_dir: Path
    formats: tuple
    stems: tuple
    pool: object            # the batch's own pool (None: drawn by the figure host)
    result: object          # AsyncResult (or HostBatch) of the list of paths per stem

    def paths(self) -> dict:
        """stem -> paths written, waiting for the workers; the pool is then closed."""
        try:
            return dict(zip(self.stems, self.result.get()))
        finally:
            if self.pool is not None:
                self.pool.close()
                self.pool.join()


# Batches started by prerender and not yet collected by render_figures.
_BATCHES: list[_Batch] = []


def _terminate_batches() -> None:
    while _BATCHES:
        pool = _BATCHES.pop().pool
        if pool is not None:   # the host's batches stop with the host
            pool.terminate()


atexit.register(_terminate_batches)


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


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def _warm_matplotlib() -> None:
    """Import matplotlib's Agg machinery in this process before forking, so that every
    worker shares it instead of importing it again (about 0.4 s each)."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def prerender(figs, out_dir, formats, *, workers: int | None = None,
              stems=None) -> list[str]:
    """Start drawing ``{stem: (builder, caption)}`` into ``out_dir`` in forked workers and
    return at once; :func:`render_figures` with the same folder and formats collects them.

    ``figs`` may instead be a factory: a picklable callable of no arguments returning that
    dict. With the command's figure host running (:mod:`.figure_host`) the host's workers
    call it and draw ``stems`` (default: every stem); otherwise it is called here.

    Only figures whose data will not change may be handed over. Without fork, with no
    format, or with one worker (:data:`WORKERS_ENV` = 1) nothing is started and the figures
    are drawn by :func:`render_figures` as usual. Returns the stems started.
    """
    fmts = tuple(parse_formats(formats))
    if callable(figs):
        from causal_hcc.reporting import figure_host
        if fmts and figure_host.running():
            stems = tuple(figs() if stems is None else stems)
            if not stems:
                return []
            out_dir = Path(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            _BATCHES.append(_Batch(out_dir, fmts, stems, None,
                                   figure_host.submit(figs, stems, out_dir, fmts)))
            return list(stems)
        figs = figs()
    if stems is not None:
        figs = {k: v for k, v in figs.items() if k in stems}
    workers = default_workers(max(len(figs), MIN_FIGURES_FOR_POOL)) if workers is None \
        else max(1, int(workers))
    if not fmts or not figs or not can_fork() or workers == 1:
        return []
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _warm_matplotlib()
    global _PENDING
    _PENDING = {stem: builder for stem, (builder, _) in figs.items()}
    try:
        pool = multiprocessing.get_context("fork").Pool(min(workers, len(figs)))
    finally:
        _PENDING = {}
    stems = tuple(figs)
    result = pool.map_async(_render, [(stem, out_dir / stem, fmts) for stem in stems],
                            chunksize=1)
    _BATCHES.append(_Batch(out_dir, fmts, stems, pool, result))
    return list(stems)


# Prerendered figures collected from their batch but not yet asked for:
# (out_dir, formats, stem) -> paths.
_DONE: dict = {}


def _collect(out_dir: Path, fmts: tuple, stems) -> dict:
    """stem -> paths of the prerendered figures among ``stems`` for this folder and these
    formats (waiting for their batches)."""
    for batch in [b for b in _BATCHES if b.out_dir == out_dir and b.formats == fmts
                  and set(b.stems) & set(stems)]:
        _BATCHES.remove(batch)
        _DONE.update({(out_dir, fmts, stem): paths for stem, paths in batch.paths().items()})
    return {stem: _DONE.pop((out_dir, fmts, stem)) for stem in stems
            if (out_dir, fmts, stem) in _DONE}


def forget_prerendered(out_dir, formats, stems) -> None:
    """Wait for the prerendered ``stems`` and drop them, so that :func:`render_figures`
    draws them again (when their data turned out to differ)."""
    _collect(Path(out_dir), tuple(parse_formats(formats)), stems)


def build(builder):
    """The Figure of a builder (a Figure, or None, passes through)."""
    return builder() if callable(builder) else builder


def _render(task) -> list[str]:
    stem, path_stem, formats = task
    fig = build(_PENDING[stem])
    if fig is None:   # a builder may find nothing to draw (e.g. too few patients)
        return []
    return [str(p) for p in save_figure(fig, path_stem, formats)]


def render_made(task) -> list[str]:
    """Draw one stem of a factory's figures (a task of the figure host's workers)."""
    factory, stem, path_stem, formats = task
    fig = build(factory()[stem][0])
    if fig is None:
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
    done = _collect(out_dir, tuple(fmts), figs)
    tasks = [(stem, out_dir / stem, fmts) for stem in figs if stem not in done]
    workers = default_workers(len(tasks)) if workers is None else max(1, int(workers))
    global _PENDING
    _PENDING = {stem: builder for stem, (builder, _) in figs.items()}
    try:
        if workers == 1 or len(tasks) < 2:
            drawn = [_render(t) for t in tasks]
        else:
            with multiprocessing.get_context("fork").Pool(min(workers, len(tasks))) as pool:
                drawn = pool.map(_render, tasks, chunksize=1)
    finally:
        _PENDING = {}
    done.update(zip((t[0] for t in tasks), drawn))
    results = [done[stem] for stem in figs]
    return ([Path(p) for paths in results for p in paths],
            [(stem, caption) for (stem, (_, caption)), paths in zip(figs.items(), results)
             if paths])
