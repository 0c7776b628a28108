"""The figure host: a process forked once per command that draws its figures.

Loading matplotlib and the plotting code costs about 0.6 s of CPU. A command that will
draw figures forks the host after importing its own modules (which the host then shares)
and goes on reading and computing while the host imports matplotlib
(:data:`HOST_PRELOAD`) on another core and forks its drawing workers. Whenever a set of
figures has final data, the command sends the host a *factory*: a picklable callable of
no arguments, e.g. ``partial(adjust_figure_set, effects, cohort)``, that returns
``{stem: (builder, caption)}``, with the stems to draw; the workers call it and draw
those stems while the command goes on. The results travel pickled and the drawing code is
the same, so a file is byte-identical to one drawn in the command's own process.

The host lives for one command (:func:`hosting`): when the command ends, or fails, it
stops and takes its workers with it; if the command's process dies, the host reads the
end of its pipe and stops too.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import threading
from contextlib import contextmanager
from pathlib import Path

#: Modules the host imports before it forks its workers: matplotlib's Agg backend, PIL's
#: PNG writer and the plotting code.
HOST_PRELOAD = ("matplotlib.backends.backend_agg", "matplotlib.figure", "PIL.PngImagePlugin",
                "causal_hcc.reporting.plots", "causal_hcc.reporting.figures")
#: Seconds the command waits for the host to stop before terminating it.
STOP_TIMEOUT = 10.0

_HOST: dict = {}      # "process", "conn", "next" (batch id), "replies" (id -> reply)


class HostError(RuntimeError):
    """The figure host stopped before replying (the message says why, when known)."""


def running() -> bool:
    return bool(_HOST)


def start(workers: int, preload=()) -> None:
    """Fork the host with ``workers`` drawing workers, after importing ``preload`` (the
    command's own modules, so that the host shares them); nothing if it runs already."""
    if _HOST:
        return
    for name in preload:
        importlib.import_module(name)
    ctx = multiprocessing.get_context("fork")
    here, there = ctx.Pipe()
    process = ctx.Process(target=_main, args=(there, here, workers), name="figure-host")
    process.start()
    there.close()
    _HOST.update(process=process, conn=here, next=0, replies={})


def stop() -> None:
    """Stop the host and its workers (batches not collected are abandoned)."""
    if not _HOST:
        return
    host = dict(_HOST)
    _HOST.clear()
    try:
        host["conn"].send(None)   # processes forked since may hold this end open: no EOF
    except (OSError, ValueError):
        pass
    host["conn"].close()
    host["process"].join(STOP_TIMEOUT)
    if host["process"].is_alive():
        host["process"].terminate()
        host["process"].join()


@contextmanager
def hosting(workers: int, preload=()):
    """Run a block with the host started (see :func:`start`); a host this block started
    is stopped at its end (one already running is left to whoever started it)."""
    mine = not _HOST
    start(workers, preload)
    try:
        yield True
    finally:
        if mine:
            stop()


def submit(factory, stems, out_dir, formats) -> HostBatch:
    """Send the host ``stems`` of ``factory()`` to draw into ``out_dir`` as ``formats``."""
    batch_id = _HOST["next"]
    _HOST["next"] += 1
    _HOST["conn"].send((batch_id, factory, tuple(stems), Path(out_dir), tuple(formats)))
    return HostBatch(batch_id)


class HostBatch:
    """A batch drawn by the host; :meth:`get` waits for the paths written per stem."""

    def __init__(self, batch_id: int):
        self.batch_id = batch_id

    def get(self) -> list:
        replies = _HOST.get("replies")
        if replies is None:
            raise HostError("the figure host was stopped before the figures were collected")
        while self.batch_id not in replies:
            try:
                batch_id, reply = _HOST["conn"].recv()
            except (EOFError, OSError) as exc:
                raise HostError(f"the figure host stopped: {exc!r}") from exc
            replies[batch_id] = reply
        reply = replies.pop(self.batch_id)
        if isinstance(reply, BaseException):
            raise reply
        return reply


# ----------------------------------------------------------------------------- the host
def _main(conn, other_end, workers: int) -> None:
    other_end.close()      # the command's end: EOF here when the command closes its own
    for name in HOST_PRELOAD:
        importlib.import_module(name)
    from causal_hcc.reporting.render import render_made
    # Forked now, with matplotlib loaded: every worker starts warm.
    pool = multiprocessing.get_context("fork").Pool(workers)
    lock = threading.Lock()

    def reply(batch_id):
        def send(result):
            with lock:
                try:
                    conn.send((batch_id, result))
                except (OSError, ValueError):   # the command has gone: nothing to tell
                    pass
        return send

    try:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            if message is None:
                break
            batch_id, factory, stems, out_dir, formats = message
            tasks = [(factory, stem, out_dir / stem, formats) for stem in stems]
            pool.map_async(render_made, tasks, chunksize=1, callback=reply(batch_id),
                           error_callback=reply(batch_id))
    finally:
        pool.terminate()
        pool.join()
        conn.close()
        os._exit(0)       # no atexit handlers of the command's process run here
