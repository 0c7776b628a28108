"""Figures drawn ahead: while a command still computes, the figures whose data are final
go to worker processes (the command's figure host, :mod:`causal_hcc.reporting.figure_host`,
or a forked pool), and the report stage collects the files instead of drawing them.

Each ``prerender_*`` function hands over one stage's figures as a picklable factory
(``partial(adjust_figure_set, effects, cohort)``), so that the host's workers rebuild the
same builders from the same results: the files are the bytes the report stage would
have drawn (tests/test_figure_host.py).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

#: Largest cohort whose figures are drawn ahead, in worker processes forked while the
#: command still computes (:class:`AdjustAhead` and the ``prerender_*`` functions): above
#: it, each worker would hold a copy-on-write image of a large cohort and its results.
PRERENDER_MAX_ROWS = 20_000
#: Largest data file (bytes) for which the figure host is started before the data are
#: read (about 27,000 rows of a CSV like the bundled one): above it, the cohort is
#: likely beyond :data:`PRERENDER_MAX_ROWS` and the figures are drawn at the end.
HOST_MAX_BYTES = 1_000_000
#: What the command imports anyway, imported before the figure host is forked so that the
#: host shares it (and can read the pickled results it is sent).
HOST_PRELOAD_FIRST = ("causal_hcc.api", "causal_hcc.effects",
                      "causal_hcc.studies.yang2025.report_extras")
#: The adjust figures that show bootstrap results: drawn after the bootstrap.
BOOTSTRAP_FIGURES = ("forest_plot",)


def adjust_figure_set(effects, cohort) -> dict:
    """The adjust figures of ``effects`` (a picklable factory's body: the figure host's
    workers call it on the results they receive)."""
    from causal_hcc.cli.commands import report_extras
    from causal_hcc.reporting.content import NO_STUDY
    from causal_hcc.reporting.figures import adjust_figures
    return adjust_figures(effects, cohort, study=report_extras(cohort) or NO_STUDY)


def crude_figure_set(crude, cohort) -> dict:
    """The crude figures of ``crude`` (as :func:`adjust_figure_set`)."""
    from causal_hcc.cli.commands import report_extras
    from causal_hcc.reporting.content import NO_STUDY
    from causal_hcc.reporting.figures import crude_figures
    return crude_figures(crude, cohort, study=report_extras(cohort) or NO_STUDY)


def figure_host(config, formats):
    """The command's figure host (:mod:`causal_hcc.reporting.figure_host`), as a context
    manager: started when figures will be drawn, with more than one figure worker, a
    platform that forks, and a small data file (the bundled cohort, or at most
    :data:`HOST_MAX_BYTES`); the command's heavy modules are imported first, so that the
    host shares them."""
    from contextlib import nullcontext

    from causal_hcc.reporting import figure_host
    from causal_hcc.reporting.render import (
        MIN_FIGURES_FOR_POOL,
        can_fork,
        default_workers,
    )
    from causal_hcc.reporting.style import parse_formats
    workers = default_workers(2 * MIN_FIGURES_FOR_POOL)
    path = config.data.path
    try:
        small = not path or Path(path).stat().st_size <= HOST_MAX_BYTES
    except OSError:      # reported by the reader, with its own message
        small = False
    if not (parse_formats(formats) and can_fork() and workers > 1 and small):
        return nullcontext(False)
    return figure_host.hosting(workers, preload=HOST_PRELOAD_FIRST)


class AdjustAhead:
    """The adjust figures that do not show the bootstrap, drawn while it runs.

    ``options`` goes to :func:`causal_hcc.effects.adjust` (``on_preview``): before the
    bootstrap, adjust hands over its report without it, and :meth:`start` sends these
    figures to worker processes. Nothing is computed twice: the preview is the report
    itself, before the bootstrap CIs are attached. Nothing is started without a
    bootstrap, without a figure format or fork, above :data:`PRERENDER_MAX_ROWS`
    patients, or with one figure worker.
    """

    def __init__(self, cohort, config, out_path, formats):
        from causal_hcc.reporting.render import can_fork, default_workers
        from causal_hcc.reporting.style import parse_formats
        self.cohort, self.out_path, self.formats = cohort, out_path, formats
        self.enabled = bool(config.adjust.bootstrap and parse_formats(formats) and can_fork()
                            and cohort.n <= PRERENDER_MAX_ROWS and default_workers(8) > 1)
        self.preview, self.started = None, []

    @property
    def options(self) -> dict:
        """Keyword arguments of adjust (none when nothing will be drawn ahead)."""
        return {"on_preview": self.start} if self.enabled else {}

    def start(self, preview) -> None:
        from causal_hcc.reporting.render import prerender
        factory = partial(adjust_figure_set, preview, self.cohort)
        self.started = prerender(factory, self.out_path, self.formats,
                                 stems=[k for k in factory() if k not in BOOTSTRAP_FIGURES])
        self.preview = preview

    def settle(self, result):
        """``(preview, stems drawn ahead)`` once ``result`` is known, or None. Figures
        whose data differ from the result's (:func:`same_figure_data`; a safety net, as
        the preview is the result before its bootstrap) are dropped, to be drawn again."""
        if not self.started:
            return None
        if not same_figure_data(self.preview, result):
            from causal_hcc.reporting.render import forget_prerendered
            forget_prerendered(self.out_path, self.formats, self.started)
            return None
        return self.preview, self.started


def prerender_final(effects, cohort, out_path, formats, ahead) -> None:
    """With the figure host running: hand it the adjust figures not drawn ahead (the
    bootstrap's, and any whose preview data differed), so that they are drawn while the
    tables are written."""
    from causal_hcc.reporting import figure_host
    from causal_hcc.reporting.render import prerender
    if not figure_host.running() or cohort.n > PRERENDER_MAX_ROWS:
        return
    factory = partial(adjust_figure_set, effects, cohort)
    drawn = set(ahead[1]) if ahead is not None else set()
    prerender(factory, out_path, formats, stems=[k for k in factory() if k not in drawn])


def same_figure_data(preview, result) -> bool:
    """Whether the bootstrap-free ``preview`` and the full ``result`` give the same
    non-bootstrap figures: the same propensity scores, matches, weights, balance, curves,
    identification and primary estimate, each compared as pickled bytes.

    Each part is pickled on its own: pickle writes an object shared by two parts once, so
    pickling them together would compare which objects happen to be shared (e.g. a
    leave-one-out result computed for the preview and reused by the full run, holding
    the preview's patient ids) as well as the values.
    """
    import pickle

    def parts(r):
        return (r.propensity, r.matched, r.weights, r.balance,
                [(c.method, c.estimand, c.treated, c.control) for c in r.curves],
                r.matching_weights, r.identification, r.primary, r.label, r.arm_labels)
    return all(pickle.dumps(a) == pickle.dumps(b)
               for a, b in zip(parts(preview), parts(result), strict=True))


def prerender_crude(crude, cohort, out_path, formats) -> None:
    """Start drawing the crude figures (final once the crude stage is done) in forked
    workers while the adjusted and sensitivity analyses run (skipped above
    :data:`PRERENDER_MAX_ROWS`, where the workers would hold a copy of a large cohort)."""
    from causal_hcc.reporting.render import prerender
    if cohort.n <= PRERENDER_MAX_ROWS:
        prerender(partial(crude_figure_set, crude, cohort), out_path, formats)


def prerender_ph(cohort, effects, out_path, formats):
    """The PH checks of the report (:func:`causal_hcc.effects.ph.ph_checks`), with their
    figure handed to the figure host when one runs."""
    from causal_hcc.effects.ph import ph_checks
    from causal_hcc.reporting import figure_host
    from causal_hcc.reporting.figures import ph_figures
    from causal_hcc.reporting.render import prerender
    checks = ph_checks(cohort, effects)
    if figure_host.running() and checks:
        prerender(partial(ph_figures, checks, cohort.labels.time_axis, effects.label),
                  out_path, formats)
    return checks


def prerender_sensitivity(sensitivity, cohort, out_path, formats) -> None:
    """With the figure host running, hand it the sensitivity figures (drawn while the
    report's other files are written)."""
    from causal_hcc.reporting import figure_host
    from causal_hcc.reporting.figures import sensitivity_figures
    from causal_hcc.reporting.render import prerender
    if figure_host.running() and cohort.n <= PRERENDER_MAX_ROWS:
        prerender(partial(sensitivity_figures, sensitivity), out_path, formats)


